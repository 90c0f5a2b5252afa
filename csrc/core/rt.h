// rt.h: the definitions every file of the core shares.
//
// The core is plain C++17. It never includes Python or torch headers, and the code that runs
// inside kernels uses plain structs and views only (no virtual calls, no exceptions, no STL
// containers), so that nvcc can compile the same functions for a GPU later. Functions that
// run inside kernels carry RT_HOST_DEVICE.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define RT_HOST_DEVICE __host__ __device__
#define RT_DEVICE __device__
#else
#define RT_HOST_DEVICE
#define RT_DEVICE
#endif

#if defined(__GNUC__) || defined(__clang__)
#define RT_INLINE inline __attribute__((always_inline))
#else
#define RT_INLINE inline
#endif

namespace rt {

// The scalar type of the renderer. Images, vertices and all scene data are float32.
using Real = float;

constexpr Real kPi = Real(3.14159265358979323846);
constexpr Real kInvPi = Real(0.31830988618379067154);
constexpr Real kInvTwoPi = Real(0.15915494309189533577);
constexpr Real kInfinity = Real(1e30);  // "no hit"; converted to +inf at the Python boundary

// min and max of finite numbers (all scene data is checked finite at the boundary): unlike
// std::fmin/fmax, which must handle NaN and compile to a library call without
// -ffinite-math-only, these become single instructions.
RT_HOST_DEVICE RT_INLINE Real min_r(Real a, Real b) { return a < b ? a : b; }
RT_HOST_DEVICE RT_INLINE Real max_r(Real a, Real b) { return a > b ? a : b; }

}  // namespace rt
