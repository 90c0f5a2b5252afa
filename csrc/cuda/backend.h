// backend.h: the CUDA backend, as the bindings see it (plain C++: no CUDA header is included, so
// bindings.cpp compiles with the host compiler alone).
//
// The kernels are the CPU's: render_pixel and intersect_ray (path_tracer.h) run one pixel or one
// ray per GPU thread, and the reverse pass's InteriorKernel and PrimaryEdgeKernel
// (backward_interior.h, backward_primary.h) one pixel or a few edge samples, from the same
// RT_HOST_DEVICE code. The scene is built on the host (the BVH,
// the light and environment tables: SceneData) and its arrays are copied to the device once per
// change (SceneData::generation); outputs and ray inputs are the caller's device memory (torch's
// CUDA tensors, passed by pointer), so images never cross through the host.
//
// Built only with RT_CUDA=1 (setup.py), which defines RT_WITH_CUDA for bindings.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <new>
#include <string>

#include "core/backward.h"
#include "core/edges.h"
#include "core/path_tracer.h"
#include "core/scene.h"

namespace rt {
namespace cuda {

// GPUs the driver reports (0 without a driver or a GPU: never throws).
int device_count();
// "NVIDIA H200 (sm_90, 139.8 GiB)" for device i.
std::string device_name(int device);
// The device whose memory `ptr` points into, or -1 when it is not device memory.
int pointer_device(const void* ptr);

// A request for device memory that the device cannot meet; its message names the bytes asked
// for and the bytes free (a MemoryError in Python).
class OutOfMemory : public std::bad_alloc {
public:
    explicit OutOfMemory(std::string msg) : msg_(std::move(msg)) {}
    const char* what() const noexcept override { return msg_.c_str(); }

private:
    std::string msg_;
};

// The device copy of one SceneData.
class DeviceScene {
public:
    DeviceScene();
    ~DeviceScene();
    DeviceScene(const DeviceScene&) = delete;
    DeviceScene& operator=(const DeviceScene&) = delete;

    // render() on `device`: out is device memory, [H, W, output width] float32. `stream` is a
    // cudaStream_t (0: the default stream); the call returns when the image is written. Throws
    // Cancelled (cancel.h) when the calling thread's CancelFlag is set between launches.
    void render(const SceneData& data, const RenderParams& params, Real* out, int device, uintptr_t stream);
    // intersect_rays() on `device`: every array is device memory.
    void intersect(const SceneData& data, const Real* origins, const Real* directions, int64_t n, Real* t,
                   int64_t* shape_id, int64_t* triangle_id, Real* uv, int device, uintptr_t stream);
    // render_backward() on `device` (backward.cu): d_image ([H, W, 3] float32) and grad
    // (layout.total doubles, added into) are device memory. params.stats is not used: the counts
    // of edge samples and draws are returned. No probe (gradient_image runs on the CPU).
    void backward(const SceneData& data, const std::vector<Edge>& edges, const GradLayout& layout,
                  const BackwardParams& params, const Real* d_image, double* grad, int device, uintptr_t stream,
                  int64_t* primary_samples, int64_t* secondary_draws);
    // Bytes of device memory the scene's copy holds now.
    size_t bytes() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace cuda
}  // namespace rt
