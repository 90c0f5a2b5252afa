// backward_interior.h: the interior kernel of the reverse pass: every pixel sample's path traced
// again and swept in reverse (the shading terms), taking at its vertices the secondary-edge
// samples (backward_terms.h). backward_interior.cpp runs it on the CPU's tiles; csrc/cuda one
// pixel per GPU thread.
#pragma once

#include "backward_secondary.h"

namespace rt {
namespace bwd {

RT_HOST_DEVICE RT_INLINE int min_i(int a, int b) { return a < b ? a : b; }

// Emission-only queries first gather the edges that may matter (kMaxEdgeCandidates at most), to
// sample them by exact importance, visiting this many tree nodes at most. Where it succeeds (few
// edges lie between the point and the lights, the common case) every draw lands on an edge that
// matters; the descent instead loses most draws in subtrees whose bounds looked promising.
constexpr int kGatherBudget = 256;

// What a probe ray through a screen point meets: the shape (-1: nothing) and the distance.
struct Probe {
    int shape;
    Real t;
};

RT_HOST_DEVICE RT_INLINE Probe probe(const SceneView& s, Real x, Real y) {
    Ray ray = generate_ray(s.camera, x, y);
    Hit hit;
    if (!intersect(s.bvh, ray, &hit)) return Probe{-1, 0};
    return Probe{s.tri_shape[hit.tri], hit.t};
}

// Whether the rays through a pixel's corners disagree: some hit and some miss, they hit
// different shapes, or their depths differ by more than 5%. (Geometry thinner than a pixel
// that all four miss leaves its pixel unboosted: a loss of samples, not a bias.)
RT_HOST_DEVICE RT_INLINE bool on_visibility_boundary(const Probe (&rays)[4]) {
    Real dmin = kInfinity, dmax = 0;
    for (const Probe& r : rays) {
        if (r.shape != rays[0].shape) return true;
        dmin = min_r(dmin, r.t);
        dmax = max_r(dmax, r.t);
    }
    return rays[0].shape >= 0 && dmax > dmin * Real(1.05);
}

struct InteriorKernel : BackwardContext {
    // The edge trees: [0] every edge that can matter (empty when every vertex is emission-only),
    // [1] those that can matter when only emission arrives; grad_trees: the same over the edges
    // of the shapes whose vertices need gradients, for vertices whose own position needs none
    // (has_grad_trees: some shape's do).
    EdgeTreeView trees[2], grad_trees[2];
    bool has_grad_trees;
    bool few_light_triangles;    // emission-only edge samples test the lights' triangles directly
    const Probe* corners;        // [(H + 1) x (W + 1)] probe rays through the pixel corners

    // The terms of pixel (px, py): its paths traced again and swept in reverse. `path` is scratch
    // (constructing one zeroes every vector of its 17 vertices: a caller keeps one for many
    // pixels; trace_path sets each field that d_path reads before d_path reads it). Adds the
    // secondary-edge draws made to *draws. Returns false when stop() (polled before each path)
    // says to stop.
    template <typename Acc, typename Stop>
    RT_HOST_DEVICE bool pixel(int px, int py, Acc& acc, Path& path, int64_t* draws, const Stop& stop) const {
        const Camera& cam = s.camera;
        // Emission-only vertices take their secondary terms on one path in `stride` (see
        // BackwardParams::secondary_stride).
        const uint64_t stride = uint64_t(p.secondary_stride);
        const uint64_t emission_per_pixel = (uint64_t(p.spp) + stride - 1) / stride;  // at most this many
        // Whether a path's first vertex can have bounces left (then its draws trace paths).
        const bool traced_first = p.secondary_edges_traced > 0 && !emission_only(s, p.max_bounces - 1);
        const int corners_x = cam.width + 1;
        int pixel = py * cam.width + px;
        acc.set_pixel(pixel);
        Vec3 d_pix = Vec3::load(d_image + 3 * size_t(pixel));
        Real d_aux[kAuxWidth];
        bool aux = false;
        for (int k = 0; k < kAuxWidth; ++k) {
            d_aux[k] = p.d_aux ? p.d_aux[size_t(pixel) * kAuxWidth + k] : Real(0);
            aux = aux || d_aux[k] != 0;
        }
        if (is_black(d_pix) && !aux) return true;
        // Pixels on a visibility boundary take more samples: the faces seen nearly
        // edge-on there move their hit points by 1/cos, the largest terms of the
        // gradient's noise.
        const Probe* c = corners + size_t(py) * corners_x + px;
        const Probe rays[4] = {c[0], c[1], c[corners_x], c[corners_x + 1]};
        int n = on_visibility_boundary(rays) ? p.spp * kBoundaryPixelBoost : p.spp;
        d_pix = d_pix / Real(n);
        for (int k = 0; k < kAuxWidth; ++k) d_aux[k] /= Real(n);
        DCameraParams d_cam{};
        uint32_t pattern_key = hash32(uint32_t(p.seed * 0x2545f491u) ^ 0x3c6ef372u, uint32_t(pixel));
        // Emission-only vertices take their secondary terms on the pixel's samples smp
        // with (smp + offset) % stride == 0, the offset random per pixel and seed: each
        // path with probability 1 / stride (a fixed pattern over the image would leave
        // whole columns out at spp < stride).
        const uint64_t stride_offset = hash32(pattern_key, 0x85ebca6bu) % stride;
        for (int smp = 0; smp < n; ++smp) {
            if (stop()) return false;
            Vec2 j = cmj_sample(uint32_t(smp), uint32_t(n), pattern_key);
            Real sx = Real(px) + j.x, sy = Real(py) + j.y;
            Ray ray = generate_ray(cam, sx, sy);
            Sampler sampler(p.seed, kStreamBackward, uint64_t(pixel), uint64_t(smp));
            Sampler edge_sampler(p.seed, kStreamEdge, uint64_t(pixel), uint64_t(smp));
            trace_path(s, ray, p.max_bounces, sampler, &path);
            // The secondary edges take the first spp samples only (each is uniform over the
            // pixel, as the pattern permutes its samples), weighted up to stand for all
            // n: the extra samples are for the terms of the hit points. Emission-only
            // vertices take one of those paths in secondary_stride (BackwardParams).
            EdgeWeights ew;
            ew.traced = smp < p.spp ? Real(n) / Real(p.spp) : Real(0);
            ew.u_traced = 0;
            if (traced_first) ew.u_traced = cmj_sample(uint32_t(smp), uint32_t(p.spp), pattern_key ^ 0x5bd1e995u).y;
            ew.emission = 0;
            ew.u_emission = 0;
            if (smp < p.spp && (uint64_t(smp) + stride_offset) % stride == 0) {
                ew.emission = ew.traced * Real(stride);
                ew.u_emission = cmj_sample(uint32_t(uint64_t(smp) / stride), uint32_t(emission_per_pixel),
                                           pattern_key ^ 0x7f4a7c15u).y;
            }
            d_path(s, path, d_pix, aux ? d_aux : nullptr, edge_sampler, ew, uint64_t(pixel), uint64_t(smp), acc, sx,
                   sy, &d_cam, draws);
        }
        add_camera_grad(acc, layout, d_cam);
        return true;
    }

    // The weights of a path's secondary-edge terms (0: none taken) at its emission-only vertices
    // and at the others, and the stratified number that places the draws at its first vertex.
    struct EdgeWeights {
        Real traced, u_traced;
        Real emission, u_emission;
    };

    // The terms of one path: d_pix is this sample's share of the pixel's radiance gradient, d_aux
    // (or null) of its auxiliary channels' (kAuxWidth values).
    template <typename Acc>
    RT_HOST_DEVICE void d_path(const SceneView& s, const Path& path, Vec3 d_pix, const Real* d_aux,
                               const Sampler& edge_sampler, const EdgeWeights& ew, uint64_t pixel, uint64_t smp,
                               Acc& acc, Real sx, Real sy, DCameraParams* d_cam, int64_t* draws) const {
        const GradLayout& L = layout;
        SlotSink<Acc> tex_sink{&acc, L.texels};
        SlotSink<Acc> env_sink{&acc, L.envmap};
        Vec3 d_cam_org(0), d_cam_dir(0);
        Vec3 unused;
        if (p.interior && path.escaped) {
            Vec3 d_dir(0);
            d_envmap_eval(s.envmap, path.escape_ray.dir, d_pix * path.escape_beta * path.escape_weight, env_sink,
                          &d_dir);
            if (path.n == 0) d_cam_dir += d_dir;  // the background seen directly turns with the camera
        }
        // Whether a gradient w.r.t. vertex k's position reaches anything asked for: the camera,
        // or the vertices of its own or an earlier vertex's shape (through the rays' origins).
        bool x_grad[kMaxPathVertices];
        bool any = p.camera_grad != 0;
        for (int k = 0; k < path.n; ++k) {
            any = any || !p.shape_vertex_grad || p.shape_vertex_grad[path.v[k].sp.shape_id];
            x_grad[k] = any;
        }
        Vec3 d_x_next(0);  // gradient w.r.t. the origin of the ray leaving the current vertex
        for (int k = path.n - 1; k >= 0; --k) {
            const PathVertex& pv = path.v[k];
            Vec3 d_L = d_pix * pv.beta;
            Vec3 d_p = d_x_next, d_ns(0), d_ng(0), d_wo(0);
            Vec2 d_uv(0, 0);
            d_x_next = Vec3(0);
            if (p.interior && pv.light_id >= 0) add_vec3(acc, L.lights, pv.light_id, d_L * pv.emit_weight);
            if (pv.scatters) {
                DBSDFParams d_bsdf{};
                if (p.interior && pv.nee_kind != kNeeNone) {
                    Vec3 f = pv.nee_f;
                    Real c = dot(pv.ns, pv.nee_wi);
                    Real S = pv.nee_S;
                    Vec3 d_f = d_L * pv.nee_Le * (c * S * pv.nee_scale);
                    Real d_cS = dot(d_L, f * pv.nee_Le) * pv.nee_scale;  // w.r.t. c * S
                    Vec3 d_Le = d_L * f * (c * S * pv.nee_scale);
                    d_bsdf_eval_world(pv.bsdf, pv.ns, pv.wo, pv.nee_wi, d_f, &d_bsdf, &d_ns, &d_wo, &unused);
                    d_ns += pv.nee_wi * (d_cS * S);
                    d_terminator(pv.ng, pv.ns, pv.nee_wi, d_cS * c, &d_ng, &d_ns, &unused);
                    if (pv.nee_kind == kNeeArea) {
                        add_vec3(acc, L.lights, pv.nee_light, d_Le);
                    } else {
                        d_envmap_eval(s.envmap, pv.nee_wi, d_Le, env_sink, &unused);
                    }
                }
                if (p.interior && pv.has_next) {
                    Vec3 f = pv.next_f;
                    Real c = dot(pv.ns, pv.next_wi);
                    Real S = pv.next_S;
                    Vec3 d_T = d_L * pv.L_in;
                    Vec3 d_f = d_T * (c * S / pv.next_pdf);
                    Real d_cS = dot(d_T, f) / pv.next_pdf;
                    d_bsdf_eval_world(pv.bsdf, pv.ns, pv.wo, pv.next_wi, d_f, &d_bsdf, &d_ns, &d_wo, &unused);
                    d_ns += pv.next_wi * (d_cS * S);
                    d_terminator(pv.ng, pv.ns, pv.next_wi, d_cS * c, &d_ng, &d_ns, &unused);
                }
                if (p.interior) {
                    d_eval_material(s.texels, s.materials[pv.material_id], pv.sp.uv, d_bsdf, tex_sink, &d_uv);
                }
                int remaining = p.max_bounces - (k + 1);
                bool emission = emission_only(s, remaining);
                // (Emission-only with no area light: nothing arrives, no edge matters.)
                Real edge_weight = emission ? (s.num_lights > 0 ? ew.emission : Real(0)) : ew.traced;
                if (p.secondary_edges + p.secondary_edges_traced > 0 && edge_weight > 0 &&
                    (x_grad[k] || has_grad_trees) && !is_black(d_pix)) {
                    Sampler path_sampler(p.seed, kStreamEdge + 1 + uint32_t(k), pixel, smp);
                    // At the first vertex the pixel's samples share one stratified pattern.
                    Real u = k == 0 ? (emission ? ew.u_emission : ew.u_traced) : edge_sampler.get(uint32_t(k));
                    // n samples, stratified over the edges' importance: the opposite edges of a
                    // light (or of an occluder), whose terms cancel in large part, are then all
                    // sampled from the same point.
                    // Where the edges are looked at from (creases count where a bounce is left).
                    EdgeQuery query = make_edge_query(pv.sp.p, pv.ng, remaining >= 1,
                                                      emission ? trees[0].emitters : nullptr, trees[0].num_emitters);
                    int n = emission ? p.secondary_edges : p.secondary_edges_traced;
                    // Where no gradient flows to the vertex (its position moves nothing asked
                    // for), only the edges of shapes whose vertices need gradients are sampled.
                    const EdgeTreeView* tr = x_grad[k] ? trees : grad_trees;
                    // Where a bounce is left, every edge may matter and the tree weighs them by
                    // length / distance^2, which finds the lights' own edges (the largest jumps:
                    // the direct light's outline) only rarely. Half the samples then come from the
                    // emission tree instead (as if only emission arrived), and each sample is
                    // weighted by the density of both strategies together (balance heuristic).
                    bool mix = !emission && n >= 2 && trees[0].num_emitters > 0 && tr[1].num_nodes > 0;
                    EdgeQuery direct;
                    if (mix) direct = make_edge_query(pv.sp.p, pv.ng, false, trees[0].emitters, trees[0].num_emitters);
                    int counts[2] = {mix ? n - n / 2 : n, mix ? n / 2 : 0};
                    const EdgeTreeView* strategy_tree[2] = {&tr[emission ? 1 : 0], &tr[1]};
                    const EdgeQuery* strategy_query[2] = {&query, &direct};
                    // The part of edge ei that strategy i draws points on.
                    auto span_of = [&](int i, int ei, EdgeSpan* sp) {
                        const Edge& e = edges[ei];
                        Vec3 v0 = Vec3::load(s.vertices + 3 * size_t(e.v0));
                        Vec3 v1 = Vec3::load(s.vertices + 3 * size_t(e.v1));
                        Real t0, t1;
                        if (!emitter_interval(*strategy_query[i], v0, v1, &t0, &t1)) return false;
                        *sp = edge_span(pv.sp.p, v0, v1, t0, t1);
                        return sp->len > 0;
                    };
                    for (int i = 0; i < 2; ++i) {
                        int count = counts[i];
                        if (count <= 0) continue;
                        const EdgeTreeView& t = *strategy_tree[i];
                        const EdgeQuery& q = *strategy_query[i];
                        EdgeCandidates candidates;
                        // Few edges may matter when only emission arrives (the tree prunes all but
                        // those in front of the lights): then sample them by exact importance.
                        bool few = !mix && emission && gather_edges(t, q, kGatherBudget, &candidates);
                        if (few && candidates.count == 0) continue;
                        // In batches of stratified numbers, each batch drawn in one descent.
                        for (int j0 = 0; j0 < count; j0 += kMaxEdgeDraws) {
                            int m = min_i(kMaxEdgeDraws, count - j0);
                            Real uj[kMaxEdgeDraws], p_edge[kMaxEdgeDraws], u_t[kMaxEdgeDraws];
                            int ei[kMaxEdgeDraws];
                            for (int j = 0; j < m; ++j) {
                                uj[j] = min_r((Real(j0 + j) + u) / Real(count), Real(0.99999994));
                            }
                            if (few) {
                                for (int j = 0; j < m; ++j) {
                                    ei[j] = sample_candidates(candidates, uj[j], &p_edge[j], &u_t[j]);
                                }
                            } else {
                                sample_edge_tree(t, q, m, uj, ei, p_edge, u_t);
                            }
                            *draws += m;
                            for (int j = 0; j < m; ++j) {
                                EdgeSpan sp;
                                if (ei[j] < 0 || !(p_edge[j] > 0) || !span_of(i, ei[j], &sp)) continue;
                                Real tt;
                                Real density = Real(count) * p_edge[j] * sample_edge_point(sp, u_t[j], &tt);
                                if (!(density > 0)) continue;
                                if (mix) {
                                    int o = 1 - i;
                                    Real po = edge_tree_pmf(*strategy_tree[o], *strategy_query[o], ei[j]);
                                    EdgeSpan so;
                                    if (po > 0 && span_of(o, ei[j], &so)) {
                                        density += Real(counts[o]) * po * edge_point_pdf(so, tt);
                                    }
                                }
                                d_p += secondary_edge_term(s, edges, query, ei[j], tt, 1 / density, L, pv,
                                                           d_L * edge_weight, remaining, few_light_triangles,
                                                           path_sampler, acc);
                            }
                        }
                    }
                }
            }
            // The auxiliary channels' interior terms, at the first hit (alpha has none; the layout of
            // d_aux is aux_values', path_tracer.h).
            if (k == 0 && d_aux && p.interior) {
                // Depth: |p - origin| along the camera ray (p slides along it as the surface moves).
                Vec3 w = pv.sp.p - pv.ray.org;
                Real len = length(w);
                if (len > 0) {
                    Vec3 g = w * (d_aux[1] / len);
                    d_p += g;
                    d_cam_org += -g;
                }
                // Normal: the shading normal facing the camera; pv.ns is pv.side x sp.ns.
                Real facing = dot(pv.sp.ns, pv.wo) < 0 ? Real(-1) : Real(1);
                d_ns += Vec3(d_aux[2], d_aux[3], d_aux[4]) * (facing * pv.side);
                // Albedo: the diffuse texture at the hit's uv.
                d_texture_lookup(s.texels, s.materials[pv.material_id].diffuse, pv.sp.uv,
                                 Vec3(d_aux[5], d_aux[6], d_aux[7]), tex_sink, &d_uv);
                // Position, the geometric normal facing the camera (pv.ng is pv.side x sp.ng), uv.
                d_p += Vec3(d_aux[8], d_aux[9], d_aux[10]);
                Real facing_g = dot(pv.sp.ng, pv.wo) < 0 ? Real(-1) : Real(1);
                d_ng += Vec3(d_aux[11], d_aux[12], d_aux[13]) * (facing_g * pv.side);
                d_uv = Vec2(d_uv.x + d_aux[14], d_uv.y + d_aux[15]);
            }
            if (!p.interior) {
                // Only the boundary terms: the vertex position still carries their gradient.
                d_ns = Vec3(0);
                d_ng = Vec3(0);
                d_wo = Vec3(0);
                d_uv = Vec2(0, 0);
            }
            Vec3 d_org(0), d_dir(0);
            // wo = -normalize(ray.dir): only the camera ray's direction varies.
            if (k == 0) d_dir += -d_normalize(pv.ray.dir, d_wo);
            d_hit_geometry(s, L, pv, d_p, d_ns, d_ng, d_uv, acc, &d_org, &d_dir);
            if (k == 0) {
                d_cam_org += d_org;
                d_cam_dir += d_dir;
            } else {
                d_x_next = d_org;  // the origin of this ray is the previous vertex
            }
        }
        d_generate_ray(camera, sx, sy, d_cam_org, d_cam_dir, d_cam);
    }
};

// The interior kernel over `context`, drawing from the trees' views (corners not set).
inline InteriorKernel interior_kernel(const BackwardContext& context, const EdgeTree& tree, const EdgeTree& grad_tree) {
    InteriorKernel k;
    static_cast<BackwardContext&>(k) = context;
    k.trees[0] = tree.view();
    k.trees[1] = tree.emission_view();
    k.grad_trees[0] = grad_tree.view();
    k.grad_trees[1] = grad_tree.emission_view();
    k.has_grad_trees = !grad_tree.empty();
    k.few_light_triangles = count_light_triangles(context.s) <= kMaxBruteForceLightTriangles;
    k.corners = nullptr;
    return k;
}

}  // namespace bwd
}  // namespace rt
