// backward.cpp: render_backward, the reverse pass: its checks, the edge trees, and its kernels in
// turn (backward_terms.h lists the files of its terms).
#include "backward.h"

#include "backward_terms.h"
#include "limits.h"
#include "parallel.h"

namespace rt {

GradAccumulator& thread_grad_accumulator(int size, const double* probe) {
    thread_local GradAccumulator acc;
    acc.reset(size, probe);
    return acc;
}

using bwd::kBoundaryPixelBoost;

void check_backward_params(const Camera& cam, const BackwardParams& p) {
    check_count(p.spp, 1, kMaxSpp, "spp");
    check_count(p.max_bounces, 0, kMaxPathVertices - 1, "max_bounces (with gradients)");
    check_count(p.edge_spp, 0, kMaxEdgeSpp, "edge_spp");
    check_count(p.secondary_edges, 0, kMaxSecondarySpp, "secondary_spp");
    check_count(p.secondary_edges_traced, 0, kMaxSecondarySpp, "secondary_spp (traced)");
    check_count(p.secondary_stride, 1, kMaxSecondaryStride, "secondary_stride");
    check_count(p.num_threads, 0, kMaxThreads, "threads");
    int64_t pixels = check_image_size(cam.height, cam.width);
    if (p.primary_edges) {
        checked_product(p.edge_spp, pixels, kMaxEdgeSamples, "edge_spp x pixels (primary-edge samples)");
    }
    checked_product(p.spp, kBoundaryPixelBoost, kMaxIndex, "spp x boundary boost");
}

namespace bwd {

void build_edge_trees(const SceneView& s, const std::vector<Edge>& edges, const BackwardParams& p, EdgeTree* tree,
                      EdgeTree* grad_tree) {
    if (p.secondary_edges + p.secondary_edges_traced == 0) return;
    // The tree over every edge serves the vertices with a bounce left (or under an environment
    // map); with one bounce and no environment every vertex takes emission-only queries.
    bool general = p.secondary_edges_traced > 0 && !emission_only(s, p.max_bounces - 1);
    // The two builds are independent: one per thread.
    auto build = [&](int i) {
        if (i == 0) tree->build(s, edges, nullptr, general);
        else grad_tree->build(s, edges, p.shape_vertex_grad, general);
    };
    parallel_for(build, p.shape_vertex_grad ? 2 : 1, p.num_threads, 1);
}

}  // namespace bwd

void render_backward(const SceneView& s, const CameraParams& camera, const std::vector<Edge>& edges,
                     const GradLayout& layout, const BackwardParams& p, const Real* d_image, const GradOutput& out) {
    const Camera& cam = s.camera;
    check_backward_params(cam, p);
    int num_edges = int(edges.size());
    EdgeTree tree, grad_tree;
    bwd::build_edge_trees(s, edges, p, &tree, &grad_tree);
    bwd::BackwardContext context{s, camera, layout, p, d_image, edges.data(), num_edges};
    if (p.interior || p.secondary_edges + p.secondary_edges_traced > 0) {
        bwd::interior_terms(context, tree, p.shape_vertex_grad ? grad_tree : tree, out);
    }
    if (p.primary_edges && num_edges > 0 && p.edge_spp > 0) bwd::primary_edge_terms(context, out);
}

}  // namespace rt
