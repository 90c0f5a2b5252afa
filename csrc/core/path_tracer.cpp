#include "path_tracer.h"

#include <cmath>

#include "cancel.h"
#include "limits.h"
#include "parallel.h"

namespace rt {

namespace {

struct RenderKernel {
    SceneView scene;
    RenderParams params;
    int out_width;  // floats per pixel
    bool need_aux, need_shape_id, need_radiance;
    Real* out;

    void operator()(int pixel) const {
        const Camera& cam = scene.camera;
        int px = pixel % cam.width, py = pixel / cam.width;
        uint32_t pattern_key = hash32(uint32_t(params.seed * 0x2545f491u) ^ 0x6a09e667u, uint32_t(pixel));
        double radiance_sum[3] = {0, 0, 0};
        double alpha_sum = 0, depth_sum = 0;
        double normal_sum[3] = {0, 0, 0}, albedo_sum[3] = {0, 0, 0};
        // Pixel samples, in a fixed order, each with its own random sequence.
        for (int s = 0; s < params.spp; ++s) {
            if ((s & 15) == 0 && cancel_requested()) return;  // the call throws Cancelled
            Vec2 j = cmj_sample(uint32_t(s), uint32_t(params.spp), pattern_key);
            Ray ray = generate_ray(cam, Real(px) + j.x, Real(py) + j.y);
            Sampler sampler(params.seed, kStreamForward, uint64_t(pixel), uint64_t(s));
            PrimaryInfo primary{0, 0, Vec3(0), Vec3(0)};
            Vec3 L = radiance(scene, ray, params.max_bounces, sampler, &primary);
            radiance_sum[0] += L.x;
            radiance_sum[1] += L.y;
            radiance_sum[2] += L.z;
            if (primary.hit) {
                alpha_sum += 1;
                depth_sum += primary.depth;
                for (int k = 0; k < 3; ++k) {
                    normal_sum[k] += primary.normal[k];
                    albedo_sum[k] += primary.albedo[k];
                }
            }
        }
        int shape_at_centre = -1;
        if (need_shape_id) {
            Ray ray = generate_ray(cam, Real(px) + Real(0.5), Real(py) + Real(0.5));
            Hit hit;
            if (intersect(scene.bvh, ray, &hit)) shape_at_centre = scene.tri_shape[hit.tri];
        }
        // Box filter: the average of the samples.
        double inv = 1.0 / double(params.spp);
        Real* o = out + size_t(pixel) * out_width;
        for (int c = 0; c < params.num_channels; ++c) {
            switch (params.channels[c]) {
                case kChannelRadiance:
                    for (int k = 0; k < 3; ++k) *o++ = Real(radiance_sum[k] * inv);
                    break;
                case kChannelAlpha: *o++ = Real(alpha_sum * inv); break;
                case kChannelDepth: *o++ = Real(depth_sum * inv); break;
                case kChannelNormal:
                    for (int k = 0; k < 3; ++k) *o++ = Real(normal_sum[k] * inv);
                    break;
                case kChannelAlbedo:
                    for (int k = 0; k < 3; ++k) *o++ = Real(albedo_sum[k] * inv);
                    break;
                case kChannelShapeId: *o++ = Real(shape_at_centre); break;
                default: break;
            }
        }
    }
};

struct IntersectKernel {
    SceneView scene;
    const Real* origins;
    const Real* directions;
    Real* t;
    int64_t* shape_id;
    int64_t* triangle_id;
    Real* uv;

    void operator()(int i) const {
        // The ray is traced along the unit direction (any non-zero length works, 1e-30 or 1e30:
        // scaled by its largest component first, so squaring it neither underflows nor
        // overflows) and t is converted back to units of the given direction.
        Vec3 d = Vec3::load(directions + 3 * size_t(i));
        Real m = max_component(vabs(d));
        Vec3 dm = d / m;
        Real len = length(dm);
        Ray ray{Vec3::load(origins + 3 * size_t(i)), dm / len, 0, kInfinity};
        Hit hit;
        if (m > 0 && intersect(scene.bvh, ray, &hit)) {
            int shape = scene.tri_shape[hit.tri];
            t[i] = Real(double(hit.t) / (double(len) * double(m)));
            shape_id[i] = shape;
            triangle_id[i] = hit.tri - scene.shapes[shape].tri_offset;
            uv[2 * size_t(i)] = hit.u;
            uv[2 * size_t(i) + 1] = hit.v;
        } else {
            t[i] = INFINITY;
            shape_id[i] = -1;
            triangle_id[i] = -1;
            uv[2 * size_t(i)] = 0;
            uv[2 * size_t(i) + 1] = 0;
        }
    }
};

}  // namespace

void check_render_params(const Camera& camera, const RenderParams& params) {
    check_count(params.spp, 1, kMaxSpp, "spp");
    check_count(params.max_bounces, 0, kMaxBounces, "max_bounces");
    check_count(params.num_channels, 1, kMaxChannels, "the number of channels");
    check_count(params.num_threads, 0, kMaxThreads, "threads");
    check_image_size(camera.height, camera.width);
}

void render(const SceneView& scene, const RenderParams& params, Real* out) {
    check_render_params(scene.camera, params);
    RenderKernel k;
    k.scene = scene;
    k.params = params;
    k.out_width = 0;
    k.need_shape_id = false;
    for (int c = 0; c < params.num_channels; ++c) {
        k.out_width += channel_width(params.channels[c]);
        k.need_shape_id = k.need_shape_id || params.channels[c] == kChannelShapeId;
    }
    k.out = out;
    int64_t n = int64_t(scene.camera.width) * scene.camera.height;
    parallel_for(k, n, params.num_threads, 16);
}

void intersect_rays(const SceneView& scene, const Real* origins, const Real* directions, int64_t n,
                    Real* t, int64_t* shape_id, int64_t* triangle_id, Real* uv, int num_threads) {
    check_count(n, 0, kMaxRays, "the number of rays");
    check_count(num_threads, 0, kMaxThreads, "threads");
    IntersectKernel k{scene, origins, directions, t, shape_id, triangle_id, uv};
    parallel_for(k, n, num_threads, 1024);
}

}  // namespace rt
