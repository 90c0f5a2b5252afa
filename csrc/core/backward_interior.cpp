// backward_interior.cpp: the interior kernel (backward_interior.h) on the CPU: tiles of pixels on
// the thread pool, each tile's sums added in tile order (accumulate_tiles).
#include <vector>

#include "backward_interior.h"
#include "cancel.h"
#include "parallel.h"

namespace rt {
namespace bwd {
namespace {

// The interior kernel's tiles are this many pixels on a side (fewer at the image's border).
constexpr int kTileSize = 8;

struct InteriorTile {
    InteriorKernel k;
    int tiles_x;

    void operator()(int tile, GradAccumulator& acc) const {
        const Camera& cam = k.s.camera;
        int tx = tile % tiles_x, ty = tile / tiles_x;
        int x0 = tx * kTileSize, y0 = ty * kTileSize;
        int x1 = std::min(cam.width, x0 + kTileSize), y1 = std::min(cam.height, y0 + kTileSize);
        int64_t draws = 0;
        // One path buffer for the tile (see InteriorKernel::pixel).
        Path path;
        for (int py = y0; py < y1; ++py) {
            for (int px = x0; px < x1; ++px) {
                // A cancelled pixel returns false; the call then throws Cancelled.
                if (!k.pixel(px, py, acc, path, &draws, [] { return cancel_requested(); })) return;
            }
        }
        if (k.p.stats) k.p.stats->secondary_edge_draws += draws;
    }
};

}  // namespace

void interior_terms(const BackwardContext& context, const EdgeTree& tree, const EdgeTree& grad_tree,
                    const GradOutput& out) {
    const Camera& cam = context.s.camera;
    const BackwardParams& p = context.p;
    InteriorTile t;
    t.k = interior_kernel(context, tree, grad_tree);
    // The probe rays through every pixel corner, each shared by up to four pixels.
    std::vector<Probe> corners(size_t(cam.width + 1) * size_t(cam.height + 1));
    auto probe_row = [&](int cy) {
        Probe* row = corners.data() + size_t(cy) * size_t(cam.width + 1);
        for (int cx = 0; cx <= cam.width; ++cx) row[cx] = probe(context.s, Real(cx), Real(cy));
    };
    parallel_for(probe_row, cam.height + 1, p.num_threads);
    t.k.corners = corners.data();
    t.tiles_x = (cam.width + kTileSize - 1) / kTileSize;
    int64_t tiles = int64_t(t.tiles_x) * ((cam.height + kTileSize - 1) / kTileSize);
    accumulate_tiles(t, tiles, context.layout.total, p.num_threads, out);
}

}  // namespace bwd
}  // namespace rt
