// bvh.h: a bounding volume hierarchy over the triangles of a scene.
//
// Built with a binned surface-area heuristic into a flat node array, traversed with a stack,
// intersected with the watertight ray-triangle test of Woop, Benthin and Wald (2013), and
// refit in place when vertices move but connectivity does not.
//
// Triangles are numbered globally (all shapes of a scene concatenated); a hit reports that
// global index and the barycentrics (u, v) of the point p = (1 - u - v) v0 + u v1 + v v2.
// Degenerate (zero-area) triangles are never hit.
//
// Layout: node 0 is the root; an interior node's children are adjacent (left, left + 1) and
// always have higher indices than their parent, so a reverse loop over the array visits
// children before parents. Sibling pairs start at odd indices and the array is placed so
// that each pair shares one 64-byte cache line. Tree depth is at most kBVHMaxDepth, so the
// fixed traversal stack cannot overflow.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

#include "vector.h"

namespace rt {

struct BVHNode {
    Real bmin[3];
    int left_or_first;  // interior: index of the left child (right = left + 1); leaf: first primitive
    Real bmax[3];
    int count;          // 0 for an interior node, else the number of triangles in the leaf
};

static_assert(sizeof(BVHNode) == 32 && offsetof(BVHNode, bmax) == 16, "the slab test reads planes by offset");

struct Hit {
    Real t;    // ray parameter of the hit; kInfinity on a miss
    int tri;   // global triangle index; -1 on a miss
    Real u, v; // barycentrics of v1 and v2
};

// What traversal reads. Plain pointers, so a kernel (CPU or, later, GPU) can take it by value.
struct BVHView {
    const BVHNode* nodes = nullptr;
    const int* prim_index = nullptr;   // leaf slot -> global triangle index
    const Real* tri_verts = nullptr;   // leaf slot -> 9 floats: v0, v1, v2 (copied for locality;
                                       // a degenerate triangle is stored as v0, v0, v0)
    int num_nodes = 0;
};

// The deepest leaf is at this depth (root: 0); the build guarantees it.
constexpr int kBVHMaxDepth = 60;
constexpr int kBVHStackSize = 64;

// Closest hit along ray in (ray.tmin, ray.tmax). Returns true on a hit and fills *hit
// (on a miss: t = kInfinity, tri = -1, u = v = 0).
RT_HOST_DEVICE inline bool intersect(const BVHView& bvh, const Ray& ray, Hit* hit);
// Whether anything is hit in (ray.tmin, ray.tmax): the shadow-ray query.
RT_HOST_DEVICE inline bool occluded(const BVHView& bvh, const Ray& ray);

namespace detail {

// Allocator for the node array, so that sibling pairs can be placed on cache lines.
template <typename T, size_t Align>
struct AlignedAllocator {
    using value_type = T;
    template <typename U> struct rebind { using other = AlignedAllocator<U, Align>; };
    AlignedAllocator() = default;
    template <typename U> AlignedAllocator(const AlignedAllocator<U, Align>&) {}
    T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(Align))); }
    void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(Align)); }
    bool operator==(const AlignedAllocator&) const { return true; }
    bool operator!=(const AlignedAllocator&) const { return false; }
};

}  // namespace detail

class BVH {
public:
    // vertices: [num_vertices, 3]; indices: [num_triangles, 3], each in [0, num_vertices)
    // (validated by the caller). The arrays are read during the call only.
    void build(const Real* vertices, int num_vertices, const int* indices, int num_triangles,
               int num_threads = 0);
    // Updates the boxes (and triangle copies) for new vertex positions of the same mesh.
    void refit(const Real* vertices, int num_threads = 0);
    BVHView view() const;
    int num_nodes() const { return nodes_.empty() ? 0 : int(nodes_.size()) - 1; }
    size_t num_prims() const { return prim_index_.size(); }  // leaf slots (view().prim_index)

private:
    // A subtree built by one task: its root and the contiguous block of its descendants
    // [begin, end), which refit processes in parallel.
    struct Block { int root, begin, end; };

    // nodes_[0] is unused padding, so that nodes_[1 + 2k] (the view's pair starts) lie on
    // 64-byte boundaries; the view's node i is nodes_[i + 1].
    std::vector<BVHNode, detail::AlignedAllocator<BVHNode, 64>> nodes_;
    std::vector<int> prim_index_;
    std::vector<Real> tri_verts_;
    std::vector<int> indices_;  // a copy of the connectivity, for refit
    std::vector<Block> blocks_;  // subtrees refit in parallel; the nodes above them come after
    std::vector<int> top_nodes_;  // the nodes above the blocks, parents first
    int num_vertices_ = 0;
};

// ---------------------------------------------------------------------------------------
// Traversal. Everything below runs inside kernels: plain structs, no STL, no exceptions.

namespace detail {

// min and max that return b when a is NaN: the slab test puts the values that can be NaN
// first. (Requires IEEE semantics: do not compile with -ffast-math.)
RT_HOST_DEVICE RT_INLINE Real min_r(Real a, Real b) { return a < b ? a : b; }
RT_HOST_DEVICE RT_INLINE Real max_r(Real a, Real b) { return a > b ? a : b; }
RT_HOST_DEVICE RT_INLINE Real abs_r(Real a) { return a < 0 ? -a : a; }

// Per-ray constants, computed once per query.
struct RayPrep {
    // Slab test: origin, inverse direction (+-inf for a zero component) and the byte offsets
    // of the near and far planes of each axis inside a BVHNode.
    Real org[3], inv_dir[3];
    int near_off[3], far_off[3];
    // Watertight test: the axis along which the direction is largest (kz), the two others
    // (kx, ky, swapped to keep the winding when dir[kz] < 0), the shear constants and the
    // origin in that permuted order.
    int kx, ky, kz;
    Real sx, sy, sz;
    Real ox, oy, oz;
    Real tmin;
    // Bound on the rounding error of the distances the triangle test computes in this scene
    // (see slack()); boxes are culled against tmax + t_slack.
    Real t_slack;
};

// Returns false for a zero direction, which can hit nothing.
RT_HOST_DEVICE RT_INLINE bool prepare_ray(const Ray& ray, RayPrep* r) {
    const Real d[3] = {ray.dir.x, ray.dir.y, ray.dir.z};
    const Real o[3] = {ray.org.x, ray.org.y, ray.org.z};
    for (int i = 0; i < 3; ++i) {
        r->org[i] = o[i];
        r->inv_dir[i] = Real(1) / d[i];  // +-inf for +-0: see hit_box for the NaN it can make
        bool neg = r->inv_dir[i] < 0;
        // bmin[i] is at byte 4 i, bmax[i] at byte 16 + 4 i.
        r->near_off[i] = int(sizeof(Real)) * i + (neg ? 16 : 0);
        r->far_off[i] = int(sizeof(Real)) * i + (neg ? 0 : 16);
    }
    // Watertight test setup: permute so that z is the dominant axis, then shear.
    const Real ax = abs_r(d[0]), ay = abs_r(d[1]), az = abs_r(d[2]);
    const int kz = ax > ay ? (ax > az ? 0 : 2) : (ay > az ? 1 : 2);
    if (!(abs_r(d[kz]) > 0)) return false;
    int kx = kz == 2 ? 0 : kz + 1;
    int ky = kx == 2 ? 0 : kx + 1;
    if (d[kz] < 0) { int tmp = kx; kx = ky; ky = tmp; }
    r->kx = kx; r->ky = ky; r->kz = kz;
    r->sz = Real(1) / d[kz];
    r->sx = d[kx] * r->sz;
    r->sy = d[ky] * r->sz;
    r->ox = o[kx]; r->oy = o[ky]; r->oz = o[kz];
    r->tmin = ray.tmin;
    r->t_slack = 0;
    return true;
}

// The triangle test computes t from the vertices' offsets along kz, (v[kz] - o[kz]) / d[kz],
// each within 3 ulps, so a computed t can fall short of the true one by ~3 eps times the
// largest such offset: a box may be entered (in exact terms) later than a triangle inside
// it reports a hit. Culling against tmax + this slack keeps the BVH's answer identical to
// a brute-force loop over the triangles. `root` bounds all vertices.
RT_HOST_DEVICE RT_INLINE void set_slack(const BVHNode& root, RayPrep* r) {
    const Real lo = abs_r(root.bmin[r->kz] - r->oz), hi = abs_r(root.bmax[r->kz] - r->oz);
    r->t_slack = Real(1e-6) * max_r(lo, hi) * abs_r(r->sz);
}

// 1 + 2 gamma(3) (pbrt's bound): widens the far distance of the slab test so that rounding
// never culls a box that the ray grazes (Ize 2013, "Robust BVH Ray Traversal").
constexpr Real kSlabRobust = Real(1.0000004);
constexpr Real kNoLimit = Real(1e38);  // a finite last operand for the min_r chain

// Slab test of one node against (tmin, tlimit); on a hit, *tnear is the entry distance.
// A zero direction component with the origin exactly on a plane gives 0 * inf = NaN; the
// NaN goes first into max_r/min_r, which then ignore it: the ray lies in that plane and
// counts as inside the slab.
RT_HOST_DEVICE RT_INLINE bool hit_box(const BVHNode& node, const RayPrep& r, Real tlimit,
                                      Real* tnear) {
    const char* b = reinterpret_cast<const char*>(&node);
    const Real tx0 = (*reinterpret_cast<const Real*>(b + r.near_off[0]) - r.org[0]) * r.inv_dir[0];
    const Real ty0 = (*reinterpret_cast<const Real*>(b + r.near_off[1]) - r.org[1]) * r.inv_dir[1];
    const Real tz0 = (*reinterpret_cast<const Real*>(b + r.near_off[2]) - r.org[2]) * r.inv_dir[2];
    const Real tx1 = (*reinterpret_cast<const Real*>(b + r.far_off[0]) - r.org[0]) * r.inv_dir[0];
    const Real ty1 = (*reinterpret_cast<const Real*>(b + r.far_off[1]) - r.org[1]) * r.inv_dir[1];
    const Real tz1 = (*reinterpret_cast<const Real*>(b + r.far_off[2]) - r.org[2]) * r.inv_dir[2];
    const Real t0 = max_r(tx0, max_r(ty0, max_r(tz0, r.tmin)));
    const Real t1 = min_r(tx1, min_r(ty1, min_r(tz1, kNoLimit))) * kSlabRobust;
    *tnear = t0;
    return t0 <= t1 && t0 <= tlimit;
}

// The watertight ray-triangle test. tri: 9 floats v0, v1, v2. On a hit in (tmin, tmax),
// writes t and the barycentrics of v1 (u) and v2 (v).
RT_HOST_DEVICE RT_INLINE bool hit_triangle(const Real* tri, const RayPrep& r, Real tmax,
                                           Real* t, Real* u, Real* v) {
    // Vertices relative to the ray origin, permuted (kx, ky, kz).
    const Real az = tri[r.kz] - r.oz, bz = tri[3 + r.kz] - r.oz, cz = tri[6 + r.kz] - r.oz;
    // Shear so that the ray becomes the +z axis; x, y are the projection onto its plane.
    const Real ax = (tri[r.kx] - r.ox) - r.sx * az, ay = (tri[r.ky] - r.oy) - r.sy * az;
    const Real bx = (tri[3 + r.kx] - r.ox) - r.sx * bz, by = (tri[3 + r.ky] - r.oy) - r.sy * bz;
    const Real cx = (tri[6 + r.kx] - r.ox) - r.sx * cz, cy = (tri[6 + r.ky] - r.oy) - r.sy * cz;
    // Scaled barycentrics: 2D edge functions of the projected edges. Products of floats are
    // exact in double, so the signs are exact, and an edge shared by two triangles gives
    // exactly opposite values in both (also under FMA contraction): no ray slips through.
    const double U = double(cx) * double(by) - double(cy) * double(bx);
    const double V = double(ax) * double(cy) - double(ay) * double(cx);
    const double W = double(bx) * double(ay) - double(by) * double(ax);
    // Inside only if all three have one sign (zeros allowed: edges and vertices count).
    if ((U < 0 || V < 0 || W < 0) && (U > 0 || V > 0 || W > 0)) return false;
    const double det = U + V + W;
    if (det == 0) return false;  // degenerate projection (or triangle): never a hit
    // Scaled distance, then the distance itself.
    const double T = U * double(r.sz * az) + V * double(r.sz * bz) + W * double(r.sz * cz);
    const double inv_det = 1.0 / det;
    const Real tt = Real(T * inv_det);
    if (!(tt > r.tmin && tt < tmax)) return false;
    *t = tt;
    *u = Real(V * inv_det);
    *v = Real(W * inv_det);
    return true;
}

// Stack traversal shared by intersect (closest hit) and occluded (any hit).
template <bool AnyHit>
RT_HOST_DEVICE RT_INLINE bool traverse(const BVHView& bvh, const Ray& ray, Hit* hit) {
    if (bvh.num_nodes == 0) return false;
    RayPrep r;
    if (!prepare_ray(ray, &r)) return false;
    const BVHNode* nodes = bvh.nodes;
    Real tmax = ray.tmax;
    set_slack(nodes[0], &r);
    Real tlimit = tmax + r.t_slack;  // boxes entered after this are culled
    int best = -1;
    Real best_u = 0, best_v = 0;
    Real troot;
    if (!hit_box(nodes[0], r, tlimit, &troot)) return false;

    int stack_node[kBVHStackSize];
    Real stack_t[kBVHStackSize];
    int sp = 0;
    int current = 0;
    for (;;) {
        const BVHNode& node = nodes[current];
        if (node.count == 0) {
            // Interior: test both children, descend into the nearer, push the farther.
            const int left = node.left_or_first;
            Real tl, tr;
            const bool hl = hit_box(nodes[left], r, tlimit, &tl);
            const bool hr = hit_box(nodes[left + 1], r, tlimit, &tr);
            if (hl && hr) {
                if (tr < tl) {
                    stack_node[sp] = left; stack_t[sp] = tl; ++sp;
                    current = left + 1;
                } else {
                    stack_node[sp] = left + 1; stack_t[sp] = tr; ++sp;
                    current = left;
                }
                continue;
            }
            if (hl) { current = left; continue; }
            if (hr) { current = left + 1; continue; }
        } else {
            // Leaf: test its triangles, shrinking tmax on each hit.
            const int first = node.left_or_first, end = first + node.count;
            for (int i = first; i < end; ++i) {
                Real t, u, v;
                if (hit_triangle(bvh.tri_verts + 9 * size_t(i), r, tmax, &t, &u, &v)) {
                    if (AnyHit) return true;
                    tmax = t; tlimit = t + r.t_slack;
                    best = i; best_u = u; best_v = v;
                }
            }
        }
        // Pop the next node that can still hold a closer hit.
        for (;;) {
            if (sp == 0) goto done;
            --sp;
            if (AnyHit || stack_t[sp] <= tlimit) { current = stack_node[sp]; break; }
        }
    }
done:
    if (best < 0) return false;
    hit->t = tmax;
    hit->tri = bvh.prim_index[best];
    hit->u = best_u;
    hit->v = best_v;
    return true;
}

}  // namespace detail

RT_HOST_DEVICE inline bool intersect(const BVHView& bvh, const Ray& ray, Hit* hit) {
    hit->t = kInfinity;
    hit->tri = -1;
    hit->u = hit->v = 0;
    return detail::traverse<false>(bvh, ray, hit);
}

RT_HOST_DEVICE inline bool occluded(const BVHView& bvh, const Ray& ray) {
    return detail::traverse<true>(bvh, ray, nullptr);
}

}  // namespace rt
