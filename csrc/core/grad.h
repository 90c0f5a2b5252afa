// grad.h: where the reverse pass puts gradients, deterministically.
//
// Every differentiable scene value has a slot in one flat parameter vector (GradLayout).
// Kernels add their contributions through a GradAccumulator, one per worker thread: a dense
// scratch array plus the list of slots touched. Work is cut into fixed tiles (of pixels or of
// edge samples); a tile is processed start to finish by one thread in a fixed order and its
// sums are flushed as (slot, value) pairs sorted by slot. The tiles' pairs are then added up
// in tile order. So the gradient is bit-for-bit the same for any number of threads.
// (The CUDA backend keeps the same guarantee its own way: csrc/cuda/backward.cu.)
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "rt.h"

namespace rt {

// Offsets of each block of parameters in the flat gradient vector.
struct GradLayout {
    int vertices = 0;   // [V, 3] global vertices
    int uvs = 0;        // [V, 2]
    int normals = 0;    // [V, 3]
    int texels = 0;     // the scene's texel buffer (all material textures)
    int lights = 0;     // [L, 3] area light intensities
    int envmap = 0;     // [h, w, 3]
    int camera = 0;     // position (3), look_at (3), up (3), fov in degrees (1)
    int total = 0;
};

// The sums of one tile: (slot, value) pairs sorted by slot, and, when a probe is set, the
// probe's per-pixel values in the order they were made.
struct TileGrad {
    std::vector<std::pair<int, double>> slots;
    std::vector<std::pair<int, double>> pixels;
};

// Host-side accumulator used by CPU kernels (one per thread; see the file comment).
//
// A probe (a direction in parameter space) also attributes each contribution to the pixel whose
// work made it: the "gradient image" of that direction, d(pixel value)/d(step along it).
class GradAccumulator {
public:
    void reset(int size, const double* probe) {
        if (int(scratch_.size()) != size) {
            scratch_.assign(size, 0.0);
            flag_.assign(size, 0);
        } else {
            // A tile cut short (a cancelled call) leaves sums that were never flushed.
            for (int slot : touched_) {
                scratch_[slot] = 0;
                flag_[slot] = 0;
            }
        }
        touched_.clear();
        probe_ = probe;
        pixel_ = -1;
        pixel_sum_ = 0;
        pixels_.clear();
    }
    void add(int slot, Real value) {
        if (value == 0) return;
        if (!flag_[slot]) {
            flag_[slot] = 1;
            touched_.push_back(slot);
        }
        scratch_[slot] += double(value);
        if (probe_) pixel_sum_ += double(value) * probe_[slot];
    }
    // The pixel whose work the following contributions belong to (for the probe).
    void set_pixel(int pixel) {
        if (!probe_ || pixel == pixel_) return;
        end_pixel();
        pixel_ = pixel;
    }
    // Moves the sums into `out` and clears them.
    void flush(TileGrad* out) {
        end_pixel();
        std::sort(touched_.begin(), touched_.end());
        out->slots.clear();
        out->slots.reserve(touched_.size());
        for (int slot : touched_) {
            out->slots.emplace_back(slot, scratch_[slot]);
            scratch_[slot] = 0;
            flag_[slot] = 0;
        }
        touched_.clear();
        out->pixels.swap(pixels_);
        pixels_.clear();
    }

private:
    void end_pixel() {
        if (pixel_ >= 0 && pixel_sum_ != 0) pixels_.emplace_back(pixel_, pixel_sum_);
        pixel_sum_ = 0;
    }

    std::vector<double> scratch_;
    std::vector<uint8_t> flag_;
    std::vector<int> touched_;
    const double* probe_ = nullptr;
    int pixel_ = -1;
    double pixel_sum_ = 0;
    std::vector<std::pair<int, double>> pixels_;
};

// The accumulator of the calling thread, reset for a new tile.
GradAccumulator& thread_grad_accumulator(int size, const double* probe);

// Where accumulate_tiles puts its sums: the gradient (size layout.total) and, optionally, the
// gradient image of a probe direction (one double per pixel).
struct GradOutput {
    double* grad;
    const double* probe = nullptr;  // [layout.total] or null
    double* probe_image = nullptr;  // [H * W], with probe
};

// Runs `tile_fn(tile, GradAccumulator&)` over tiles [0, num_tiles) in parallel and adds every
// tile's sums into `out` in tile order. The tiles run in batches of kTileBatch, so the sums
// waiting to be added take memory in proportion to a batch, not to the number of tiles (the
// order of the additions, and so every bit of the result, is the same).
constexpr int64_t kTileBatch = 1024;
template <typename TileFn>
void accumulate_tiles(const TileFn& tile_fn, int64_t num_tiles, int size, int num_threads, const GradOutput& out);

}  // namespace rt

#include <stdexcept>

#include "limits.h"
#include "parallel.h"

namespace rt {

template <typename TileFn>
void accumulate_tiles(const TileFn& tile_fn, int64_t num_tiles, int size, int num_threads, const GradOutput& out) {
    if (num_tiles > kMaxIndex) throw std::length_error("accumulate_tiles: more than 2^31 - 1 tiles");
    std::vector<TileGrad> results(size_t(std::min(num_tiles, kTileBatch)));
    for (int64_t first = 0; first < num_tiles; first += kTileBatch) {
        int64_t count = std::min(kTileBatch, num_tiles - first);
        auto kernel = [&](int i) {
            GradAccumulator& acc = thread_grad_accumulator(size, out.probe);
            tile_fn(int(first + i), acc);
            acc.flush(&results[size_t(i)]);
        };
        parallel_for(kernel, count, num_threads, 1);
        for (int64_t i = 0; i < count; ++i) {
            const TileGrad& r = results[size_t(i)];
            for (const auto& kv : r.slots) out.grad[kv.first] += kv.second;
            for (const auto& kv : r.pixels) out.probe_image[kv.first] += kv.second;
        }
    }
}

}  // namespace rt
