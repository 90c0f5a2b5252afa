// bvh.cpp: binned SAH build, node layout and refit of the BVH (see bvh.h).
//
// Build: the triangles' boxes and centroids go into an array of references; the top of the
// tree is split on the calling thread (binning on all threads), down to subtrees small
// enough to be tasks; the tasks are built in parallel, each into its own node list; a final
// depth-first pass lays all nodes out in one array. Every step is deterministic: the same
// mesh gives the same array whatever the number of threads.
#include "bvh.h"

#include <algorithm>
#include <cstring>

#include "parallel.h"

namespace rt {
namespace {

constexpr int kNumBins = 32;
constexpr int kMaxLeafSize = 8;
constexpr Real kTraversalCost = Real(1.0);   // SAH cost of visiting an interior node
constexpr Real kTriangleCost = Real(1.0);    // SAH cost of one ray-triangle test
constexpr int kSahMaxDepth = 32;             // deeper nodes split at the median (bounds depth)
constexpr int kParallelBinSize = 1 << 15;    // larger ranges are binned on all threads
constexpr int kMinParallelBuild = 1 << 12;   // smaller meshes build on one thread
constexpr Real kHuge = Real(3.0e38);

static_assert(kSahMaxDepth + 28 <= kBVHMaxDepth, "median splits below kSahMaxDepth must fit");

RT_INLINE Real rmin(Real a, Real b) { return a < b ? a : b; }
RT_INLINE Real rmax(Real a, Real b) { return a > b ? a : b; }

// An axis-aligned box; empty when lo > hi.
struct Box {
    Real lo[3] = {kHuge, kHuge, kHuge};
    Real hi[3] = {-kHuge, -kHuge, -kHuge};
    void grow(const Real* l, const Real* h) {
        for (int k = 0; k < 3; ++k) { lo[k] = rmin(lo[k], l[k]); hi[k] = rmax(hi[k], h[k]); }
    }
    void grow(const Box& b) { grow(b.lo, b.hi); }
    Real half_area() const {
        if (lo[0] > hi[0]) return 0;
        Real dx = hi[0] - lo[0], dy = hi[1] - lo[1], dz = hi[2] - lo[2];
        return dx * dy + dy * dz + dz * dx;
    }
};

// One triangle during the build: its box; the centroid is (lo + hi) / 2.
struct PrimRef {
    Real lo[3];
    int id;
    Real hi[3];
    int pad;
};

// ---------------------------------------------------------------------------------------
// Triangle copies: a zero-area triangle is stored as the point v0, v0, v0, for which the
// watertight test's determinant is exactly zero, so it is never hit.

bool is_degenerate(const Real* p0, const Real* p1, const Real* p2) {
    double e1[3], e2[3];
    for (int k = 0; k < 3; ++k) { e1[k] = double(p1[k]) - p0[k]; e2[k] = double(p2[k]) - p0[k]; }
    return e1[1] * e2[2] - e1[2] * e2[1] == 0 && e1[2] * e2[0] - e1[0] * e2[2] == 0 &&
           e1[0] * e2[1] - e1[1] * e2[0] == 0;
}

void copy_triangle(const Real* vertices, const int* tri, Real* out) {
    const Real* p[3] = {vertices + 3 * size_t(tri[0]), vertices + 3 * size_t(tri[1]),
                        vertices + 3 * size_t(tri[2])};
    if (is_degenerate(p[0], p[1], p[2])) p[1] = p[2] = p[0];
    for (int j = 0; j < 3; ++j)
        for (int k = 0; k < 3; ++k) out[3 * j + k] = p[j][k];
}

void triangle_box(const Real* v, Real* lo, Real* hi) {
    for (int k = 0; k < 3; ++k) {
        lo[k] = rmin(v[k], rmin(v[3 + k], v[6 + k]));
        hi[k] = rmax(v[k], rmax(v[3 + k], v[6 + k]));
    }
}

// ---------------------------------------------------------------------------------------
// Binning: centroids are mapped to kNumBins bins per axis over the centroid bounds.

struct BinMap {
    Real base[3], scale[3];  // bin = (lo + hi - base) * scale, in doubled centroid units
    bool valid[3];           // axis with a nonzero centroid extent
    explicit BinMap(const Box& cbox) {
        for (int k = 0; k < 3; ++k) {
            Real extent = cbox.hi[k] - cbox.lo[k];
            valid[k] = extent > 0;
            base[k] = 2 * cbox.lo[k];
            scale[k] = valid[k] ? Real(kNumBins) * Real(0.99999) / (2 * extent) : 0;
        }
    }
    int bin(const PrimRef& r, int k) const {
        int b = int((r.lo[k] + r.hi[k] - base[k]) * scale[k]);
        return b < 0 ? 0 : (b >= kNumBins ? kNumBins - 1 : b);
    }
};

struct Bins {
    Box box[3][kNumBins];
    int count[3][kNumBins] = {};
    void add(const PrimRef* refs, int begin, int end, const BinMap& map) {
        for (int i = begin; i < end; ++i) {
            const PrimRef& r = refs[i];
            for (int k = 0; k < 3; ++k) {
                int b = map.bin(r, k);
                box[k][b].grow(r.lo, r.hi);
                ++count[k][b];
            }
        }
    }
    void merge(const Bins& o) {
        for (int k = 0; k < 3; ++k)
            for (int b = 0; b < kNumBins; ++b) { box[k][b].grow(o.box[k][b]); count[k][b] += o.count[k][b]; }
    }
};

// Bins refs[begin, end), on all threads for a large range (fixed chunks, merged in order).
void bin_range(const PrimRef* refs, int begin, int end, const BinMap& map, int num_threads,
               Bins* out) {
    int n = end - begin;
    if (num_threads <= 1 || n < kParallelBinSize) { out->add(refs, begin, end, map); return; }
    int chunks = num_threads * 4;
    std::vector<Bins> partial(chunks);
    parallel_for([&](int c) {
        int b = begin + int(int64_t(n) * c / chunks), e = begin + int(int64_t(n) * (c + 1) / chunks);
        partial[c].add(refs, b, e, map);
    }, chunks, num_threads, 1);
    for (int c = 0; c < chunks; ++c) out->merge(partial[c]);
}

// Bounds of the boxes and of the centroids of refs[begin, end).
void range_bounds(const PrimRef* refs, int begin, int end, Box* box, Box* cbox) {
    for (int i = begin; i < end; ++i) {
        const PrimRef& r = refs[i];
        box->grow(r.lo, r.hi);
        Real c[3] = {(r.lo[0] + r.hi[0]) * Real(0.5), (r.lo[1] + r.hi[1]) * Real(0.5),
                     (r.lo[2] + r.hi[2]) * Real(0.5)};
        cbox->grow(c, c);
    }
}

// ---------------------------------------------------------------------------------------
// Splitting one node: the SAH over binned planes, or the median when the SAH cannot help.

struct Range {
    int begin, end, depth;
    Box box, cbox;
};

// Returns false when r should be a leaf; else partitions refs and fills the two children.
bool split_range(PrimRef* refs, const Range& r, int num_threads, Range* left, Range* right) {
    const int n = r.end - r.begin;
    if (n <= 1) return false;
    const BinMap map(r.cbox);
    const bool any_axis = map.valid[0] || map.valid[1] || map.valid[2];
    int mid = -1;
    if (!any_axis || r.depth >= kSahMaxDepth) {
        // Median split: all centroids coincide, or the tree is getting deep.
        if (n <= kMaxLeafSize) return false;
        mid = r.begin + n / 2;
        if (any_axis) {
            int axis = 0;
            for (int k = 1; k < 3; ++k)
                if (r.cbox.hi[k] - r.cbox.lo[k] > r.cbox.hi[axis] - r.cbox.lo[axis]) axis = k;
            std::nth_element(refs + r.begin, refs + mid, refs + r.end,
                             [axis](const PrimRef& a, const PrimRef& b) {
                                 Real ca = a.lo[axis] + a.hi[axis], cb = b.lo[axis] + b.hi[axis];
                                 return ca < cb || (ca == cb && a.id < b.id);
                             });
        }
    } else {
        // Binned SAH: sweep each axis right to left, then left to right.
        Bins bins;
        bin_range(refs, r.begin, r.end, map, num_threads, &bins);
        Real best_cost = kHuge;
        int best_axis = -1, best_split = 0;
        for (int k = 0; k < 3; ++k) {
            if (!map.valid[k]) continue;
            Real right_area[kNumBins];
            int right_count[kNumBins];
            Box acc;
            int cnt = 0;
            for (int b = kNumBins - 1; b > 0; --b) {
                acc.grow(bins.box[k][b]);
                cnt += bins.count[k][b];
                right_area[b] = acc.half_area();
                right_count[b] = cnt;
            }
            acc = Box();
            cnt = 0;
            for (int b = 1; b < kNumBins; ++b) {
                acc.grow(bins.box[k][b - 1]);
                cnt += bins.count[k][b - 1];
                if (cnt == 0 || right_count[b] == 0) continue;
                Real cost = acc.half_area() * Real(cnt) + right_area[b] * Real(right_count[b]);
                if (cost < best_cost) { best_cost = cost; best_axis = k; best_split = b; }
            }
        }
        // Leaf if that is no more expensive than the best split.
        Real area = r.box.half_area();
        Real split_cost = kTraversalCost + kTriangleCost * (area > 0 ? best_cost / area : Real(n));
        if (n <= kMaxLeafSize && Real(n) * kTriangleCost <= split_cost) return false;
        PrimRef* m = std::partition(refs + r.begin, refs + r.end, [&](const PrimRef& p) {
            return map.bin(p, best_axis) < best_split;
        });
        mid = int(m - refs);
    }
    // Children's bounds.
    *left = Range{r.begin, mid, r.depth + 1, Box(), Box()};
    *right = Range{mid, r.end, r.depth + 1, Box(), Box()};
    range_bounds(refs, left->begin, left->end, &left->box, &left->cbox);
    range_bounds(refs, right->begin, right->end, &right->box, &right->cbox);
    return true;
}

BVHNode make_node(const Box& box, int left_or_first, int count) {
    BVHNode node;
    for (int k = 0; k < 3; ++k) { node.bmin[k] = box.lo[k]; node.bmax[k] = box.hi[k]; }
    node.left_or_first = left_or_first;
    node.count = count;
    return node;
}

// Builds the subtree of r into nodes (its root at nodes[root]), one thread.
void build_subtree(PrimRef* refs, const Range& r, int root, std::vector<BVHNode>* nodes) {
    Range left, right;
    if (!split_range(refs, r, 1, &left, &right)) {
        (*nodes)[root] = make_node(r.box, r.begin, r.end - r.begin);
        return;
    }
    int pair = int(nodes->size());
    nodes->resize(nodes->size() + 2);
    (*nodes)[root] = make_node(r.box, pair, 0);
    build_subtree(refs, left, pair, nodes);
    build_subtree(refs, right, pair + 1, nodes);
}

// The top of the tree: split until ranges are task-sized. A task's node gets count =
// -1 - task index; its subtree is built later.
struct TopBuilder {
    PrimRef* refs;
    int num_threads, task_size;
    std::vector<BVHNode> nodes;
    std::vector<Range> tasks;
    void build(const Range& r, int root) {
        Range left, right;
        if (r.end - r.begin <= task_size || !split_range(refs, r, num_threads, &left, &right)) {
            nodes[root] = make_node(r.box, 0, -1 - int(tasks.size()));
            tasks.push_back(r);
            return;
        }
        int pair = int(nodes.size());
        nodes.resize(nodes.size() + 2);
        nodes[root] = make_node(r.box, pair, 0);
        build(left, pair);
        build(right, pair + 1);
    }
};

// Lays the built nodes out depth-first: each node's children get the next free pair, then
// the left subtree, then the right one. `out` is the view's array (index 0: the root).
struct Layout {
    const std::vector<BVHNode>* top;
    const std::vector<std::vector<BVHNode>>* task_nodes;
    BVHNode* out;
    int size;
    std::vector<int> top_nodes;  // output indices of the nodes above the tasks
    std::vector<int> task_roots;              // per task: output index of its root
    std::vector<std::pair<int, int>> blocks;  // per task: its descendants [begin, end)

    void emit(const std::vector<BVHNode>& src, int i, int dst) {
        const BVHNode& node = src[i];
        out[dst] = node;
        if (node.count != 0) return;
        int pair = size;
        size += 2;
        out[dst].left_or_first = pair;
        emit(src, node.left_or_first, pair);
        emit(src, node.left_or_first + 1, pair + 1);
    }
    void emit_top(int i, int dst) {
        const BVHNode& node = (*top)[i];
        if (node.count < 0) {
            int task = -1 - node.count, begin = size;
            emit((*task_nodes)[task], 0, dst);
            task_roots[task] = dst;
            blocks[task] = {begin, size};
            return;
        }
        top_nodes.push_back(dst);
        out[dst] = node;
        int pair = size;
        size += 2;
        out[dst].left_or_first = pair;
        emit_top(node.left_or_first, pair);
        emit_top(node.left_or_first + 1, pair + 1);
    }
};

// Recomputes the box of node i from its triangles or its children.
void refit_node(BVHNode* nodes, const Real* tri_verts, int i) {
    BVHNode& node = nodes[i];
    Box box;
    if (node.count > 0) {
        for (int j = node.left_or_first; j < node.left_or_first + node.count; ++j) {
            Real lo[3], hi[3];
            triangle_box(tri_verts + 9 * size_t(j), lo, hi);
            box.grow(lo, hi);
        }
    } else {
        const BVHNode& a = nodes[node.left_or_first];
        const BVHNode& b = nodes[node.left_or_first + 1];
        box.grow(a.bmin, a.bmax);
        box.grow(b.bmin, b.bmax);
    }
    for (int k = 0; k < 3; ++k) { node.bmin[k] = box.lo[k]; node.bmax[k] = box.hi[k]; }
}

}  // namespace

// -------------------------------------------------------------------------------------------

void BVH::build(const Real* vertices, int num_vertices, const int* indices, int num_triangles,
                int num_threads) {
    num_threads = resolve_num_threads(num_threads);
    if (num_triangles < kMinParallelBuild) num_threads = 1;
    const int n = num_triangles;
    num_vertices_ = num_vertices;
    indices_.assign(indices, indices + 3 * size_t(n));
    nodes_.clear();
    prim_index_.clear();
    tri_verts_.clear();
    blocks_.clear();
    if (n == 0) return;

    // References: each triangle's box (a degenerate one is the point v0).
    std::vector<PrimRef> refs(n);
    parallel_for([&](int i) {
        Real v[9];
        copy_triangle(vertices, indices + 3 * size_t(i), v);
        PrimRef& r = refs[i];
        triangle_box(v, r.lo, r.hi);
        r.id = i;
        r.pad = 0;
    }, n, num_threads);

    // Root bounds, reduced over fixed chunks.
    Range root{0, n, 0, Box(), Box()};
    {
        int chunks = std::min(n, num_threads * 4);
        std::vector<Box> box(chunks), cbox(chunks);
        parallel_for([&](int c) {
            range_bounds(refs.data(), int(int64_t(n) * c / chunks), int(int64_t(n) * (c + 1) / chunks),
                         &box[c], &cbox[c]);
        }, chunks, num_threads, 1);
        for (int c = 0; c < chunks; ++c) { root.box.grow(box[c]); root.cbox.grow(cbox[c]); }
    }

    // Top of the tree, then the task subtrees in parallel (largest first).
    TopBuilder top{refs.data(), num_threads, num_threads == 1 ? n : std::max(n / (num_threads * 8), 1024),
                   std::vector<BVHNode>(1), {}};
    top.build(root, 0);
    const int num_tasks = int(top.tasks.size());
    std::vector<int> order(num_tasks);
    for (int t = 0; t < num_tasks; ++t) order[t] = t;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
        return top.tasks[a].end - top.tasks[a].begin > top.tasks[b].end - top.tasks[b].begin;
    });
    std::vector<std::vector<BVHNode>> task_nodes(num_tasks);
    parallel_for([&](int j) {
        int t = order[j];
        task_nodes[t].reserve(size_t(2) * (top.tasks[t].end - top.tasks[t].begin) / 3 + 2);
        task_nodes[t].resize(1);
        build_subtree(refs.data(), top.tasks[t], 0, &task_nodes[t]);
    }, num_tasks, num_threads, 1);

    // One array, depth first; nodes_[0] is padding so that pairs share cache lines.
    size_t total = top.nodes.size();
    for (const auto& t : task_nodes) total += t.size() - 1;
    nodes_.resize(total + 1);
    Layout layout{&top.nodes, &task_nodes, nodes_.data() + 1, 1, {}, std::vector<int>(num_tasks),
                  std::vector<std::pair<int, int>>(num_tasks)};
    layout.emit_top(0, 0);
    std::memset(&nodes_[0], 0, sizeof(BVHNode));
    top_nodes_ = std::move(layout.top_nodes);
    blocks_.resize(num_tasks);
    for (int t = 0; t < num_tasks; ++t) blocks_[t] = Block{layout.task_roots[t], layout.blocks[t].first, layout.blocks[t].second};

    // Leaf slots: triangle indices and vertex copies, in leaf order.
    prim_index_.resize(n);
    tri_verts_.resize(9 * size_t(n));
    parallel_for([&](int i) {
        int id = refs[i].id;
        prim_index_[i] = id;
        copy_triangle(vertices, indices + 3 * size_t(id), tri_verts_.data() + 9 * size_t(i));
    }, n, num_threads);
}

void BVH::refit(const Real* vertices, int num_threads) {
    const int n = int(prim_index_.size());
    if (n == 0) return;
    num_threads = resolve_num_threads(num_threads);
    if (n < kMinParallelBuild) num_threads = 1;
    // Triangle copies.
    parallel_for([&](int i) {
        copy_triangle(vertices, indices_.data() + 3 * size_t(prim_index_[i]), tri_verts_.data() + 9 * size_t(i));
    }, n, num_threads);
    // Boxes bottom-up: each task's block in reverse (children after parents), in parallel;
    // then the task roots and the nodes above them, also in reverse index order.
    BVHNode* nodes = nodes_.data() + 1;
    parallel_for([&](int t) {
        for (int i = blocks_[t].end - 1; i >= blocks_[t].begin; --i) refit_node(nodes, tri_verts_.data(), i);
        refit_node(nodes, tri_verts_.data(), blocks_[t].root);
    }, int(blocks_.size()), num_threads, 1);
    for (int j = int(top_nodes_.size()) - 1; j >= 0; --j) refit_node(nodes, tri_verts_.data(), top_nodes_[j]);
}

BVHView BVH::view() const {
    BVHView v;
    if (nodes_.empty()) return v;
    v.nodes = nodes_.data() + 1;
    v.prim_index = prim_index_.data();
    v.tri_verts = tri_verts_.data();
    v.num_nodes = int(nodes_.size()) - 1;
    return v;
}

}  // namespace rt
