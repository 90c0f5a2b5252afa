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
// importance of their edges and the edge is then drawn among them by that importance. The
// probability of the edge drawn is the product of the choices, so the estimate stays unbiased
// (every edge that matters keeps a positive chance).
struct EdgeTreeNode {
    Vec3 bmin, bmax;  // bounds of the edges' points
    Vec3 nmin, nmax;  // bounds of the unit normals of their faces
    Real length;      // total length of the edges below
    Real dlo, dhi;    // range of dot(n, a - centre) over the edges' first ends a (the planes hold both ends)
                      // and their faces' unit normals n
    int flags;        // kEdgeBoundary: some edge is a boundary; kEdgeCrease: some edge is a flat-shading crease
    int left, right;  // children, or -1 for a leaf
    int first, count; // the edges below: EdgeTreeView::leaves[first .. first + count)
};
enum { kEdgeBoundary = 1, kEdgeCrease = 2 };
constexpr int kEdgeTreeExactCount = 32;  // nodes this small near the point sum exact importances

// What the tree stores of one edge, in leaf order: its points and its faces' normals as they are
// in this render (the tree is built per backward pass), so that testing an edge reads one record.
struct EdgeLeaf {
    Vec3 a, b;    // the edge's ends
    Vec3 n0, n1;  // its faces' normals, unnormalised (n1 = n0 for a boundary edge)
    int edge;     // index into the edge list
    int flags;    // kEdgeBoundary, or kEdgeCrease when its flat-shaded faces differ
};

struct EmitterBall {
    Vec3 c;
    Real r;
};

struct EdgeTreeView {
    const EdgeTreeNode* nodes = nullptr;
    const EdgeLeaf* leaves = nullptr;
    int num_nodes = 0;
    const EmitterBall* emitters = nullptr;  // bounding balls of the area lights
    int num_emitters = 0;
    const int* parent = nullptr;        // node -> its parent (-1 for the root)
    const int* node_of_leaf = nullptr;  // leaf position -> its node (count 1)
    const int* leaf_of_edge = nullptr;  // edge index -> leaf position, or -1 when not in the tree
};

// The cone of directions from a query point to an emitter's ball: axis dn, distance D to the
// centre, ball radius r, and the sine and cosine of the cone's half-angle. inside: the point
// lies in the ball (every direction counts).
struct EmitterCone {
    Vec3 dn;
    Real D, r, sin_a, cos_a;
    bool inside;
};
constexpr int kMaxQueryEmitters = 8;  // cones precomputed per query; more lights are computed per test

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
    EmitterCone cones[kMaxQueryEmitters];
};

RT_HOST_DEVICE RT_INLINE EmitterCone emitter_cone(Vec3 x, const EmitterBall& ball) {
    EmitterCone c;
    Vec3 d = ball.c - x;
    c.D = length(d);
    c.r = ball.r;
    c.inside = c.D <= ball.r;
    c.dn = c.inside ? Vec3(0, 0, 1) : d / c.D;
    c.sin_a = c.inside ? Real(1) : ball.r / c.D;
    c.cos_a = std::sqrt(max_r(Real(0), 1 - c.sin_a * c.sin_a));
    return c;
}

// A query from x (geometric normal n); emitters given: only emission arrives there.
RT_HOST_DEVICE RT_INLINE EdgeQuery make_edge_query(Vec3 x, Vec3 n, bool creases, const EmitterBall* emitters,
                                                   int num_emitters) {
    EdgeQuery q;
    q.x = x;
    q.n = n;
    q.creases = creases;
    q.emitters = emitters;
    q.num_emitters = emitters ? num_emitters : -1;
    for (int i = 0; i < q.num_emitters && i < kMaxQueryEmitters; ++i) q.cones[i] = emitter_cone(x, emitters[i]);
    return q;
}

// Whether a ball (c, r) can overlap the union of the segments from q.x to the emitters' balls:
// the ball must meet the cone from x to an emitter's ball and not lie wholly beyond the
// emitter. Conservative (never says no to a ball that overlaps), so pruning with it keeps the
// estimate unbiased. The cone test is the distance from the ball's centre to the cone's
// surface, p cos(alpha) - a sin(alpha) <= r (a along the axis, p across it), which near the
// apex only errs towards yes; squared, it needs no square root.
RT_HOST_DEVICE RT_INLINE bool towards_emitters(const EdgeQuery& q, Vec3 c, Real r) {
    if (q.num_emitters < 0) return true;
    Vec3 e = c - q.x;
    Real E2 = length_squared(e);
    if (E2 <= r * r) return true;
    for (int i = 0; i < q.num_emitters; ++i) {
        EmitterCone k = i < kMaxQueryEmitters ? q.cones[i] : emitter_cone(q.x, q.emitters[i]);
        if (k.inside) return true;
        Real far = k.D + k.r + r;
        if (E2 > far * far * Real(1.0001)) continue;  // wholly beyond the emitter
        Real a = dot(e, k.dn);
        Real p2 = length_squared(e - k.dn * a);  // across the axis (E2 - a^2 cancels in float)
        // Room for rounding: a relative 1e-4 of the ball's radius and of the distance along the axis.
        Real rhs = r * Real(1.0001) + a * k.sin_a + Real(1e-4) * std::fabs(a);
        if (rhs >= 0 && p2 * k.cos_a * k.cos_a <= rhs * rhs) return true;
    }
    return false;
}

// Lower and upper bounds of dot(n, p - x) over the unit face normals n of a node's edges and
// their ends p.
RT_HOST_DEVICE RT_INLINE void facing_bounds(const EdgeTreeNode& node, Vec3 x, Real* lo, Real* hi) {
    Vec3 dmin = node.bmin - x, dmax = node.bmax - x;
    *lo = 0;
    *hi = 0;
    // dot(n, p - x) = dot(n, p - c) + dot(n, c - x), c the box's centre: the first term's range
    // was found when building, the second's comes from the normals' bounds alone.
    Vec3 w = (node.bmin + node.bmax) * Real(0.5) - x;
    Real lo2 = node.dlo, hi2 = node.dhi;
    for (int i = 0; i < 3; ++i) {
        Real a = node.nmin[i] * dmin[i], b = node.nmin[i] * dmax[i];
        Real c = node.nmax[i] * dmin[i], d = node.nmax[i] * dmax[i];
        *lo += min_r(min_r(a, b), min_r(c, d));
        *hi += max_r(max_r(a, b), max_r(c, d));
        Real e = node.nmin[i] * w[i], f = node.nmax[i] * w[i];
        lo2 += min_r(e, f);
        hi2 += max_r(e, f);
    }
    // Both bound the same values; the second is far tighter near x. Room for rounding (of the
    // range found when building, too, which grows with the node's size).
    Vec3 ext = node.bmax - node.bmin;
    Real slack = Real(1e-5) * (std::fabs(w.x) + std::fabs(w.y) + std::fabs(w.z) + node.dhi - node.dlo +
                               ext.x + ext.y + ext.z);
    *lo = max_r(*lo, lo2 - slack);
    *hi = min_r(*hi, hi2 + slack);
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
        double D = std::sqrt(dot3(d, d));
        double r = double(q.emitters[i].r) * 1.001 + 1e-6 * D;  // (room for rounding, relative)
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
            for (int j = k; j > 0 && ts[j] < ts[j - 1]; --j) {
                double tmp = ts[j];  // (std::swap is host-only under CUDA)
                ts[j] = ts[j - 1];
                ts[j - 1] = tmp;
            }
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

// Whether the image can jump across a tree edge as seen from x (edge_matters for a leaf).
RT_HOST_DEVICE RT_INLINE bool leaf_matters(const EdgeLeaf& l, Vec3 x, bool creases) {
    if (l.flags & kEdgeBoundary) return true;
    Real s0 = dot(l.n0, l.a - x), s1 = dot(l.n1, l.a - x);
    if ((s0 > 0) != (s1 > 0)) return true;
    return creases && (l.flags & kEdgeCrease);
}

RT_HOST_DEVICE RT_INLINE Real edge_importance(const EdgeLeaf& l, const EdgeQuery& q) {
    Vec3 a = l.a, b = l.b;
    // Below (or, up to rounding, on) the tangent plane the cosine, and so the term, vanishes.
    Real ha = dot(q.n, a - q.x), hb = dot(q.n, b - q.x);
    if (max_r(ha, hb) <= 0) return 0;
    Real scale = Real(1e-6) * (length(a - q.x) + length(b - q.x));
    if (ha <= scale && hb <= scale) return 0;
    // Cheapest tests first: the edge's ball against the emitters' cones, then the faces.
    if (!towards_emitters(q, (a + b) * Real(0.5), Real(0.5) * length(b - a))) return 0;
    if (!leaf_matters(l, q.x, q.creases)) return 0;
    Real t0, t1;
    if (!emitter_interval(q, a, b, &t0, &t1)) return 0;
    Vec3 a_in = a + (b - a) * t0, b_in = a + (b - a) * t1;  // the part that can matter
    Vec3 bmin = vmin(a_in, b_in), bmax = vmax(a_in, b_in);
    Vec3 d = vmax(vmax(bmin - q.x, q.x - bmax), Vec3(0));
    Real len = length(b_in - a_in);
    Real denom = max_r(length_squared(d), Real(0.25) * len * len);
    return denom > 0 ? len / denom : Real(0);  // (0 only for a part of no length)
}

// Whether node n, seen from q, is small and near enough for its edges' exact importances.
RT_HOST_DEVICE RT_INLINE bool node_is_exact(const EdgeTreeNode& n, const EdgeQuery& q) {
    if (n.count > kEdgeTreeExactCount) return false;
    Vec3 d = vmax(vmax(n.bmin - q.x, q.x - n.bmax), Vec3(0));
    return length_squared(d) <= Real(0.25) * length_squared(n.bmax - n.bmin);
}

RT_HOST_DEVICE RT_INLINE Real edge_node_importance(const EdgeTreeView& tree, const EdgeTreeNode& n,
                                                   const EdgeQuery& q) {
    if (n.count == 1) return edge_importance(tree.leaves[n.first], q);
    if (height_above(n.bmin, n.bmax, q) <= 0) return 0;
    Vec3 d = vmax(vmax(n.bmin - q.x, q.x - n.bmax), Vec3(0));
    Real r2 = Real(0.25) * length_squared(n.bmax - n.bmin);
    if (!towards_emitters(q, (n.bmin + n.bmax) * Real(0.5), std::sqrt(r2))) return 0;
    Real d2 = length_squared(d);
    if (d2 <= r2 && n.count <= kEdgeTreeExactCount) {
        Real sum = 0;
        for (int k = 0; k < n.count; ++k) sum += edge_importance(tree.leaves[n.first + k], q);
        return sum;
    }
    if (!(n.flags & kEdgeBoundary) && !(q.creases && (n.flags & kEdgeCrease))) {
        Real lo, hi;
        facing_bounds(n, q.x, &lo, &hi);
        if (lo > 0 || hi < 0) return 0;  // every face below faces the same way: no silhouette
    }
    Real denom = max_r(d2, r2);
    return denom > 0 ? n.length / denom : Real(0);  // (0 only for a node of no size)
}

// Draws the edges of `n` stratified numbers u[0 .. n) (ascending, in [0, 1)) in one descent:
// at each node the numbers below the left child's share go left and the rest right, each
// rescaled within its choice, so a node's importance is computed once for all of them. A node
// that is exact (node_is_exact) is resolved among its edges by their exact importances.
// Out, per number j: edge[j] (an index into the edge list, or -1 when none may matter), its
// probability pmf[j], and u_t[j] the number rescaled within the choices made (a fresh uniform
// number, which places the point along the edge).
constexpr int kMaxEdgeDraws = 16;
RT_HOST_DEVICE RT_INLINE void sample_edge_tree(const EdgeTreeView& tree, const EdgeQuery& q, int n, const Real* u,
                                               int* edge, Real* pmf, Real* u_t) {
    Real uu[kMaxEdgeDraws];
    for (int j = 0; j < n; ++j) {
        edge[j] = -1;
        pmf[j] = 0;
        u_t[j] = 0;
        uu[j] = u[j];
    }
    if (tree.num_nodes == 0 || n <= 0) return;
    struct Task {
        int node, j0, j1;
        Real p;
    };
    Task stack[64];
    int top = 0;
    if (edge_node_importance(tree, tree.nodes[0], q) <= 0) return;
    stack[top++] = Task{0, 0, n, Real(1)};
    const Real one_minus = Real(0.99999994);
    while (top > 0) {
        Task t = stack[--top];
        const EdgeTreeNode& nd = tree.nodes[t.node];
        if (nd.count == 1) {
            for (int j = t.j0; j < t.j1; ++j) {
                edge[j] = tree.leaves[nd.first].edge;
                pmf[j] = t.p;
                u_t[j] = uu[j];
            }
            continue;
        }
        if (node_is_exact(nd, q)) {
            Real w[kEdgeTreeExactCount + 1];
            w[0] = 0;
            for (int k = 0; k < nd.count; ++k) w[k + 1] = w[k] + edge_importance(tree.leaves[nd.first + k], q);
            Real total = w[nd.count];
            if (!(total > 0)) continue;
            int k = 0;
            for (int j = t.j0; j < t.j1; ++j) {
                Real target = uu[j] * total;
                while (k + 1 < nd.count && w[k + 1] <= target) ++k;  // targets ascend with j
                Real wk = w[k + 1] - w[k];
                if (!(wk > 0)) continue;
                Real r = (target - w[k]) / wk;
                edge[j] = tree.leaves[nd.first + k].edge;
                pmf[j] = t.p * (wk / total);
                u_t[j] = r < one_minus ? (r > 0 ? r : Real(0)) : one_minus;
            }
            continue;
        }
        Real wl = edge_node_importance(tree, tree.nodes[nd.left], q);
        Real wr = edge_node_importance(tree, tree.nodes[nd.right], q);
        if (!(wl + wr > 0)) continue;
        Real pl = wl / (wl + wr);
        int k = t.j0;
        while (k < t.j1 && uu[k] < pl) ++k;
        for (int j = t.j0; j < k; ++j) uu[j] = min_r(uu[j] / pl, one_minus);
        for (int j = k; j < t.j1; ++j) uu[j] = min_r((uu[j] - pl) / (1 - pl), one_minus);
        if (top + 2 > 64) continue;  // deeper than any tree built here
        if (k < t.j1) stack[top++] = Task{nd.right, k, t.j1, t.p * (1 - pl)};
        if (t.j0 < k) stack[top++] = Task{nd.left, t.j0, k, t.p * pl};
    }
}

// The probability that sample_edge_tree draws `edge` for query q (0 when it cannot): the same
// choices, walked from the root to the edge's leaf.
RT_HOST_DEVICE RT_INLINE Real edge_tree_pmf(const EdgeTreeView& tree, const EdgeQuery& q, int edge) {
    if (tree.num_nodes == 0 || edge < 0) return 0;
    int pos = tree.leaf_of_edge[edge];
    if (pos < 0) return 0;
    int chain[64];
    int len = 0;
    for (int node = tree.node_of_leaf[pos]; node >= 0 && len < 64; node = tree.parent[node]) chain[len++] = node;
    if (len == 0 || tree.parent[chain[len - 1]] >= 0) return 0;  // deeper than any tree built here
    if (edge_node_importance(tree, tree.nodes[0], q) <= 0) return 0;
    Real p = 1;
    for (int i = len - 1; i >= 0; --i) {
        const EdgeTreeNode& nd = tree.nodes[chain[i]];
        if (nd.count == 1) return p;
        if (node_is_exact(nd, q)) {
            Real total = 0, w = 0;
            for (int k = 0; k < nd.count; ++k) {
                Real wk = edge_importance(tree.leaves[nd.first + k], q);
                total += wk;
                if (nd.first + k == pos) w = wk;
            }
            return total > 0 ? p * (w / total) : Real(0);
        }
        Real wl = edge_node_importance(tree, tree.nodes[nd.left], q);
        Real wr = edge_node_importance(tree, tree.nodes[nd.right], q);
        if (!(wl + wr > 0)) return 0;
        p *= (chain[i - 1] == nd.left ? wl : wr) / (wl + wr);
    }
    return p;
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
// or finding out takes more than `budget` nodes (a failed gather must stay cheap).
RT_HOST_DEVICE RT_INLINE bool gather_edges(const EdgeTreeView& tree, const EdgeQuery& q, int budget,
                                           EdgeCandidates* c) {
    c->count = 0;
    c->cdf[0] = 0;
    if (tree.num_nodes == 0) return true;
    int stack[64];
    int top = 0;
    stack[top++] = 0;
    while (top > 0) {
        if (--budget < 0) return false;
        const EdgeTreeNode& n = tree.nodes[stack[--top]];
        if (n.count == 1) {
            const EdgeLeaf& l = tree.leaves[n.first];
            Real w = edge_importance(l, q);
            if (!(w > 0)) continue;
            if (c->count == kMaxEdgeCandidates) return false;
            c->edge[c->count] = l.edge;
            c->cdf[c->count + 1] = c->cdf[c->count] + w;
            ++c->count;
            continue;
        }
        if (!(edge_node_importance(tree, n, q) > 0)) continue;
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
    // Builds over the edges that can ever matter (not those between coplanar faces), and a second
    // tree over those of them that can bound emission seen from anywhere (silhouettes seen from
    // some emitter point, boundaries), for emission-only queries. shape_filter (one flag per
    // shape, or null for all): only the edges of the shapes flagged. general = false leaves the
    // first tree empty (no query will need it: only emission arrives at every vertex).
    void build(const SceneView& scene, const std::vector<Edge>& edges, const uint8_t* shape_filter = nullptr,
               bool general = true);
    bool empty() const { return all_.nodes.empty() && emission_.nodes.empty(); }
    EdgeTreeView view() const { return make_view(all_); }
    EdgeTreeView emission_view() const { return make_view(emission_); }

    struct Arrays {
        std::vector<EdgeTreeNode> nodes;
        std::vector<EdgeLeaf> leaves;
        std::vector<int> parent, node_of_leaf, leaf_of_edge;
    };
    // The arrays the views point into (a device copy of the tree copies them).
    const Arrays& all_arrays() const { return all_; }
    const Arrays& emission_arrays() const { return emission_; }
    const std::vector<EmitterBall>& emitters() const { return emitters_; }

private:
    EdgeTreeView make_view(const Arrays& a) const {
        return EdgeTreeView{a.nodes.data(), a.leaves.data(), int(a.nodes.size()), emitters_.data(),
                            int(emitters_.size()), a.parent.data(), a.node_of_leaf.data(), a.leaf_of_edge.data()};
    }
    Arrays all_, emission_;
    std::vector<EmitterBall> emitters_;
};

// A self-test of the tree's pruning, which must be conservative for the estimate to stay
// unbiased: from `queries` random points on the scene's triangles (either side, creases on or
// off, and emission-only queries for the emission tree), every edge whose own importance is
// positive must have a positive probability under the tree (edge_tree_pmf) and be among the
// edges that gather_edges collects when it succeeds. `shrink` in [0, 1) narrows every node's
// facing bound by that fraction of its width first (a deliberately wrong tree, for the test's
// control; 0 checks the tree as built). Returns the number of violations; *pairs counts the
// (point, edge) pairs of positive importance checked.
int check_edge_tree(const SceneView& s, const std::vector<Edge>& edges, uint64_t seed, int queries, Real shrink,
                    int64_t* pairs);

// The bounding balls of the area lights, one per light in light order.
std::vector<EmitterBall> emitter_balls(const SceneView& s);

// Whether the shading of a smooth (interpolated-normal) shape can jump across edge e (two faces
// that are not coplanar): the
// shadow-terminator factor (material.h, terminator()) depends on the faces' geometric normals,
// so near the terminator the radiance differs on the two faces. Conservative: true when light
// may come from within the band near either face's horizon where that factor is below 1 (any
// direction with an environment or indirect light; else an area light's ball near the band).
bool smooth_edge_may_jump(const SceneView& s, const Edge& e, bool indirect, const std::vector<EmitterBall>& balls);

}  // namespace rt
