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
    if (creases && !s.shapes[e.shape].has_normals) {
        // Flat shading: the faces' normals differ unless they are coplanar.
        Real l0 = length(n0), l1 = length(n1);
        if (l0 > 0 && l1 > 0 && dot(n0, n1) < (1 - Real(1e-6)) * l0 * l1) return true;
    }
    return false;
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

struct EdgeTreeView {
    const EdgeTreeNode* nodes = nullptr;
    const Edge* edges = nullptr;
    const int* items = nullptr;  // edge indices in leaf order
    int num_nodes = 0;
};

// Where the edges are looked at from: a surface point, its geometric normal on the side the
// path is on, and whether flat-shading creases count (when light bounces on from there).
struct EdgeQuery {
    Vec3 x, n;
    bool creases;
};

// Lower and upper bounds of dot(nrm, p - x) over nrm in [nmin, nmax], p in [bmin, bmax].
RT_HOST_DEVICE RT_INLINE void facing_bounds(const EdgeTreeNode& node, Vec3 x, Real* lo, Real* hi) {
    Vec3 dmin = node.bmin - x, dmax = node.bmax - x;
    *lo = 0;
    *hi = 0;
    for (int i = 0; i < 3; ++i) {
        Real a = node.nmin[i] * dmin[i], b = node.nmin[i] * dmax[i];
        Real c = node.nmax[i] * dmin[i], d = node.nmax[i] * dmax[i];
        *lo += std::fmin(std::fmin(a, b), std::fmin(c, d));
        *hi += std::fmax(std::fmax(a, b), std::fmax(c, d));
    }
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
    if (!edge_matters(s, e, q.x, false, Vec3(0), q.creases)) return 0;
    Vec3 bmin = vmin(a, b), bmax = vmax(a, b);
    Vec3 d = vmax(vmax(bmin - q.x, q.x - bmax), Vec3(0));
    Real len = length(b - a);
    return len / std::fmax(length_squared(d), std::fmax(Real(0.25) * len * len, Real(1e-12)));
}

RT_HOST_DEVICE RT_INLINE Real edge_node_importance(const SceneView& s, const EdgeTreeView& tree,
                                                   const EdgeTreeNode& n, const EdgeQuery& q) {
    if (n.count == 1) return edge_importance(s, tree.edges[tree.items[n.first]], q);
    if (height_above(n.bmin, n.bmax, q) <= 0) return 0;
    Vec3 d = vmax(vmax(n.bmin - q.x, q.x - n.bmax), Vec3(0));
    Real r2 = Real(0.25) * length_squared(n.bmax - n.bmin);
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
    return n.length / std::fmax(d2, std::fmax(r2, Real(1e-12)));
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

class EdgeTree {
public:
    // Builds over the edges that can ever matter (not those between coplanar faces).
    void build(const SceneView& scene, const std::vector<Edge>& edges);
    EdgeTreeView view() const { return EdgeTreeView{nodes_.data(), edges_, items_.data(), int(nodes_.size())}; }

private:
    std::vector<EdgeTreeNode> nodes_;
    std::vector<int> items_;
    const Edge* edges_ = nullptr;
};

}  // namespace rt
