// grad.h: where the reverse pass puts gradients, deterministically.
//
// Every differentiable scene value has a slot in one flat parameter vector (GradLayout).
// Kernels add their contributions through a GradAccumulator, one per worker thread: a dense
// scratch array plus the list of slots touched. Work is cut into fixed tiles (of pixels or of
// edge samples); a tile is processed start to finish by one thread in a fixed order and its
// sums are flushed as (slot, value) pairs sorted by slot. The tiles' pairs are then added up
// in tile order. So the gradient is bit-for-bit the same for any number of threads.
// (A GPU build will use atomics instead and be deterministic only up to rounding.)
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

// Host-side accumulator used by CPU kernels (one per thread; see the file comment).
class GradAccumulator {
public:
    void reset(int size) {
        if (int(scratch_.size()) != size) {
            scratch_.assign(size, 0.0);
            flag_.assign(size, 0);
        }
        touched_.clear();
    }
    void add(int slot, Real value) {
        if (value == 0) return;
        if (!flag_[slot]) {
            flag_[slot] = 1;
            touched_.push_back(slot);
        }
        scratch_[slot] += double(value);
    }
    // Moves the sums into `out` as (slot, value) pairs sorted by slot and clears them.
    void flush(std::vector<std::pair<int, double>>* out) {
        std::sort(touched_.begin(), touched_.end());
        out->clear();
        out->reserve(touched_.size());
        for (int slot : touched_) {
            out->emplace_back(slot, scratch_[slot]);
            scratch_[slot] = 0;
            flag_[slot] = 0;
        }
        touched_.clear();
    }

private:
    std::vector<double> scratch_;
    std::vector<uint8_t> flag_;
    std::vector<int> touched_;
};

// The accumulator of the calling thread.
GradAccumulator& thread_grad_accumulator(int size);

// A view of one block of the parameter vector, for the d_ functions' Sink argument.
struct GradSink {
    GradAccumulator* acc;
    int base;
    void add(int index, Real value) { acc->add(base + index, value); }
};

// Runs `tile_fn(tile, GradAccumulator&)` over tiles [0, num_tiles) in parallel and adds every
// tile's sums into `grad` (size layout.total) in tile order.
template <typename TileFn>
void accumulate_tiles(const TileFn& tile_fn, int num_tiles, int size, int num_threads, double* grad);

}  // namespace rt

#include "parallel.h"

namespace rt {

template <typename TileFn>
void accumulate_tiles(const TileFn& tile_fn, int num_tiles, int size, int num_threads, double* grad) {
    std::vector<std::vector<std::pair<int, double>>> results(num_tiles);
    auto kernel = [&](int tile) {
        GradAccumulator& acc = thread_grad_accumulator(size);
        tile_fn(tile, acc);
        acc.flush(&results[tile]);
    };
    parallel_for(kernel, num_tiles, num_threads, 1);
    for (const auto& r : results) {
        for (const auto& kv : r) grad[kv.first] += kv.second;
    }
}

}  // namespace rt
