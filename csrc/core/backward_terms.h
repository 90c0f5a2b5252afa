// backward_terms.h: what the terms of the reverse pass share (backward.h gives the overview).
//
// The kernels' code is in headers, as RT_HOST_DEVICE functions that the CPU (the .cpp files) and
// the CUDA backend (csrc/cuda/backward.cu) both call; they add gradients through an accumulator
// type `Acc` (add(slot, value), set_pixel(pixel)): GradAccumulator on the CPU, a device one on
// the GPU.
//
//   backward_path.h         a path recorded for its reverse sweep; derivatives of a hit's geometry
//   backward_secondary.h    the secondary-edge term (an edge seen from a path vertex)
//   backward_interior.h     the interior kernel: the shading terms of every pixel sample's path,
//                           and at each of its vertices the secondary-edge samples
//   backward_primary.h      the primary-edge kernel (edges seen from the camera)
//   backward_interior.cpp, backward_primary.cpp   their CPU drivers (tiles on the thread pool)
//   backward.cpp            render_backward: checks, edge trees, the kernels in turn
#pragma once

#include <vector>

#include "backward.h"
#include "camera.h"
#include "edges.h"
#include "grad.h"
#include "rng.h"
#include "scene.h"

namespace rt {
namespace bwd {

// ---- A recorded path -------------------------------------------------------------------

struct PathVertex {
    Ray ray;            // the ray that found this vertex
    Hit hit;
    SurfacePoint sp;
    Real side;          // -1 when the surface is seen from behind (two-sided), else +1
    Vec3 ng, ns;        // normals on the side of wo
    Vec3 wo;            // unit, back along the ray
    BSDFParams bsdf;
    int material_id;
    int scatters;       // the BSDF was used here
    int light_id;       // emission received here (MIS weight emit_weight), or -1
    Real emit_weight;
    int nee_kind;       // 0: none, 1: environment, 2: area light
    int nee_light;
    Vec3 nee_wi, nee_Le;
    Real nee_scale;     // MIS weight / light pdf
    int has_next;       // a BSDF-sampled continuation
    Vec3 next_wi;
    Real next_pdf;
    Vec3 beta;          // throughput arriving at this vertex
    Vec3 L_in;          // radiance the path brings back along next_wi (filled after tracing)
    // BSDF values and terminator factors toward nee_wi and next_wi (filled after tracing, with
    // L_in; the reverse sweep reads them back instead of evaluating them again).
    Vec3 nee_f, next_f;
    Real nee_S, next_S;
};

struct Path {
    PathVertex v[kMaxPathVertices];
    int n;
    int escaped;        // the last ray left the scene (and an envmap exists)
    Ray escape_ray;
    Real escape_weight;
    Vec3 escape_beta;
};

enum { kNeeNone = 0, kNeeEnv = 1, kNeeArea = 2 };

// ---- Derivatives of a hit's geometry ----------------------------------------------------

struct TriangleVerts {
    int idx[3];
    Vec3 v[3];
};

RT_HOST_DEVICE RT_INLINE TriangleVerts load_triangle(const SceneView& s, int tri) {
    TriangleVerts t;
    for (int k = 0; k < 3; ++k) {
        t.idx[k] = s.indices[3 * size_t(tri) + k];
        t.v[k] = Vec3::load(s.vertices + 3 * size_t(t.idx[k]));
    }
    return t;
}

template <typename Acc>
RT_HOST_DEVICE RT_INLINE void add_vec3(Acc& acc, int base, int index, Vec3 g) {
    acc.add(base + 3 * index + 0, g.x);
    acc.add(base + 3 * index + 1, g.y);
    acc.add(base + 3 * index + 2, g.z);
}

// A view of one block of the parameter vector, for the d_ functions' Sink argument.
template <typename Acc>
struct SlotSink {
    Acc* acc;
    int base;
    RT_HOST_DEVICE void add(int index, Real value) { acc->add(base + index, value); }
};

// ---- Secondary edges --------------------------------------------------------------------

// With no bounce left and no environment, only emission arrives at a vertex: only edges in front
// of an area light matter there.
RT_HOST_DEVICE RT_INLINE bool emission_only(const SceneView& s, int remaining_bounces) {
    return remaining_bounces == 0 && !s.has_envmap;
}

// Light triangles up to which an emission-only edge sample finds the emitter behind the edge
// by testing them all instead of tracing the scene.
constexpr int kMaxBruteForceLightTriangles = 64;

RT_HOST_DEVICE RT_INLINE int count_light_triangles(const SceneView& s) {
    int n = 0;
    for (int l = 0; l < s.num_lights; ++l) n += s.lights[l].num_triangles;
    return n;
}

// Points on an edge part [t0, t1] (of v0 + t (v1 - v0)) are drawn uniformly in the angle the part
// subtends at x: the term falls off as 1 / distance, so uniform in t would give heavy tails
// where an edge passes close to x, as at contact. The distance from x to the edge's line and the
// part's ends along it, or false when x lies on the line (then uniform in t).
struct EdgeSpan {
    Real t0, t1, len, hgt, s_a, s_b;
    bool angular;
};

// What both backward kernels read (by value: a GPU kernel takes it as its argument, its pointers
// into device memory; p.stats is null there).
struct BackwardContext {
    SceneView s;
    CameraParams camera;
    GradLayout layout;
    BackwardParams p;
    const Real* d_image;  // [H, W, 3]
    const Edge* edges;
    int num_edges;
};

template <typename Acc>
RT_HOST_DEVICE RT_INLINE void add_camera_grad(Acc& acc, const GradLayout& layout, const DCameraParams& d_cam) {
    add_vec3(acc, layout.camera, 0, d_cam.position);
    add_vec3(acc, layout.camera, 1, d_cam.look_at);
    add_vec3(acc, layout.camera, 2, d_cam.up);
    acc.add(layout.camera + 9, d_cam.fov_degrees);
}

// Sample multiplier of the pixels that a visibility boundary crosses (the interior kernel).
constexpr int kBoundaryPixelBoost = 4;

// The kernels, each adding its terms into `out` (accumulate_tiles). The interior kernel draws
// the secondary edges from `tree` (every edge that can matter) or, for vertices whose own
// position needs no gradient, from `grad_tree` (the edges of the shapes that need them; with
// every shape needing them it is `tree`).
void interior_terms(const BackwardContext& context, const EdgeTree& tree, const EdgeTree& grad_tree,
                    const GradOutput& out);
void primary_edge_terms(const BackwardContext& context, const GradOutput& out);

// The edge trees the interior kernel draws secondary edges from: over every edge that can matter
// and, when p.shape_vertex_grad is set, over those of the shapes that need vertex gradients (left
// empty otherwise; the kernel then uses `tree` for both). Both empty without secondary edges.
void build_edge_trees(const SceneView& s, const std::vector<Edge>& edges, const BackwardParams& p, EdgeTree* tree,
                      EdgeTree* grad_tree);

// The primary-edge kernel's distribution over edges (*cdf, num_edges + 1 entries) and its number
// of samples (0: no edge to sample).
int64_t primary_edge_distribution(const BackwardContext& context, std::vector<Real>* cdf);

}  // namespace bwd
}  // namespace rt
