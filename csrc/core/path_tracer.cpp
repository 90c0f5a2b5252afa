#include "path_tracer.h"

#include <cmath>

#include "cancel.h"
#include "limits.h"
#include "parallel.h"

namespace rt {

namespace {

// The CPU's kernels: render_pixel and intersect_ray (path_tracer.h) on the thread pool.
struct RenderKernel {
    SceneView scene;
    RenderParams params;
    int out_width;  // floats per pixel
    bool need_centre;
    Real* out;

    void operator()(int pixel) const {
        // A cancelled pixel returns early; the region then throws Cancelled.
        render_pixel(scene, params, need_centre, pixel, out + size_t(pixel) * out_width,
                     [] { return cancel_requested(); });
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

    void operator()(int i) const { intersect_ray(scene, origins, directions, i, t, shape_id, triangle_id, uv); }
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
    k.out_width = output_width(params, &k.need_centre);
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
