// device.h: what the CUDA backend's files share (CUDA code only: included by .cu files alone):
// error checks, device memory, and the scene's device copy.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda/backend.h"

namespace rt {
namespace cuda {

// Threads per block: the path tracer's kernels are heavy in registers, and one pixel's samples
// vary in length, so small blocks keep the multiprocessors' occupancy even.
constexpr int kBlock = 128;

inline void check(cudaError_t e, const char* what) {
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

inline void* device_alloc(size_t bytes, int device, const char* what) {
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

// A device array of T that grows as needed (never shrinks) and frees itself.
template <typename T>
class DeviceVector {
public:
    DeviceVector() = default;
    DeviceVector(const DeviceVector&) = delete;
    DeviceVector& operator=(const DeviceVector&) = delete;
    ~DeviceVector() { cudaFree(ptr_); }
    // Room for n elements (the contents are lost when it grows).
    T* reserve(size_t n, int device, const char* what) {
        if (n > capacity_) {
            check(cudaFree(ptr_), "cudaFree");
            ptr_ = nullptr;
            capacity_ = 0;
            ptr_ = static_cast<T*>(device_alloc(n * sizeof(T), device, what));
            capacity_ = n;
        }
        return ptr_;
    }
    // A copy of host[0, n) (null when n is 0).
    T* upload(const T* host, size_t n, int device, cudaStream_t stream, const char* what) {
        if (n == 0) return nullptr;
        reserve(n, device, what);
        check(cudaMemcpyAsync(ptr_, host, n * sizeof(T), cudaMemcpyHostToDevice, stream), what);
        return ptr_;
    }
    T* data() const { return ptr_; }
    size_t bytes() const { return capacity_ * sizeof(T); }

private:
    T* ptr_ = nullptr;
    size_t capacity_ = 0;
};

// The scene's device copy, and the reverse pass's buffers (backward.cu).
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

}  // namespace cuda
}  // namespace rt
