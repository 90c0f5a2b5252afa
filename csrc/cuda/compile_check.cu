// compile_check.cu: proves the kernels compile for a GPU with nvcc. UNTESTED ON A GPU.
//
// No CUDA backend is built yet; this file instantiates the same RT_HOST_DEVICE functions the
// CPU kernels run (camera rays, stratified samples, BVH traversal, the path tracer) inside a
// __global__ function, so that code which nvcc cannot compile for the device is caught early.
// tests/test_cuda_compile.py compiles it when nvcc is installed; nothing here has been run.
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

}  // namespace rt
