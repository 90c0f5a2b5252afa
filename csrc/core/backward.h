// backward.h: the reverse pass: gradients of a loss w.r.t. every scene parameter.
//
// Interior (shading) terms: each pixel sample's path is traced again from its own random
// sequence (the backward stream), recorded in a fixed-size array (no memory that grows with
// spp) and swept in reverse, calling the d_ function beside each forward function. Directions
// are held fixed in solid angle (Li et al. 2018), so moving geometry slides the path's vertices
// along their rays.
//
// Boundary (visibility) terms, also Li et al. 2018:
//   - primary: edges that matter as seen from the camera are sampled in proportion to their
//     projected length; the radiance on both sides of the sample times the edge's normal
//     velocity in screen space gives the derivative of the pixel it falls in;
//   - secondary: at every scattering vertex of a path, one edge is sampled; the integrand
//     (BSDF x cosine x incoming radiance) on both sides of the edge's projection onto the
//     sphere of directions, times its normal velocity there.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "edges.h"
#include "grad.h"
#include "scene.h"

namespace rt {

// The longest path the reverse pass records: gradients support max_bounces <= this - 1.
constexpr int kMaxPathVertices = 17;

// What a backward pass did, for diagnostics and tests (sums: the same for any thread count).
struct BackwardStats {
    std::atomic<int64_t> primary_edge_samples{0};   // points drawn on primary edges
    std::atomic<int64_t> secondary_edge_draws{0};   // edges drawn at path vertices
};

struct BackwardParams {
    int spp;              // interior samples per pixel
    int max_bounces;
    uint64_t seed;
    int edge_spp;         // primary edge samples per pixel of the image (total edge_spp * H * W)
    int interior;         // compute the interior (shading) terms
    int primary_edges;    // boundary terms of primary visibility
    // Secondary-visibility edge samples per path vertex (shadows, indirect; 0: none): where only
    // emission arrives (no bounce left, no environment; a sample costs at most a shadow ray), and
    // elsewhere (each sample traces two paths).
    int secondary_edges;
    int secondary_edges_traced;
    // Emission-only vertices take their secondary terms on one path in this many (>= 1): a
    // pixel's samples smp with (smp + offset) % stride == 0, the offset random per pixel and
    // seed, weighted up by the stride. There the draws are sampled by exact importance when the
    // edges that may matter can be gathered (at most kMaxEdgeCandidates, the common case) and
    // then have little variance, and the cost of a vertex is mostly finding those edges: fewer
    // vertices with more draws each is often the better trade. 1: every path (less noise where
    // the edges' terms vary much across a surface).
    int secondary_stride = 16;
    int num_threads;
    // Which geometry needs gradients: per shape, its vertex positions (null: every shape), and
    // the camera. Edge terms that can reach none of them are not sampled, so the edge samples go
    // to the edges whose motion is asked for.
    const uint8_t* shape_vertex_grad = nullptr;
    int camera_grad = 1;
    BackwardStats* stats = nullptr;  // optional
    // The gradient of the loss w.r.t. the auxiliary channels, [H, W, kAuxWidth] (path_tracer.h:
    // alpha, depth, normal, albedo), or null. Each has a primary-edge term (its jump across a
    // silhouette) and, but for alpha (coverage is piecewise constant), an interior term at the
    // first hit.
    const Real* d_aux = nullptr;
};

// Throws std::invalid_argument / std::length_error naming the count when a parameter, the
// image size or edge_spp * H * W passes its bound (limits.h).
void check_backward_params(const Camera& camera, const BackwardParams& params);

// d_image: [H, W, 3] gradient of the loss w.r.t. the radiance image. Adds into out.grad
// (layout.total doubles) and, with a probe, into out.probe_image. Checks the parameters first
// (check_backward_params); throws Cancelled when the calling thread's CancelFlag (cancel.h) is
// set before it is done, with `out` partly written.
void render_backward(const SceneView& scene, const CameraParams& camera, const std::vector<Edge>& edges,
                     const GradLayout& layout, const BackwardParams& params, const Real* d_image,
                     const GradOutput& out);

}  // namespace rt
