// backward_terms.h: what the terms of the reverse pass share (backward.h gives the overview).
//
//   backward_path.cpp       a path recorded for its reverse sweep; derivatives of a hit's geometry
//   backward_interior.cpp   the interior kernel: the shading terms of every pixel sample's path,
//                           and at each of its vertices the secondary-edge samples
//   backward_secondary.cpp  the secondary-edge term (an edge seen from a path vertex)
//   backward_primary.cpp    the primary-edge kernel (edges seen from the camera)
//   backward.cpp            render_backward: checks, edge trees, the kernels in turn
#pragma once

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

// The same path as radiance() traces, recorded. Keep the two in step.
void trace_path(const SceneView& s, Ray ray, int max_bounces, const Sampler& sampler, Path* path);

// ---- Derivatives of a hit's geometry ----------------------------------------------------

struct TriangleVerts {
    int idx[3];
    Vec3 v[3];
};

inline TriangleVerts load_triangle(const SceneView& s, int tri) {
    TriangleVerts t;
    for (int k = 0; k < 3; ++k) {
        t.idx[k] = s.indices[3 * size_t(tri) + k];
        t.v[k] = Vec3::load(s.vertices + 3 * size_t(t.idx[k]));
    }
    return t;
}

inline void add_vec3(GradAccumulator& acc, int base, int index, Vec3 g) {
    acc.add(base + 3 * index + 0, g.x);
    acc.add(base + 3 * index + 1, g.y);
    acc.add(base + 3 * index + 2, g.z);
}

// Back-propagates gradients w.r.t. a vertex's position, shading normal and uv to the mesh
// and to the ray that found it (through the barycentrics of the ray-plane intersection).
void d_hit_geometry(const SceneView& s, const GradLayout& layout, const PathVertex& pv, Vec3 d_p, Vec3 d_ns,
                    Vec3 d_ng, Vec2 d_uv, GradAccumulator& acc, Vec3* d_org, Vec3* d_dir);

// ---- Secondary edges --------------------------------------------------------------------

// With no bounce left and no environment, only emission arrives at a vertex: only edges in front
// of an area light matter there.
inline bool emission_only(const SceneView& s, int remaining_bounces) { return remaining_bounces == 0 && !s.has_envmap; }

// Light triangles up to which an emission-only edge sample finds the emitter behind the edge
// by testing them all instead of tracing the scene.
constexpr int kMaxBruteForceLightTriangles = 64;

inline int count_light_triangles(const SceneView& s) {
    int n = 0;
    for (int l = 0; l < s.num_lights; ++l) n += s.lights[l].num_triangles;
    return n;
}

// The vertex of face f that is not on edge e.
Vec3 third_vertex(const SceneView& s, const Edge& e, int f);

// Of two faces f and g of edge e that lie on the same side of its image (a silhouette), whether f
// is the one in front: its plane separates the viewer (at offset `to_viewer` from the edge, or
// in that direction) from g's third vertex, for either winding.
bool face_in_front(const SceneView& s, const Edge& e, int f, int g, Vec3 to_viewer);

// Points on an edge part [t0, t1] (of v0 + t (v1 - v0)) are drawn uniformly in the angle the part
// subtends at x: the term falls off as 1 / distance, so uniform in t would give heavy tails
// where an edge passes close to x, as at contact. The distance from x to the edge's line and the
// part's ends along it, or false when x lies on the line (then uniform in t).
struct EdgeSpan {
    Real t0, t1, len, hgt, s_a, s_b;
    bool angular;
};

EdgeSpan edge_span(Vec3 x, Vec3 v0, Vec3 v1, Real t0, Real t1);

// Draws t from u; returns its density per unit t (0: none).
Real sample_edge_point(const EdgeSpan& sp, Real u, Real* t);

// The density per unit t with which sample_edge_point draws t.
Real edge_point_pdf(const EdgeSpan& sp, Real t);

// The boundary term of the scattering integral at vertex pv for edge `ei` at the point of
// parameter t, drawn with density 1 / inv_density (over edges and t together; the estimator's
// weight). Adds the gradient w.r.t. the edge's vertices and returns the one w.r.t. the vertex
// position. `path_sampler` gives the paths that estimate the incoming radiance on both sides.
Vec3 secondary_edge_term(const SceneView& s, const Edge* edges, const EdgeQuery& query, int ei, Real t,
                         Real inv_density, const GradLayout& layout, const PathVertex& pv, Vec3 d_L,
                         int remaining_bounces, bool few_light_triangles, const Sampler& path_sampler,
                         GradAccumulator& acc);

// What both backward kernels read.
struct BackwardContext {
    const SceneView* s;
    const CameraParams* camera;
    const GradLayout* layout;
    const BackwardParams* p;
    const Real* d_image;  // [H, W, 3]
    const Edge* edges;
    int num_edges;
};

inline void add_camera_grad(GradAccumulator& acc, const GradLayout& layout, const DCameraParams& d_cam) {
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

}  // namespace bwd
}  // namespace rt
