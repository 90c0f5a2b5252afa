#include "edges.h"

#include <algorithm>
#include <cstdint>

#include "rng.h"

namespace rt {

std::vector<Edge> build_edges(const SceneView& s) {
    // Every (sorted vertex pair, face) occurrence, then grouped by vertex pair.
    struct Occurrence {
        uint64_t key;
        int face;
    };
    std::vector<Occurrence> occ;
    occ.reserve(size_t(s.num_triangles) * 3);
    for (int f = 0; f < s.num_triangles; ++f) {
        const int* idx = s.indices + 3 * size_t(f);
        for (int k = 0; k < 3; ++k) {
            uint32_t a = uint32_t(idx[k]), b = uint32_t(idx[(k + 1) % 3]);
            if (a == b) continue;  // a collapsed edge of a degenerate triangle
            if (a > b) std::swap(a, b);
            occ.push_back({(uint64_t(a) << 32) | b, f});
        }
    }
    std::sort(occ.begin(), occ.end(), [](const Occurrence& x, const Occurrence& y) {
        return x.key != y.key ? x.key < y.key : x.face < y.face;
    });
    std::vector<Edge> edges;
    edges.reserve(occ.size() / 2 + 1);
    for (size_t i = 0; i < occ.size();) {
        size_t j = i;
        while (j < occ.size() && occ[j].key == occ[i].key) ++j;
        int v0 = int(occ[i].key >> 32), v1 = int(occ[i].key & 0xffffffffu);
        if (j - i == 2) {
            edges.push_back({v0, v1, occ[i].face, occ[i + 1].face, s.tri_shape[occ[i].face]});
        } else {
            // Boundary (one face) or non-manifold (three or more): each face's edge on its own.
            for (size_t k = i; k < j; ++k) edges.push_back({v0, v1, occ[k].face, -1, s.tri_shape[occ[k].face]});
        }
        i = j;
    }
    return edges;
}

}  // namespace rt

namespace rt {

namespace {

// Below this depth a node's long edges may be split off (split_long_edges); deeper nodes split at
// the median only (the descents keep 64 nodes on their stacks).
constexpr int kMaxLongSplitDepth = 32;

// The size of a box: the sum of its extents (an edge's box may be flat).
Real box_size(Vec3 lo, Vec3 hi) {
    Vec3 d = hi - lo;
    return d.x + d.y + d.z;
}

// Moves the edges of items[begin, end) whose box is larger than a quarter of the node's box
// (bmin, bmax) to the front and returns where the others start, or -1 when there are none or
// only those. A long edge left among short ones widens the box of every node it shares with them
// down to a leaf (the ground's border beside a sphere's edges: each such node is near every
// point and never pruned); split off, it has a subtree of its own.
template <class End0, class End1>
int split_long_edges(const End0& p0, const End1& p1, Vec3 bmin, Vec3 bmax, std::vector<int>* items, int begin,
                     int end) {
    Real limit = Real(0.25) * box_size(bmin, bmax);
    auto is_long = [&](int i) { return box_size(vmin(p0(i), p1(i)), vmax(p0(i), p1(i))) > limit; };
    auto first_short = std::partition(items->begin() + begin, items->begin() + end, is_long);
    int mid = int(first_short - items->begin());
    return mid > begin && mid < end ? mid : -1;
}

// Top-down splits over edges[items] (long edges apart, then the median of the midpoints on their
// longest axis), then the leaf records in leaf order.
void build_edge_nodes(const SceneView& s, const Edge* edges, int num_edges, const std::vector<Vec3>& n0,
                      const std::vector<Vec3>& n1, std::vector<int> items, EdgeTree::Arrays* out) {
    std::vector<EdgeTreeNode>* nodes = &out->nodes;
    std::vector<EdgeLeaf>* leaves = &out->leaves;
    nodes->clear();
    leaves->clear();
    out->parent.clear();
    out->node_of_leaf.assign(items.size(), -1);
    out->leaf_of_edge.assign(size_t(num_edges), -1);
    if (items.empty()) return;
    auto p0 = [&](int i) { return Vec3::load(s.vertices + 3 * size_t(edges[i].v0)); };
    auto p1 = [&](int i) { return Vec3::load(s.vertices + 3 * size_t(edges[i].v1)); };
    struct Task { int node, begin, end, parent, depth; };
    nodes->push_back({});
    std::vector<Task> stack{{0, 0, int(items.size()), -1, 0}};
    while (!stack.empty()) {
        Task t = stack.back();
        stack.pop_back();
        EdgeTreeNode n;
        n.bmin = n.nmin = Vec3(kInfinity);
        n.bmax = n.nmax = Vec3(-kInfinity);
        n.length = 0;
        n.flags = 0;
        Vec3 cmin(kInfinity), cmax(-kInfinity);
        for (int k = t.begin; k < t.end; ++k) {
            int i = items[k];
            Vec3 a = p0(i), b = p1(i);
            n.bmin = vmin(n.bmin, vmin(a, b));
            n.bmax = vmax(n.bmax, vmax(a, b));
            n.nmin = vmin(n.nmin, vmin(n0[i], n1[i]));
            n.nmax = vmax(n.nmax, vmax(n0[i], n1[i]));
            n.length += length(b - a);
            if (edges[i].f1 < 0) n.flags |= kEdgeBoundary;
            else if (!s.shapes[edges[i].shape].has_normals) n.flags |= kEdgeCrease;
            Vec3 c = (a + b) * Real(0.5);
            cmin = vmin(cmin, c);
            cmax = vmax(cmax, c);
        }
        {
            Vec3 c = (n.bmin + n.bmax) * Real(0.5);
            n.dlo = kInfinity;
            n.dhi = -kInfinity;
            for (int k = t.begin; k < t.end; ++k) {
                int i = items[k];
                Real a = dot(n0[i], p0(i) - c), b = dot(n1[i], p0(i) - c);
                n.dlo = min_r(n.dlo, min_r(a, b));
                n.dhi = max_r(n.dhi, max_r(a, b));
            }
        }
        n.left = n.right = -1;
        if (out->parent.size() <= size_t(t.node)) out->parent.resize(size_t(t.node) + 1, -1);
        out->parent[size_t(t.node)] = t.parent;
        n.first = t.begin;
        n.count = t.end - t.begin;
        if (n.count == 1) {
            (*nodes)[t.node] = n;
            out->node_of_leaf[size_t(t.begin)] = t.node;
            continue;
        }
        int mid = t.depth < kMaxLongSplitDepth ? split_long_edges(p0, p1, n.bmin, n.bmax, &items, t.begin, t.end) : -1;
        if (mid < 0) {
            Vec3 ext = cmax - cmin;
            int axis = ext.x > ext.y ? (ext.x > ext.z ? 0 : 2) : (ext.y > ext.z ? 1 : 2);
            mid = (t.begin + t.end) / 2;
            std::nth_element(items.begin() + t.begin, items.begin() + mid, items.begin() + t.end, [&](int a, int b) {
                Real ca = p0(a)[axis] + p1(a)[axis], cb = p0(b)[axis] + p1(b)[axis];
                return ca != cb ? ca < cb : a < b;
            });
        }
        n.left = int(nodes->size());
        n.right = n.left + 1;
        (*nodes)[t.node] = n;
        nodes->push_back({});
        nodes->push_back({});
        stack.push_back({n.left, t.begin, mid, t.node, t.depth + 1});
        stack.push_back({n.right, mid, t.end, t.node, t.depth + 1});
    }
    leaves->reserve(items.size());
    for (size_t k = 0; k < items.size(); ++k) out->leaf_of_edge[size_t(items[k])] = int(k);
    for (int i : items) {
        const Edge& e = edges[i];
        EdgeLeaf l;
        l.a = p0(i);
        l.b = p1(i);
        l.n0 = face_normal_unnormalised(s, e.f0);
        l.n1 = e.f1 >= 0 ? face_normal_unnormalised(s, e.f1) : l.n0;
        l.edge = i;
        l.flags = e.f1 < 0 ? kEdgeBoundary : (!s.shapes[e.shape].has_normals && faces_differ(s, e) ? kEdgeCrease : 0);
        leaves->push_back(l);
    }
}

// Whether manifold edge e (unit face normals m0, m1) can be a silhouette as seen from some point
// of some emitter. Seen from x, an edge is a silhouette when x lies in front of one face's plane
// and behind the other's; both planes contain the edge, so every point y beyond the edge on a ray
// from x through it (where the emission seen through the edge comes from) is on the opposite
// side of each plane from x, and the edge is a silhouette from y too. So when only emission
// arrives, an edge that is a silhouette from no emitter point never bounds a jump. Conservative:
// each emitter is bounded by its vertices' hull (few vertices) or its bounding ball.
bool may_be_emitter_silhouette(const SceneView& s, const Edge& e, Vec3 m0, Vec3 m1,
                               const std::vector<EmitterBall>& balls) {
    Vec3 p = Vec3::load(s.vertices + 3 * size_t(e.v0));
    for (int l = 0; l < s.num_lights; ++l) {
        const ShapeData& shape = s.shapes[s.lights[l].shape_id];
        if (shape.num_vertices <= 0) continue;
        // Ranges of the signed distances to the two planes over the emitter.
        Real lo0, hi0, lo1, hi1, tol;
        const EmitterBall& ball = balls[size_t(l)];
        if (shape.num_vertices <= 16) {
            lo0 = lo1 = kInfinity;
            hi0 = hi1 = -kInfinity;
            for (int v = shape.vertex_offset; v < shape.vertex_offset + shape.num_vertices; ++v) {
                Vec3 d = Vec3::load(s.vertices + 3 * size_t(v)) - p;
                Real a = dot(m0, d), b = dot(m1, d);
                lo0 = min_r(lo0, a);
                hi0 = max_r(hi0, a);
                lo1 = min_r(lo1, b);
                hi1 = max_r(hi1, b);
            }
        } else {
            Real a = dot(m0, ball.c - p), b = dot(m1, ball.c - p);
            lo0 = a - ball.r;
            hi0 = a + ball.r;
            lo1 = b - ball.r;
            hi1 = b + ball.r;
        }
        tol = Real(1e-4) * (length(ball.c - p) + ball.r);
        bool both_front = lo0 > tol && lo1 > tol, both_back = hi0 < -tol && hi1 < -tol;
        if (!both_front && !both_back) return true;
    }
    return false;
}

}  // namespace

void EdgeTree::build(const SceneView& s, const std::vector<Edge>& edges, const uint8_t* shape_filter, bool general) {
    // The area lights' bounding balls, for pruning edges that cannot shadow them.
    emitters_ = emitter_balls(s);
    // Edges between coplanar faces never bound a discontinuity.
    std::vector<int> items, emission_items;
    std::vector<Vec3> n0(edges.size()), n1(edges.size());
    for (size_t i = 0; i < edges.size(); ++i) {
        const Edge& e = edges[i];
        if (shape_filter && !shape_filter[e.shape]) continue;
        n0[i] = normalize(face_normal_unnormalised(s, e.f0));
        n1[i] = e.f1 >= 0 ? normalize(face_normal_unnormalised(s, e.f1)) : n0[i];
        if (e.f1 >= 0 && dot(n0[i], n1[i]) >= 1 - Real(1e-6)) continue;
        items.push_back(int(i));
        bool degenerate = !(dot(n0[i], n0[i]) > 0) || !(dot(n1[i], n1[i]) > 0);
        if (e.f1 < 0 || degenerate || may_be_emitter_silhouette(s, e, n0[i], n1[i], emitters_)) {
            emission_items.push_back(int(i));
        }
    }
    if (general) build_edge_nodes(s, edges.data(), int(edges.size()), n0, n1, std::move(items), &all_);
    build_edge_nodes(s, edges.data(), int(edges.size()), n0, n1, std::move(emission_items), &emission_);
}

}  // namespace rt

namespace rt {

std::vector<EmitterBall> emitter_balls(const SceneView& s) {
    std::vector<EmitterBall> balls;
    for (int l = 0; l < s.num_lights; ++l) {
        const ShapeData& shape = s.shapes[s.lights[l].shape_id];
        Vec3 lo(kInfinity), hi(-kInfinity);
        for (int v = shape.vertex_offset; v < shape.vertex_offset + shape.num_vertices; ++v) {
            Vec3 p = Vec3::load(s.vertices + 3 * size_t(v));
            lo = vmin(lo, p);
            hi = vmax(hi, p);
        }
        // One ball per light, in light order (callers index them by light); a shape without
        // vertices emits nothing, and a point ball at the origin only adds candidates.
        balls.push_back(shape.num_vertices > 0 ? EmitterBall{(lo + hi) * Real(0.5), Real(0.5) * length(hi - lo)}
                                               : EmitterBall{Vec3(0), Real(0)});
    }
    return balls;
}

bool smooth_edge_may_jump(const SceneView& s, const Edge& e, bool indirect, const std::vector<EmitterBall>& balls) {
    if (!faces_differ(s, e)) return false;  // boundaries are sampled anyway; coplanar faces agree
    if (indirect || s.has_envmap) return true;
    Vec3 a = Vec3::load(s.vertices + 3 * size_t(e.v0)), b = Vec3::load(s.vertices + 3 * size_t(e.v1));
    Vec3 c = (a + b) * Real(0.5);
    Real r = Real(0.5) * length(b - a);
    for (int f : {e.f0, e.f1}) {
        Vec3 n = face_normal_unnormalised(s, f);
        if (!(length(n) > 0)) return true;
        n = normalize(n);
        // The band's half-width: the largest angle between the face normal and its vertex normals.
        Real cos_band = 1;
        for (int k = 0; k < 3; ++k) {
            Vec3 vn = Vec3::load(s.normals + 3 * size_t(s.indices[3 * size_t(f) + k]));
            Real l = length(vn);
            // A vertex normal on the far side of the face (or none) allows any band.
            cos_band = min_r(cos_band, l > 0 ? max_r(dot(vn, n) / l, Real(0)) : Real(0));
        }
        Real band = std::acos(min_r(Real(1), cos_band));
        for (const EmitterBall& ball : balls) {
            Vec3 d = ball.c - c;
            Real D = length(d), R = ball.r + r;
            if (D <= R) return true;
            Real alpha = std::asin(R / D);
            Real elevation = std::asin(max_r(Real(-1), min_r(Real(1), dot(n, d) / D)));
            if (std::fabs(elevation) <= alpha + band + Real(1e-3)) return true;
        }
    }
    return false;
}

int check_edge_tree(const SceneView& s, const std::vector<Edge>& edges, uint64_t seed, int queries, Real shrink,
                    int64_t* pairs) {
    *pairs = 0;
    if (s.num_triangles == 0) return 0;
    EdgeTree tree;
    tree.build(s, edges);
    int violations = 0;
    for (int which = 0; which < 2; ++which) {
        EdgeTreeView view = which == 0 ? tree.view() : tree.emission_view();
        std::vector<EdgeTreeNode> nodes(view.nodes, view.nodes + view.num_nodes);
        for (EdgeTreeNode& n : nodes) {
            Real cut = Real(0.5) * shrink * (n.dhi - n.dlo);
            n.dlo += cut;
            n.dhi -= cut;
        }
        view.nodes = nodes.data();
        int num_leaves = (view.num_nodes + 1) / 2;
        for (int i = 0; i < queries; ++i) {
            Sampler rng(seed, uint32_t(which), 0, uint64_t(i));
            uint32_t dim = 0;
            auto uniform = [&]() { return rng.get(dim++); };
            int tri = std::min(s.num_triangles - 1, int(uniform() * Real(s.num_triangles)));
            const int* idx = s.indices + 3 * size_t(tri);
            Real a = uniform(), b = uniform();
            if (a + b > 1) {
                a = 1 - a;
                b = 1 - b;
            }
            Vec3 v0 = Vec3::load(s.vertices + 3 * size_t(idx[0]));
            Vec3 v1 = Vec3::load(s.vertices + 3 * size_t(idx[1]));
            Vec3 v2 = Vec3::load(s.vertices + 3 * size_t(idx[2]));
            Vec3 n = face_normal_unnormalised(s, tri);
            if (!(length(n) > 0)) continue;
            n = normalize(n) * (uniform() < Real(0.5) ? Real(1) : Real(-1));
            Vec3 x = v0 + (v1 - v0) * a + (v2 - v0) * b;
            EdgeQuery q = make_edge_query(x, n, which == 0 && uniform() < Real(0.5),
                                          which == 1 ? view.emitters : nullptr, view.num_emitters);
            EdgeCandidates candidates;
            bool gathered = gather_edges(view, q, 1 << 30, &candidates);
            for (int l = 0; l < num_leaves; ++l) {
                const EdgeLeaf& leaf = view.leaves[l];
                if (!(edge_importance(leaf, q) > 0)) continue;
                ++*pairs;
                bool ok = edge_tree_pmf(view, q, leaf.edge) > 0;
                if (gathered) {
                    bool found = false;
                    for (int c = 0; c < candidates.count; ++c) found = found || candidates.edge[c] == leaf.edge;
                    ok = ok && found;
                }
                if (!ok) ++violations;
            }
        }
    }
    return violations;
}

}  // namespace rt
