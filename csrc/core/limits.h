// limits.h: the largest count each operation of the core accepts, and the checks that hold it.
//
// One table for the whole project: the bindings export it (raytrace._core.limits()), the
// Python package checks its arguments against it with messages for users, and the core checks
// again, so that a caller that skips the Python layer gets std::invalid_argument or
// std::length_error naming the count, never a wrapped product. docs/limits.md gives
// the reasons for each bound.
#pragma once

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace rt {

// Samples per pixel of one call (render, backward). The reverse pass takes up to 4x more at
// pixels on a visibility boundary; the stratified pattern indexes them in 32 bits.
constexpr int64_t kMaxSpp = int64_t(1) << 20;
// Primary-edge samples per pixel, and in all: edge_spp * H * W. The samples are stratified in
// one 32-bit pattern.
constexpr int64_t kMaxEdgeSpp = int64_t(1) << 20;
constexpr int64_t kMaxEdgeSamples = (int64_t(1) << 31) - 1;
// Secondary-edge samples per path vertex.
constexpr int64_t kMaxSecondarySpp = 4096;
// One path in this many takes emission-only secondary-edge samples.
constexpr int64_t kMaxSecondaryStride = 65536;
// Path length of the forward pass (the reverse pass records at most kMaxPathVertices - 1
// bounces: backward.h).
constexpr int64_t kMaxBounces = 1024;
// Worker threads of one call (0: the default, RT_NUM_THREADS or the number of cores, itself
// capped at this).
constexpr int64_t kMaxThreads = 256;
// Image size: each side, and the number of pixels.
constexpr int64_t kMaxResolution = 16384;
constexpr int64_t kMaxPixels = int64_t(1) << 26;
// Rays of one intersect call.
constexpr int64_t kMaxRays = std::numeric_limits<int32_t>::max();
// Seeds are below 2^63.
constexpr uint64_t kMaxSeed = (uint64_t(1) << 63) - 1;
// Vertices, triangles, texels, envmap texels and gradient slots: indexed with 32-bit ints.
constexpr int64_t kMaxIndex = std::numeric_limits<int32_t>::max();

// Throws std::invalid_argument naming `name` unless lo <= value <= hi.
inline void check_count(int64_t value, int64_t lo, int64_t hi, const char* name) {
    if (value < lo || value > hi) {
        throw std::invalid_argument(std::string(name) + " must be in [" + std::to_string(lo) + ", " +
                                    std::to_string(hi) + "] (got " + std::to_string(value) + ")");
    }
}

// a * b for non-negative counts, or std::length_error naming `what` when the product passes
// `limit` (the check comes before the multiplication, so nothing wraps).
inline int64_t checked_product(int64_t a, int64_t b, int64_t limit, const char* what) {
    if (a < 0 || b < 0) throw std::invalid_argument(std::string(what) + ": negative count");
    if (a != 0 && b > limit / a) {
        throw std::length_error(std::string(what) + " = " + std::to_string(a) + " x " + std::to_string(b) +
                                " exceeds the limit " + std::to_string(limit));
    }
    return a * b;
}

// The image size of a call (each side, then the pixels): its number of pixels, or the error of
// check_count / checked_product naming the side or the product.
inline int64_t check_image_size(int64_t height, int64_t width) {
    check_count(height, 1, kMaxResolution, "the image height");
    check_count(width, 1, kMaxResolution, "the image width");
    return checked_product(height, width, kMaxPixels, "the image's pixels (height x width)");
}

// a + b for non-negative sizes, or std::length_error naming `what` when the sum passes `limit`.
inline int64_t checked_sum(int64_t a, int64_t b, int64_t limit, const char* what) {
    if (a < 0 || b < 0) throw std::invalid_argument(std::string(what) + ": negative size");
    if (a > limit - b) {
        throw std::length_error(std::string(what) + " exceeds the limit " + std::to_string(limit));
    }
    return a + b;
}

}  // namespace rt
