// edges.h: the mesh edges whose motion changes the image, for the boundary terms.
//
// Li et al. 2018, "Differentiable Monte Carlo Ray Tracing through Edge Sampling": when a
// triangle edge moves, the integrand jumps across it, and the derivative of the integral gets
// a term on the edge: the jump times the edge's normal velocity. An edge matters from a
// viewpoint x when it is
//   - a boundary edge (one adjacent face) or a non-manifold one,
//   - a silhouette: its two faces lie on opposite sides as seen from x,
//   - a shading crease: the mesh is flat-shaded and the two faces' normals differ, so the
//     radiance of the surface jumps across the edge even where it is not a silhouette.
#pragma once

#include <vector>

#include "scene.h"

namespace rt {

struct Edge {
    int v0, v1;    // global vertex indices
    int f0, f1;    // adjacent global triangles; f1 = -1 for a boundary (or non-manifold) edge
    int shape;
};

// The edges of every shape (built once per connectivity).
std::vector<Edge> build_edges(const SceneView& scene);

RT_HOST_DEVICE RT_INLINE Vec3 face_normal_unnormalised(const SceneView& s, int tri) {
    const int* idx = s.indices + 3 * size_t(tri);
    Vec3 v0 = Vec3::load(s.vertices + 3 * size_t(idx[0]));
    Vec3 v1 = Vec3::load(s.vertices + 3 * size_t(idx[1]));
    Vec3 v2 = Vec3::load(s.vertices + 3 * size_t(idx[2]));
    return cross(v1 - v0, v2 - v0);
}

// Whether the two faces of a manifold edge are non-degenerate and not coplanar.
RT_HOST_DEVICE RT_INLINE bool faces_differ(const SceneView& s, const Edge& e) {
    if (e.f1 < 0) return false;
    Vec3 n0 = face_normal_unnormalised(s, e.f0), n1 = face_normal_unnormalised(s, e.f1);
    Real l0 = length(n0), l1 = length(n1);
    return l0 > 0 && l1 > 0 && dot(n0, n1) < (1 - Real(1e-6)) * l0 * l1;
}

// Whether the image can jump across `e` as seen from point `x` (perspective) or along the
// direction `view_dir` (orthographic, use_dir = true). Creases count when `creases` is set.
RT_HOST_DEVICE RT_INLINE bool edge_matters(const SceneView& s, const Edge& e, Vec3 x, bool use_dir, Vec3 view_dir,
                                           bool creases) {
    if (e.f1 < 0) return true;
    Vec3 n0 = face_normal_unnormalised(s, e.f0);
    Vec3 n1 = face_normal_unnormalised(s, e.f1);
    Vec3 p = Vec3::load(s.vertices + 3 * size_t(e.v0));
    Real s0 = use_dir ? dot(n0, view_dir) : dot(n0, p - x);
    Real s1 = use_dir ? dot(n1, view_dir) : dot(n1, p - x);
    if ((s0 > 0) != (s1 > 0)) return true;
    // Flat shading: the faces' normals differ unless they are coplanar.
    return creases && !s.shapes[e.shape].has_normals && faces_differ(s, e);
}

}  // namespace rt

namespace rt {

// A hierarchy over edges for choosing, from a shading point, the edges likely to matter there
// (the idea of Li et al.'s edge tree): a binary tree of bounding boxes over the edges.
// Descending from the root, a child is chosen in proportion to its importance: the total
// length of its edges over their squared distance from the point (how large they can look),
// or 0 when the node provably holds no edge that matters there: all of it lies below the
// point's tangent plane, or a bound on its faces' normals shows that no edge below is a
// silhouette. Near the point, where box bounds say little, small nodes sum the exact
// importance of their edges. The probability of the leaf reached is the product of the
// choices, so the estimate stays unbiased (every edge that matters keeps a positive chance).
struct EdgeTreeNode {
    Vec3 bmin, bmax;  // bounds of the edges' points
    Vec3 nmin, nmax;  // bounds of the unit normals of their faces
    Real length;      // total length of the edges below
    int flags;        // kEdgeBoundary: some edge is a boundary; kEdgeCrease: some edge is a flat-shading crease
    int left, right;  // children, or -1 for a leaf
    int first, count; // the edges below: EdgeTreeView::items[first .. first + count)
};
enum { kEdgeBoundary = 1, kEdgeCrease = 2 };
constexpr int kEdgeTreeExactCount = 32;  // nodes this small near the point sum exact importances

struct EmitterBall {
    Vec3 c;
    Real r;
};

struct EdgeTreeView {
    const EdgeTreeNode* nodes = nullptr;
    const Edge* edges = nullptr;
    const int* items = nullptr;  // edge indices in leaf order
    int num_nodes = 0;
    const EmitterBall* emitters = nullptr;  // bounding balls of the area lights
    int num_emitters = 0;
};

// Where the edges are looked at from: a surface point, its geometric normal on the side the
// path is on, and whether flat-shading creases count (when light bounces on from there).
struct EdgeQuery {
    Vec3 x, n;
    bool creases;
    // When the radiance arriving at x is emission only (no bounce left after it, no
    // environment), an edge matters only if it lies between x and an emitter: these are the
    // emitters' bounding spheres. num_emitters < 0: light may come from any direction.
    const EmitterBall* emitters;
    int num_emitters;
};

// Whether a ball (c, r) can overlap the union of the segments from q.x to the emitters' balls:
// the angle between the directions to the two balls must be within the sum of their angular
// radii, and the ball must not lie wholly beyond the emitter. Conservative (never says no to a
// ball that overlaps), so pruning with it keeps the estimate unbiased.
RT_HOST_DEVICE RT_INLINE bool towards_emitters(const EdgeQuery& q, Vec3 c, Real r) {
    if (q.num_emitters < 0) return true;
    Vec3 e = c - q.x;
    Real E = length(e);
    if (E <= r) return true;
    // Angular radii alpha (emitter) and beta (ball) by their sines and cosines; the test
    // gamma <= alpha + beta (all in [0, pi]) as cos(gamma) >= cos(alpha + beta).
    Real sin_b = r / E, cos_b = std::sqrt(max_r(Real(0), 1 - sin_b * sin_b));
    for (int i = 0; i < q.num_emitters; ++i) {
        Vec3 d = q.emitters[i].c - q.x;
        Real rl = q.emitters[i].r;
        Real D = length(d);
        if (D <= rl) return true;
        if (E - r > D + rl) continue;  // wholly beyond the emitter
        Real sin_a = rl / D, cos_a = std::sqrt(max_r(Real(0), 1 - sin_a * sin_a));
        Real cos_sum = cos_a * cos_b - sin_a * sin_b;
        if (dot(d, e) >= (cos_sum - Real(1e-6)) * D * E) return true;
    }
    return false;
}

// Lower and upper bounds of dot(nrm, p - x) over nrm in [nmin, nmax], p in [bmin, bmax].
RT_HOST_DEVICE RT_INLINE void facing_bounds(const EdgeTreeNode& node, Vec3 x, Real* lo, Real* hi) {
    Vec3 dmin = node.bmin - x, dmax = node.bmax - x;
    *lo = 0;
    *hi = 0;
    for (int i = 0; i < 3; ++i) {
        Real a = node.nmin[i] * dmin[i], b = node.nmin[i] * dmax[i];
        Real c = node.nmax[i] * dmin[i], d = node.nmax[i] * dmax[i];
        *lo += min_r(min_r(a, b), min_r(c, d));
        *hi += max_r(max_r(a, b), max_r(c, d));
    }
}

// The part [*t0, *t1] of the segment a + t (b - a), t in [0, 1], whose points are seen from q.x
// within the cone of some emitter's ball (the hull of those parts when there are several);
// false when no part is. The points outside cannot change the emission seen through them, so
// sampling t only inside keeps the estimate unbiased. Without emitter pruning: [0, 1].
RT_HOST_DEVICE RT_INLINE bool emitter_interval(const EdgeQuery& q, Vec3 a, Vec3 b, Real* t0, Real* t1) {
    *t0 = 0;
    *t1 = 1;
    if (q.num_emitters < 0) return true;
    // In double, with the cone written through sines (|w x dn|^2 <= s^2 |w|^2, dot(w, dn) >= 0):
    // for small or far lights the cosine form cancels catastrophically in float.
    struct D3 {
        double x, y, z;
    };
    auto sub = [](Vec3 u, Vec3 v) { return D3{double(u.x) - v.x, double(u.y) - v.y, double(u.z) - v.z}; };
    auto dot3 = [](D3 u, D3 v) { return u.x * v.x + u.y * v.y + u.z * v.z; };
    auto cross3 = [](D3 u, D3 v) { return D3{u.y * v.z - u.z * v.y, u.z * v.x - u.x * v.z, u.x * v.y - u.y * v.x}; };
    D3 w0 = sub(a, q.x), e = sub(b, a);
    double lo = 2, hi = -1;
    for (int i = 0; i < q.num_emitters; ++i) {
        D3 d = sub(q.emitters[i].c, q.x);
        double r = double(q.emitters[i].r) * 1.001 + 1e-6;
        double D = std::sqrt(dot3(d, d));
        if (D <= r) return true;
        D3 dn{d.x / D, d.y / D, d.z / D};
        double s2 = (r / D) * (r / D);
        // The sign changes of dot(w, dn) (linear in t) and of |w x dn|^2 - s^2 |w|^2 (quadratic)
        // split [0, 1] into pieces on which the test is constant: test each piece at its middle.
        D3 w0n = cross3(w0, dn), en = cross3(e, dn);
        double p0 = dot3(w0, dn), pe = dot3(e, dn);
        double A = dot3(en, en) - s2 * dot3(e, e), B = 2 * (dot3(w0n, en) - s2 * dot3(w0, e));
        double C = dot3(w0n, w0n) - s2 * dot3(w0, w0);
        double cuts[6] = {0, 1, 0, 0, 0, 0};
        int n = 2;
        if (pe != 0) cuts[n++] = -p0 / pe;
        double disc = B * B - 4 * A * C;
        if (A != 0 && disc >= 0) {
            // The stable pair of roots: q / A and C / q.
            double qq = -0.5 * (B + (B >= 0 ? 1 : -1) * std::sqrt(disc));
            cuts[n++] = qq / A;
            if (qq != 0) cuts[n++] = C / qq;
        } else if (A == 0 && B != 0) {
            cuts[n++] = -C / B;
        }
        double ts[6];
        int m = 0;
        for (int k = 0; k < n; ++k) {
            if (cuts[k] >= 0 && cuts[k] <= 1) ts[m++] = cuts[k];
        }
        for (int k = 1; k < m; ++k) {
            for (int j = k; j > 0 && ts[j] < ts[j - 1]; --j) std::swap(ts[j], ts[j - 1]);
        }
        for (int k = 0; k + 1 < m; ++k) {
            if (ts[k + 1] <= ts[k]) continue;
            double t = 0.5 * (ts[k] + ts[k + 1]);
            D3 w{w0.x + e.x * t, w0.y + e.y * t, w0.z + e.z * t};
            D3 wn = cross3(w, dn);
            if (dot3(w, dn) >= 0 && dot3(wn, wn) <= s2 * dot3(w, w)) {
                lo = std::fmin(lo, ts[k]);
                hi = std::fmax(hi, ts[k + 1]);
            }
        }
    }
    if (!(hi > lo)) return false;
    // Room for the rounding of the cuts.
    *t0 = Real(std::fmax(0.0, lo - 1e-4));
    *t1 = Real(std::fmin(1.0, hi + 1e-4));
    return true;
}

// The largest height above the tangent plane (x, n) of a box's corners.
RT_HOST_DEVICE RT_INLINE Real height_above(Vec3 bmin, Vec3 bmax, const EdgeQuery& q) {
    Real h = 0;
    for (int i = 0; i < 3; ++i) h += q.n[i] * ((q.n[i] > 0 ? bmax[i] : bmin[i]) - q.x[i]);
    return h;
}

RT_HOST_DEVICE RT_INLINE Real edge_importance(const SceneView& s, const Edge& e, const EdgeQuery& q) {
    Vec3 a = Vec3::load(s.vertices + 3 * size_t(e.v0)), b = Vec3::load(s.vertices + 3 * size_t(e.v1));
    // Below (or, up to rounding, on) the tangent plane the cosine, and so the term, vanishes.
    Real scale = Real(1e-6) * (length(a - q.x) + length(b - q.x));
    if (dot(q.n, a - q.x) <= scale && dot(q.n, b - q.x) <= scale) return 0;
    // Cheapest tests first: the edge's ball against the emitters' cones, then the faces.
    if (!towards_emitters(q, (a + b) * Real(0.5), Real(0.5) * length(b - a))) return 0;
    if (!edge_matters(s, e, q.x, false, Vec3(0), q.creases)) return 0;
    Real t0, t1;
    if (!emitter_interval(q, a, b, &t0, &t1)) return 0;
    Vec3 a_in = a + (b - a) * t0, b_in = a + (b - a) * t1;  // the part that can matter
    Vec3 bmin = vmin(a_in, b_in), bmax = vmax(a_in, b_in);
    Vec3 d = vmax(vmax(bmin - q.x, q.x - bmax), Vec3(0));
    Real len = length(b_in - a_in);
    return len / max_r(length_squared(d), max_r(Real(0.25) * len * len, Real(1e-12)));
}

RT_HOST_DEVICE RT_INLINE Real edge_node_importance(const SceneView& s, const EdgeTreeView& tree,
                                                   const EdgeTreeNode& n, const EdgeQuery& q) {
    if (n.count == 1) return edge_importance(s, tree.edges[tree.items[n.first]], q);
    if (height_above(n.bmin, n.bmax, q) <= 0) return 0;
    Vec3 d = vmax(vmax(n.bmin - q.x, q.x - n.bmax), Vec3(0));
    Real r2 = Real(0.25) * length_squared(n.bmax - n.bmin);
    if (!towards_emitters(q, (n.bmin + n.bmax) * Real(0.5), std::sqrt(r2))) return 0;
    Real d2 = length_squared(d);
    if (d2 <= r2 && n.count <= kEdgeTreeExactCount) {
        Real sum = 0;
        for (int k = 0; k < n.count; ++k) sum += edge_importance(s, tree.edges[tree.items[n.first + k]], q);
        return sum;
    }
    if (!(n.flags & kEdgeBoundary) && !(q.creases && (n.flags & kEdgeCrease))) {
        Real lo, hi;
        facing_bounds(n, q.x, &lo, &hi);
        if (lo > 0 || hi < 0) return 0;  // every face below faces the same way: no silhouette
    }
    return n.length / max_r(d2, max_r(r2, Real(1e-12)));
}

// Chooses an edge that may matter as seen from q; returns its index and probability in *pmf, or
// -1. *u_remapped receives u rescaled within the choices made: a fresh uniform number, so one
// stratified number can pick both the edge and the point along it.
RT_HOST_DEVICE RT_INLINE int sample_edge_tree(const SceneView& s, const EdgeTreeView& tree, const EdgeQuery& q,
                                              Real u, Real* pmf, Real* u_remapped) {
    *pmf = 0;
    if (tree.num_nodes == 0) return -1;
    int node = 0;
    Real p = 1;
    if (edge_node_importance(s, tree, tree.nodes[0], q) <= 0) return -1;
    while (tree.nodes[node].left >= 0) {
        const EdgeTreeNode& n = tree.nodes[node];
        Real wl = edge_node_importance(s, tree, tree.nodes[n.left], q);
        Real wr = edge_node_importance(s, tree, tree.nodes[n.right], q);
        if (!(wl + wr > 0)) return -1;
        Real pl = wl / (wl + wr);
        if (u < pl) {
            u = u / pl;
            p *= pl;
            node = n.left;
        } else {
            u = (u - pl) / (1 - pl);
            p *= 1 - pl;
            node = n.right;
        }
        u = u < Real(0.99999994) ? u : Real(0.99999994);
    }
    *pmf = p;
    *u_remapped = u;
    return tree.items[tree.nodes[node].first];
}

// The edges that may matter from a point, with their exact importances, when there are few of
// them (as when only emission arrives and the tree prunes all but the edges in front of the
// lights). Sampling these by their exact importance beats descending the tree's bounds.
constexpr int kMaxEdgeCandidates = 32;
struct EdgeCandidates {
    int count;
    int edge[kMaxEdgeCandidates];
    Real cdf[kMaxEdgeCandidates + 1];  // cumulative importance, unnormalised
};

// Fills *c and returns true, or returns false when more than kMaxEdgeCandidates edges may matter
// (or finding out takes long).
RT_HOST_DEVICE RT_INLINE bool gather_edges(const SceneView& s, const EdgeTreeView& tree, const EdgeQuery& q,
                                           EdgeCandidates* c) {
    c->count = 0;
    c->cdf[0] = 0;
    if (tree.num_nodes == 0) return true;
    int stack[64];
    int top = 0;
    stack[top++] = 0;
    int budget = 64;  // nodes visited before giving up: a failed gather must stay cheap
    while (top > 0) {
        if (--budget < 0) return false;
        const EdgeTreeNode& n = tree.nodes[stack[--top]];
        if (n.count == 1) {
            int ei = tree.items[n.first];
            Real w = edge_importance(s, tree.edges[ei], q);
            if (!(w > 0)) continue;
            if (c->count == kMaxEdgeCandidates) return false;
            c->edge[c->count] = ei;
            c->cdf[c->count + 1] = c->cdf[c->count] + w;
            ++c->count;
            continue;
        }
        if (!(edge_node_importance(s, tree, n, q) > 0)) continue;
        if (top + 2 > 64) return false;
        stack[top++] = n.right;
        stack[top++] = n.left;
    }
    return true;
}

// Picks a candidate in proportion to its importance; returns its edge index and probability, and
// u rescaled within the choice.
RT_HOST_DEVICE RT_INLINE int sample_candidates(const EdgeCandidates& c, Real u, Real* pmf, Real* u_remapped) {
    *pmf = 0;
    Real total = c.count > 0 ? c.cdf[c.count] : 0;
    if (!(total > 0)) return -1;
    Real target = u * total;
    int i = 0;
    while (i + 1 < c.count && c.cdf[i + 1] <= target) ++i;
    Real w = c.cdf[i + 1] - c.cdf[i];
    if (!(w > 0)) return -1;
    *pmf = w / total;
    Real r = (target - c.cdf[i]) / w;
    *u_remapped = r < Real(0.99999994) ? (r > 0 ? r : Real(0)) : Real(0.99999994);
    return c.edge[i];
}

class EdgeTree {
public:
    // Builds over the edges that can ever matter (not those between coplanar faces).
    void build(const SceneView& scene, const std::vector<Edge>& edges);
    EdgeTreeView view() const {
        return EdgeTreeView{nodes_.data(), edges_, items_.data(), int(nodes_.size()), emitters_.data(),
                            int(emitters_.size())};
    }

private:
    std::vector<EdgeTreeNode> nodes_;
    std::vector<int> items_;
    std::vector<EmitterBall> emitters_;
    const Edge* edges_ = nullptr;
};

// The bounding balls of the area lights.
std::vector<EmitterBall> emitter_balls(const SceneView& s);

// Whether the shading of a smooth (interpolated-normal) shape can jump across edge e (two faces
// that are not coplanar): the
// shadow-terminator factor (material.h, terminator()) depends on the faces' geometric normals,
// so near the terminator the radiance differs on the two faces. Conservative: true when light
// may come from within the band near either face's horizon where that factor is below 1 (any
// direction with an environment or indirect light; else an area light's ball near the band).
bool smooth_edge_may_jump(const SceneView& s, const Edge& e, bool indirect, const std::vector<EmitterBall>& balls);

}  // namespace rt
