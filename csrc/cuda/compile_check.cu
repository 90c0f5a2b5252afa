// compile_check.cu: proves the kernels compile for a GPU with nvcc. UNTESTED ON A GPU.
//
// No CUDA backend is built yet; this file instantiates the same RT_HOST_DEVICE functions the
// CPU kernels run (camera rays, stratified samples, BVH traversal, the path tracer, and the
// adjoints of the reverse pass) inside __global__ functions, so that code which nvcc cannot
// compile for the device is caught early.
// tests/test_cuda_compile.py compiles it when nvcc is installed; nothing here has been run.
#include "core/geometry.h"
#include "core/path_tracer.h"

namespace rt {

__global__ void render_kernel_compile_check(SceneView scene, int spp, int max_bounces, uint64_t seed, Real* out) {
    int pixel = blockIdx.x * blockDim.x + threadIdx.x;
    int n = scene.camera.width * scene.camera.height;
    if (pixel >= n) return;
    int px = pixel % scene.camera.width, py = pixel / scene.camera.width;
    Vec3 sum(0);
    for (int s = 0; s < spp; ++s) {
        Vec2 j = cmj_sample(uint32_t(s), uint32_t(spp), uint32_t(pixel));
        Ray ray = generate_ray(scene.camera, Real(px) + j.x, Real(py) + j.y);
        Sampler sampler(seed, kStreamForward, uint64_t(pixel), uint64_t(s));
        PrimaryInfo primary;
        sum += radiance(scene, ray, max_bounces, sampler, &primary);
    }
    out[3 * pixel + 0] = sum.x / Real(spp);
    out[3 * pixel + 1] = sum.y / Real(spp);
    out[3 * pixel + 2] = sum.z / Real(spp);
}

// A gradient sink for the texel and envmap adjoints (a real backend would use atomicAdd).
struct CompileCheckSink {
    Real* values;
    RT_HOST_DEVICE void add(int index, Real value) { values[index] += value; }
};

// Calls every d_ function once, so that the adjoints are compiled as device code too.
__global__ void adjoint_compile_check(SceneView scene, CameraParams camera, Real* grad) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    Real x = Real(i % 7);
    Vec3 a(x, 1, 2), b(2, x, 1), c(1, 2, x);
    Vec3 d_a, d_b, d_c, d_d, d_e;
    d_a += d_normalize(a, b) + d_length(b, x);
    d_cross(a, b, c, &d_a, &d_b);

    DCameraParams d_cam{};
    d_generate_ray(camera, x, x, a, b, &d_cam);
    Vec2 screen;
    if (project(scene.camera, c, &screen)) d_project(camera, c, screen, &d_cam, &d_c);

    Real t, b1, b2;
    if (intersect_triangle(a, b, c, a + b, b + c, &t, &b1, &b2)) {
        d_intersect_triangle(a, b, c, a + b, b + c, t, b1, b2, &d_a, &d_b, &d_c, &d_d, &d_e);
    }

    CompileCheckSink sink{grad};
    const Material& m = scene.materials[0];
    Vec2 uv(x, x), d_uv;
    BSDFParams p = eval_material(scene.texels, m, uv);
    DBSDFParams d_p{};
    Vec3 n = normalize(a);
    Vec3 f = bsdf_eval_world(p, n, normalize(b), normalize(c)) * bsdf_pdf_world(p, n, normalize(b), normalize(c));
    d_bsdf_eval_world(p, n, normalize(b), normalize(c), f, &d_p, &d_a, &d_b, &d_c);
    d_texture_lookup(scene.texels, m.diffuse, uv, f, sink, &d_uv);
    d_eval_material(scene.texels, m, uv, d_p, sink, &d_uv);
    d_envmap_eval(scene.envmap, a, f, sink, &d_d);

    Vec3 sum = d_a + d_b + d_c + d_d + d_e + d_cam.position + d_cam.look_at + d_cam.up;
    grad[i] += sum.x + sum.y + sum.z + d_cam.fov_degrees + d_p.alpha + d_uv.x + d_uv.y;
}

}  // namespace rt
