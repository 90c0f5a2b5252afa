// backend.cu: the CUDA backend's kernels and device memory (backend.h says what it does).
#include "cuda/backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>

#include "core/cancel.h"
#include "core/limits.h"
#include "cuda/device.h"

namespace rt {
namespace cuda {
namespace {

// One launch traces at most this many pixel samples (or rays): launches end within milliseconds
// on a large GPU, so Ctrl-C (the calling thread's CancelFlag) is seen between them.
constexpr int64_t kSamplesPerLaunch = int64_t(1) << 24;

struct NeverStop {
    RT_HOST_DEVICE bool operator()() const { return false; }
};

__global__ void render_kernel(SceneView scene, RenderParams params, int out_width, bool need_centre, int first,
                              int count, Real* out) {
    int i = int(blockIdx.x) * blockDim.x + int(threadIdx.x);
    if (i >= count) return;
    int pixel = first + i;
    render_pixel(scene, params, need_centre, pixel, out + size_t(pixel) * out_width, NeverStop());
}

__global__ void intersect_kernel(SceneView scene, const Real* origins, const Real* directions, int64_t first,
                                 int count, Real* t, int64_t* shape_id, int64_t* triangle_id, Real* uv) {
    int i = int(blockIdx.x) * blockDim.x + int(threadIdx.x);
    if (i >= count) return;
    intersect_ray(scene, origins, directions, first + i, t, shape_id, triangle_id, uv);
}

// Runs launch(first, count) over [0, n) in pieces of `per_launch`, waiting for each piece, and
// stops between pieces when the calling thread's CancelFlag is set (throws Cancelled).
template <typename Launch>
void launch_in_pieces(int64_t n, int64_t per_launch, cudaStream_t stream, const char* what, const Launch& launch) {
    per_launch = std::max<int64_t>(kBlock, per_launch / kBlock * kBlock);
    for (int64_t first = 0; first < n; first += per_launch) {
        throw_if_cancelled();
        int count = int(std::min(per_launch, n - first));
        launch(first, count, int((count + kBlock - 1) / kBlock));
        check(cudaGetLastError(), what);
        check(cudaStreamSynchronize(stream), what);
    }
}

}  // namespace

int device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

std::string device_name(int device) {
    cudaDeviceProp prop;
    check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
    char memory[32];
    snprintf(memory, sizeof(memory), "%.1f GiB", double(prop.totalGlobalMem) / double(1 << 30));
    return std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ", " +
           memory + ")";
}

int pointer_device(const void* ptr) {
    cudaPointerAttributes attr;
    if (cudaPointerGetAttributes(&attr, ptr) != cudaSuccess) {
        cudaGetLastError();
        return -1;
    }
    return (attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged) ? attr.device : -1;
}

DeviceScene::DeviceScene() : impl_(new Impl) {}
DeviceScene::~DeviceScene() = default;

size_t DeviceScene::bytes() const { return impl_->bytes(); }

void DeviceScene::render(const SceneData& data, const RenderParams& params, Real* out, int device,
                         uintptr_t stream_handle) {
    DeviceGuard guard(device);
    cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_handle);
    SceneView view = impl_->sync(data, device);
    check_render_params(view.camera, params);
    bool need_centre;
    int out_width = output_width(params, &need_centre);
    int64_t n = int64_t(view.camera.width) * view.camera.height;
    launch_in_pieces(n, kSamplesPerLaunch / params.spp, stream, "render",
                     [&](int64_t first, int count, int blocks) {
                         render_kernel<<<blocks, kBlock, 0, stream>>>(view, params, out_width, need_centre,
                                                                      int(first), count, out);
                     });
}

void DeviceScene::intersect(const SceneData& data, const Real* origins, const Real* directions, int64_t n, Real* t,
                            int64_t* shape_id, int64_t* triangle_id, Real* uv, int device, uintptr_t stream_handle) {
    check_count(n, 0, kMaxRays, "the number of rays");
    if (n == 0) return;
    DeviceGuard guard(device);
    cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_handle);
    SceneView view = impl_->sync(data, device);
    launch_in_pieces(n, kSamplesPerLaunch, stream, "intersect", [&](int64_t first, int count, int blocks) {
        intersect_kernel<<<blocks, kBlock, 0, stream>>>(view, origins, directions, first, count, t, shape_id,
                                                        triangle_id, uv);
    });
}

}  // namespace cuda
}  // namespace rt
