// backward_primary.cpp: the primary-edge kernel (backward_primary.h) on the CPU: the distribution
// over edges, then tiles of samples on the thread pool.
#include <cmath>
#include <vector>

#include "backward_primary.h"
#include "cancel.h"
#include "parallel.h"

namespace rt {
namespace bwd {
namespace {

struct PrimaryEdgeTile {
    PrimaryEdgeKernel k;
    int samples_per_tile;

    void operator()(int tile, GradAccumulator& acc) const {
        int64_t begin = int64_t(tile) * samples_per_tile;
        int64_t end = std::min<int64_t>(k.num_samples, begin + samples_per_tile);
        for (int64_t i = begin; i < end; ++i) {
            if (cancel_requested()) return;  // the call throws Cancelled
            k.sample(i, acc);
        }
    }
};

void build_cdf(const std::vector<Real>& weights, std::vector<Real>* cdf) {
    cdf->assign(weights.size() + 1, 0);
    double total = 0;
    for (Real w : weights) total += w;
    double acc = 0;
    for (size_t i = 0; i < weights.size(); ++i) {
        acc += weights[i];
        (*cdf)[i + 1] = total > 0 ? Real(acc / total) : Real(0);
    }
    if (total > 0) cdf->back() = 1;
}

}  // namespace

int64_t primary_edge_distribution(const BackwardContext& context, std::vector<Real>* cdf) {
    const SceneView& s = context.s;
    const Camera& cam = s.camera;
    const BackwardParams& p = context.p;
    const int num_edges = context.num_edges;
    // Edges that matter from the camera, by projected length.
    std::vector<Real> screen_lengths(num_edges, 0);
    double all_length = 0, wanted_length = 0;
    bool creases = p.max_bounces >= 1;
    std::vector<EmitterBall> balls = emitter_balls(s);
    for (int i = 0; i < num_edges; ++i) {
        const Edge& e = context.edges[i];
        // Smooth shapes' edges where the terminator factor may differ on the two faces are
        // sampled too, at a quarter of the density (their jumps are small and rare).
        Real density = 1;
        if (!edge_matters(s, e, cam.position, cam.orthographic != 0, cam.forward, creases)) {
            if (!(creases && s.shapes[e.shape].has_normals && smooth_edge_may_jump(s, e, p.max_bounces >= 2, balls))) {
                continue;
            }
            density = Real(0.25);
        }
        Vec2 s0, s1;
        if (!project(cam, Vec3::load(s.vertices + 3 * size_t(e.v0)), &s0) ||
            !project(cam, Vec3::load(s.vertices + 3 * size_t(e.v1)), &s1)) {
            continue;
        }
        Vec2 d = s1 - s0;
        Real len = density * std::sqrt(d.x * d.x + d.y * d.y);
        all_length += len;
        // Its term moves only its own vertices and the camera: edges whose motion no
        // gradient asks for are not sampled.
        if (!p.camera_grad && p.shape_vertex_grad && !p.shape_vertex_grad[e.shape]) continue;
        screen_lengths[i] = len;
        wanted_length += len;
    }
    build_cdf(screen_lengths, cdf);
    if (!(cdf->back() > 0)) return 0;
    // edge_spp * H * W samples would go over all the edges; the edges sampled get the same
    // density (their share of them).
    double share = all_length > 0 ? wanted_length / all_length : 1.0;
    // (At most kMaxEdgeSamples: check_backward_params; the pattern indexes them in 32 bits.)
    int64_t all_samples = int64_t(p.edge_spp) * cam.width * cam.height;
    return std::min(all_samples, std::max<int64_t>(1, int64_t(std::ceil(double(all_samples) * share))));
}

void primary_edge_terms(const BackwardContext& context, const GradOutput& out) {
    std::vector<Real> cdf;
    int64_t num_samples = primary_edge_distribution(context, &cdf);
    if (num_samples == 0) return;
    PrimaryEdgeTile t;
    static_cast<BackwardContext&>(t.k) = context;
    t.k.choice = Distribution1D{cdf.data(), context.num_edges};
    t.k.num_samples = num_samples;
    t.samples_per_tile = 1024;
    if (context.p.stats) context.p.stats->primary_edge_samples += num_samples;
    int64_t tiles = (num_samples + t.samples_per_tile - 1) / t.samples_per_tile;
    accumulate_tiles(t, tiles, context.layout.total, context.p.num_threads, out);
}

}  // namespace bwd
}  // namespace rt
