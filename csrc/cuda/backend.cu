// backend.cu: the CUDA backend's kernels and device memory (backend.h says what it does).
#include "cuda/backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "core/cancel.h"
#include "core/limits.h"

namespace rt {
namespace cuda {
namespace {

// Threads per block: the path tracer's kernels are heavy in registers, and one pixel's samples
// vary in length, so small blocks keep the multiprocessors' occupancy even.
constexpr int kBlock = 128;
// One launch traces at most this many pixel samples (or rays): launches end within milliseconds
// on a large GPU, so Ctrl-C (the calling thread's CancelFlag) is seen between them.
constexpr int64_t kSamplesPerLaunch = int64_t(1) << 24;

void check(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return;
    cudaGetLastError();  // clear a sticky-free error, so the next call starts clean
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorName(e) + " (" +
                             cudaGetErrorString(e) + ")");
}

// Makes `device` current on the calling thread for the guard's lifetime.
class DeviceGuard {
public:
    explicit DeviceGuard(int device) {
        if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
        check(cudaSetDevice(device), "cudaSetDevice");
    }
    ~DeviceGuard() {
        if (previous_ >= 0) cudaSetDevice(previous_);
    }

private:
    int previous_ = -1;
};

void* device_alloc(size_t bytes, int device, const char* what) {
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        size_t free_bytes = 0, total = 0;
        cudaMemGetInfo(&free_bytes, &total);
        throw OutOfMemory("cuda:" + std::to_string(device) + " has not enough free memory for " + what + ": " +
                          std::to_string(bytes) + " bytes asked for, " + std::to_string(free_bytes) + " free of " +
                          std::to_string(total));
    }
    check(e, "cudaMalloc");
    return p;
}

struct NeverStop {
    RT_HOST_DEVICE bool operator()() const { return false; }
};

__global__ void render_kernel(SceneView scene, RenderParams params, int out_width, bool need_shape_id, int first,
                              int count, Real* out) {
    int i = int(blockIdx.x) * blockDim.x + int(threadIdx.x);
    if (i >= count) return;
    int pixel = first + i;
    render_pixel(scene, params, need_shape_id, pixel, out + size_t(pixel) * out_width, NeverStop());
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

// ---- The scene's device copy ----------------------------------------------------------------

struct DeviceScene::Impl {
    struct Buffer {
        void* ptr = nullptr;
        size_t capacity = 0;
    };
    int device = -1;
    bool valid = false;  // buffers hold the parts of `generation`
    uint64_t generation[SceneData::kNumParts] = {0, 0, 0, 0};
    std::vector<Buffer> buffers;  // one per array, in SceneData::for_each_array's order

    ~Impl() { release(); }

    void release() {
        if (device >= 0) {
            int previous = -1;
            cudaGetDevice(&previous);
            cudaSetDevice(device);
            for (Buffer& b : buffers) cudaFree(b.ptr);
            if (previous >= 0) cudaSetDevice(previous);
        }
        buffers.clear();
        valid = false;
    }

    // A view of `data` over device memory, copying the parts changed since the last call.
    SceneView sync(const SceneData& data, int dev) {
        if (dev != device) {
            release();
            device = dev;
        }
        SceneView view = data.view();
        size_t k = 0;
        data.for_each_array(&view, [&](SceneData::Part part, auto& ptr, size_t count) {
            using T = std::remove_const_t<std::remove_pointer_t<std::remove_reference_t<decltype(ptr)>>>;
            if (buffers.size() <= k) buffers.emplace_back();
            Buffer& b = buffers[k++];
            size_t bytes = count * sizeof(T);
            if (!valid || data.generation(part) != generation[part]) {
                if (b.capacity < bytes) {
                    check(cudaFree(b.ptr), "cudaFree");
                    b.ptr = nullptr;
                    b.capacity = 0;
                    b.ptr = device_alloc(bytes, device, "the scene");
                    b.capacity = bytes;
                }
                if (bytes > 0) check(cudaMemcpy(b.ptr, ptr, bytes, cudaMemcpyHostToDevice), "copying the scene");
            }
            ptr = bytes > 0 ? static_cast<const T*>(b.ptr) : nullptr;
        });
        for (int p = 0; p < SceneData::kNumParts; ++p) generation[p] = data.generation(SceneData::Part(p));
        valid = true;
        return view;
    }

    size_t bytes() const {
        size_t sum = 0;
        for (const Buffer& b : buffers) sum += b.capacity;
        return sum;
    }
};

DeviceScene::DeviceScene() : impl_(new Impl) {}
DeviceScene::~DeviceScene() = default;

size_t DeviceScene::bytes() const { return impl_->bytes(); }

void DeviceScene::render(const SceneData& data, const RenderParams& params, Real* out, int device,
                         uintptr_t stream_handle) {
    DeviceGuard guard(device);
    cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_handle);
    SceneView view = impl_->sync(data, device);
    check_render_params(view.camera, params);
    bool need_shape_id;
    int out_width = output_width(params, &need_shape_id);
    int64_t n = int64_t(view.camera.width) * view.camera.height;
    launch_in_pieces(n, kSamplesPerLaunch / params.spp, stream, "render",
                     [&](int64_t first, int count, int blocks) {
                         render_kernel<<<blocks, kBlock, 0, stream>>>(view, params, out_width, need_shape_id,
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
