#include "backward.h"

#include <cmath>

#include "cancel.h"
#include "geometry.h"
#include "limits.h"
#include "light.h"
#include "path_tracer.h"
#include "rng.h"

namespace rt {

GradAccumulator& thread_grad_accumulator(int size, const double* probe) {
    thread_local GradAccumulator acc;
    acc.reset(size, probe);
    return acc;
}

namespace {

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
void trace_path(const SceneView& s, Ray ray, int max_bounces, const Sampler& sampler, Path* path) {
    path->n = 0;
    path->escaped = 0;
    Vec3 beta(1);
    Real prev_bsdf_pdf = 0;
    Vec3 prev_p;
    Hit hit;
    bool found = intersect(s.bvh, ray, &hit);
    for (int bounce = 0;; ++bounce) {
        if (!found) {
            if (s.has_envmap) {
                Real w = 1;
                if (bounce > 0 && s.env_choice_prob > 0) {
                    w = power_heuristic(prev_bsdf_pdf, s.env_choice_prob * envmap_pdf(s.envmap, ray.dir));
                }
                path->escaped = 1;
                path->escape_ray = ray;
                path->escape_weight = w;
                path->escape_beta = beta;
            }
            break;
        }
        PathVertex& pv = path->v[path->n++];
        pv.ray = ray;
        pv.hit = hit;
        pv.beta = beta;
        pv.sp = surface_point(s, hit);
        pv.wo = -normalize(ray.dir);
        pv.scatters = 0;
        pv.light_id = -1;
        pv.nee_kind = kNeeNone;
        pv.has_next = 0;
        pv.L_in = Vec3(0);
        const ShapeData& shape = s.shapes[pv.sp.shape_id];
        pv.material_id = shape.material_id;
        const Material& material = s.materials[shape.material_id];
        if (shape.light_id >= 0) {
            Vec3 Le = area_light_emission(s.lights[shape.light_id], pv.sp.ng, pv.wo);
            if (!is_black(Le)) {
                Real w = 1;
                if (bounce > 0) {
                    Real light_pdf = (1 - s.env_choice_prob) * area_lights_pdf(s, prev_p, pv.sp.p, pv.sp.ng, pv.sp.tri);
                    w = power_heuristic(prev_bsdf_pdf, light_pdf);
                }
                pv.light_id = shape.light_id;
                pv.emit_weight = w;
            }
        }
        // Set before any exit: d_hit_geometry reads them (times zero) at every vertex.
        pv.side = 1;
        pv.ng = pv.sp.ng;
        pv.ns = pv.sp.ns;
        if (bounce >= max_bounces || path->n == kMaxPathVertices) break;
        if (dot(pv.wo, pv.ng) < 0) {
            if (!material.two_sided) break;
            pv.side = -1;
            pv.ng = -pv.ng;
            pv.ns = -pv.ns;
        }
        pv.scatters = 1;
        Frame frame(pv.ns);
        Vec3 wo_local = frame.to_local(pv.wo);
        pv.bsdf = eval_material(s.texels, material, pv.sp.uv);
        Vec3 origin = offset_ray_origin(pv.sp, pv.ng);
        uint32_t dim = bounce_dim(bounce);

        // Next-event estimation (as in radiance()).
        if (s.env_choice_prob > 0 || s.num_lights > 0) {
            Real u_choice = sampler.get(dim + 0);
            Vec2 u_light(sampler.get(dim + 1), sampler.get(dim + 2));
            Vec3 wi, Le, target;
            Real light_pdf = 0;
            int kind, light = -1;
            if (u_choice < s.env_choice_prob) {
                Real pdf;
                wi = envmap_sample(s.envmap, u_light, &pdf);
                light_pdf = s.env_choice_prob * pdf;
                Le = envmap_eval(s.envmap, wi);
                kind = kNeeEnv;
            } else {
                Real u_rescaled = (u_choice - s.env_choice_prob) / (1 - s.env_choice_prob);
                LightSample ls = sample_area_lights(s, pv.sp.p, Vec3(u_rescaled, u_light.x, u_light.y));
                light_pdf = (1 - s.env_choice_prob) * ls.pdf;
                wi = ls.dir;
                Le = ls.Le;
                target = ls.point;
                kind = kNeeArea;
                if (ls.tri >= 0) light = s.shapes[s.tri_shape[ls.tri]].light_id;
            }
            if (light_pdf > 0 && !is_black(Le) && dot(wi, pv.ng) > 0) {
                Vec3 wi_local = frame.to_local(wi);
                Vec3 f = bsdf_eval(pv.bsdf, wo_local, wi_local);
                if (!is_black(f)) {
                    bool unblocked;
                    if (kind == kNeeEnv) {
                        Ray shadow{origin, wi, 0, kInfinity};
                        unblocked = !occluded(s.bvh, shadow);
                    } else {
                        unblocked = visible(s, origin, target);
                    }
                    if (unblocked) {
                        pv.nee_kind = kind;
                        pv.nee_light = light;
                        pv.nee_wi = wi;
                        pv.nee_Le = Le;
                        pv.nee_scale = power_heuristic(light_pdf, bsdf_pdf(pv.bsdf, wo_local, wi_local)) / light_pdf;
                    }
                }
            }
        }

        // BSDF sampling.
        Vec3 u_bsdf(sampler.get(dim + 3), sampler.get(dim + 4), sampler.get(dim + 5));
        Vec3 wi_local;
        Real pdf;
        if (!bsdf_sample(pv.bsdf, wo_local, u_bsdf, &wi_local, &pdf)) break;
        Vec3 wi = frame.to_world(wi_local);
        if (dot(wi, pv.ng) <= 0) break;
        Vec3 f = bsdf_eval(pv.bsdf, wo_local, wi_local);
        beta *= f * (wi_local.z * terminator(pv.ng, pv.ns, wi) / pdf);
        if (is_black(beta)) break;
        pv.has_next = 1;
        pv.next_wi = wi;
        pv.next_pdf = pdf;
        prev_bsdf_pdf = pdf;
        prev_p = pv.sp.p;
        ray = Ray{origin, wi, 0, kInfinity};
        found = continue_path(s, ray, bounce, max_bounces, &hit);
    }
    // Radiance flowing back along each continuation, from the end of the path.
    Vec3 L_next = path->escaped ? envmap_eval(s.envmap, path->escape_ray.dir) * path->escape_weight : Vec3(0);
    for (int k = path->n - 1; k >= 0; --k) {
        PathVertex& pv = path->v[k];
        pv.L_in = pv.has_next ? L_next : Vec3(0);
        Vec3 L_out(0);
        if (pv.light_id >= 0) L_out += s.lights[pv.light_id].intensity * pv.emit_weight;
        if (pv.nee_kind != kNeeNone) {
            pv.nee_f = bsdf_eval_world(pv.bsdf, pv.ns, pv.wo, pv.nee_wi);
            pv.nee_S = terminator(pv.ng, pv.ns, pv.nee_wi);
            L_out += pv.nee_f * pv.nee_Le * (dot(pv.ns, pv.nee_wi) * pv.nee_S * pv.nee_scale);
        }
        if (pv.has_next) {
            pv.next_f = bsdf_eval_world(pv.bsdf, pv.ns, pv.wo, pv.next_wi);
            pv.next_S = terminator(pv.ng, pv.ns, pv.next_wi);
            L_out += pv.next_f * pv.L_in * (dot(pv.ns, pv.next_wi) * pv.next_S / pv.next_pdf);
        }
        L_next = L_out;
    }
}

// ---- Derivatives of a hit's geometry ----------------------------------------------------

struct TriangleVerts {
    int idx[3];
    Vec3 v[3];
};

TriangleVerts load_triangle(const SceneView& s, int tri) {
    TriangleVerts t;
    for (int k = 0; k < 3; ++k) {
        t.idx[k] = s.indices[3 * size_t(tri) + k];
        t.v[k] = Vec3::load(s.vertices + 3 * size_t(t.idx[k]));
    }
    return t;
}

void add_vec3(GradAccumulator& acc, int base, int index, Vec3 g) {
    acc.add(base + 3 * index + 0, g.x);
    acc.add(base + 3 * index + 1, g.y);
    acc.add(base + 3 * index + 2, g.z);
}

// Back-propagates gradients w.r.t. a vertex's position, shading normal and uv to the mesh
// and to the ray that found it (through the barycentrics of the ray-plane intersection).
void d_hit_geometry(const SceneView& s, const GradLayout& layout, const PathVertex& pv, Vec3 d_p, Vec3 d_ns,
                    Vec3 d_ng, Vec2 d_uv, GradAccumulator& acc, Vec3* d_org, Vec3* d_dir) {
    TriangleVerts tv = load_triangle(s, pv.hit.tri);
    Real t, b1, b2;
    if (!intersect_triangle(pv.ray.org, pv.ray.dir, tv.v[0], tv.v[1], tv.v[2], &t, &b1, &b2)) return;
    Real b[3] = {1 - b1 - b2, b1, b2};
    Real d_b[3] = {0, 0, 0};
    Vec3 d_v[3];
    // Position p = sum b_i v_i.
    for (int k = 0; k < 3; ++k) {
        d_b[k] += dot(d_p, tv.v[k]);
        d_v[k] += d_p * b[k];
    }
    const ShapeData& shape = s.shapes[pv.sp.shape_id];
    // Shading normal.
    if (shape.has_normals) {
        Vec3 n_k[3];
        Vec3 n(0);
        for (int k = 0; k < 3; ++k) {
            n_k[k] = Vec3::load(s.normals + 3 * size_t(tv.idx[k]));
            n += n_k[k] * b[k];
        }
        // surface_point flips the interpolated normal to the geometric side; `side` flips both.
        Real flip = pv.side;
        if (dot(n, cross(tv.v[1] - tv.v[0], tv.v[2] - tv.v[0])) < 0) flip = -flip;
        if (length(n) > 0) {
            Vec3 d_n = d_normalize(n, d_ns * flip);
            for (int k = 0; k < 3; ++k) {
                d_b[k] += dot(d_n, n_k[k]);
                add_vec3(acc, layout.normals, tv.idx[k], d_n * b[k]);
            }
        }
    } else {
        d_ng += d_ns;  // flat shading: the shading normal is the geometric one
    }
    // Geometric normal (pv.ng = side * normalize(cross(v1 - v0, v2 - v0))).
    if (!is_black(d_ng)) {
        Vec3 c = cross(tv.v[1] - tv.v[0], tv.v[2] - tv.v[0]);
        if (length(c) > 0) {
            Vec3 d_c = d_normalize(c, d_ng * pv.side);
            Vec3 d_e1, d_e2;
            d_cross(tv.v[1] - tv.v[0], tv.v[2] - tv.v[0], d_c, &d_e1, &d_e2);
            d_v[1] += d_e1;
            d_v[2] += d_e2;
            d_v[0] += -(d_e1 + d_e2);
        }
    }
    // Texture coordinates.
    if (shape.has_uvs) {
        for (int k = 0; k < 3; ++k) {
            const Real* uv = s.uvs + 2 * size_t(tv.idx[k]);
            d_b[k] += d_uv.x * uv[0] + d_uv.y * uv[1];
            acc.add(layout.uvs + 2 * tv.idx[k] + 0, d_uv.x * b[k]);
            acc.add(layout.uvs + 2 * tv.idx[k] + 1, d_uv.y * b[k]);
        }
    } else {
        d_b[1] += d_uv.x;
        d_b[2] += d_uv.y;
    }
    // Barycentrics of the ray-plane intersection.
    Real d_b1 = d_b[1] - d_b[0], d_b2 = d_b[2] - d_b[0];
    d_intersect_triangle(pv.ray.org, pv.ray.dir, tv.v[0], tv.v[1], tv.v[2], 0, d_b1, d_b2, d_org, d_dir, &d_v[0],
                         &d_v[1], &d_v[2]);
    for (int k = 0; k < 3; ++k) add_vec3(acc, layout.vertices, tv.idx[k], d_v[k]);
}

// ---- Secondary edges --------------------------------------------------------------------

// With no bounce left and no environment, only emission arrives at a vertex: only edges in front
// of an area light matter there.
bool emission_only(const SceneView& s, int remaining_bounces) { return remaining_bounces == 0 && !s.has_envmap; }

// Light triangles up to which an emission-only edge sample finds the emitter behind the edge
// by testing them all instead of tracing the scene.
constexpr int kMaxBruteForceLightTriangles = 64;

int count_light_triangles(const SceneView& s) {
    int n = 0;
    for (int l = 0; l < s.num_lights; ++l) n += s.lights[l].num_triangles;
    return n;
}

// The nearest area-light triangle along `ray` (all of them tested): its emission toward the
// ray's origin in *Le and its distance in *t; false when the ray meets none.
bool closest_emitter(const SceneView& s, const Ray& ray, Vec3* Le, Real* t) {
    detail::RayPrep r;
    if (!detail::prepare_ray(ray, &r)) return false;
    Real best = ray.tmax;
    int best_tri = -1, best_light = -1;
    for (int l = 0; l < s.num_lights; ++l) {
        const AreaLightData& light = s.lights[l];
        for (int k = 0; k < light.num_triangles; ++k) {
            int tri = s.light_tri[light.tri_offset + k];
            const int* idx = s.indices + 3 * size_t(tri);
            Real v[9];
            for (int c = 0; c < 3; ++c) {
                for (int a = 0; a < 3; ++a) v[3 * c + a] = s.vertices[3 * size_t(idx[c]) + a];
            }
            Real tt, bu, bv;
            if (detail::hit_triangle(v, r, best, &tt, &bu, &bv)) {
                best = tt;
                best_tri = tri;
                best_light = l;
            }
        }
    }
    if (best_tri < 0) return false;
    *Le = area_light_emission(s.lights[best_light], face_normal_unnormalised(s, best_tri), -ray.dir);
    *t = best;
    return true;
}

// The vertex of face f that is not on edge e.
Vec3 third_vertex(const SceneView& s, const Edge& e, int f) {
    const int* idx = s.indices + 3 * size_t(f);
    int k = idx[0] != e.v0 && idx[0] != e.v1 ? 0 : (idx[1] != e.v0 && idx[1] != e.v1 ? 1 : 2);
    return Vec3::load(s.vertices + 3 * size_t(idx[k]));
}

// Of two faces f and g of edge e that lie on the same side of its image (a silhouette), whether f
// is the one in front: its plane separates the viewer (at offset `to_viewer` from the edge, or
// in that direction) from g's third vertex, for either winding.
bool face_in_front(const SceneView& s, const Edge& e, int f, int g, Vec3 to_viewer) {
    Vec3 nf = face_normal_unnormalised(s, f);
    Vec3 v0 = Vec3::load(s.vertices + 3 * size_t(e.v0));
    Real viewer_side = dot(nf, to_viewer), other_side = dot(nf, third_vertex(s, e, g) - v0);
    return (viewer_side > 0) != (other_side > 0);
}

// Which of edge e's faces covers each side of its image as seen from x, side 1 being the side
// of +n_hat (n_hat normal to the plane of x and the edge): the side of each face's third
// vertex, and when both lie on one side (a silhouette) the face in front. -1: no face there.
// False when a face is seen edge-on from x.
bool faces_on_sides(const SceneView& s, const Edge& e, Vec3 x, Vec3 n_hat, int face_on[2]) {
    face_on[0] = face_on[1] = -1;
    Vec3 v0 = Vec3::load(s.vertices + 3 * size_t(e.v0));
    for (int f : {e.f0, e.f1}) {
        if (f < 0) continue;
        Real sd = dot(n_hat, third_vertex(s, e, f) - x);
        if (sd == 0) return false;
        int side = sd > 0 ? 1 : 0;
        if (face_on[side] >= 0 && !face_in_front(s, e, f, face_on[side], x - v0)) continue;
        face_on[side] = f;
    }
    return true;
}

// The emission arriving at x (rays from `origin`) along dirs[0] and dirs[1], just either side of
// edge e's image at edge point m, when only emission arrives there: a side covered by a face of
// the edge sees that face (its emission, if m is visible); the other side sees the nearest
// emitter behind the edge, if nothing occludes it. Equal to tracing both rays, but it traces
// only when an emitter can be seen: no ray at all for the many samples whose uncovered side
// misses the lights. False when it does not apply (many light triangles, a face seen edge-on):
// then the caller traces both rays.
bool emission_edge_sides(const SceneView& s, const Edge& e, Vec3 x, Vec3 origin, Vec3 m, Vec3 n_hat,
                         const Vec3 dirs[2], Vec3 h[2]) {
    int face_on[2];
    if (!faces_on_sides(s, e, x, n_hat, face_on)) return false;
    // A light in front of the edge point hides the edge: both sides see that light. (Tested on
    // the ray to the edge point itself: the side rays are turned about the edge and would meet a
    // light whose surface passes through the edge point just before it.)
    Real dist_m = length(m - origin);
    if (!(dist_m > 0)) return false;
    {
        Vec3 Le;
        Real t;
        if (closest_emitter(s, Ray{origin, (m - origin) / dist_m, 0, dist_m * (1 - Real(1e-4))}, &Le, &t)) {
            h[0] = h[1] = Vec3(0);
            return true;
        }
    }
    for (int side = 0; side < 2; ++side) {
        h[side] = Vec3(0);
        int f = face_on[side];
        if (f >= 0) {
            int light = s.shapes[s.tri_shape[f]].light_id;
            if (light < 0) continue;
            Vec3 Le = area_light_emission(s.lights[light], face_normal_unnormalised(s, f), -dirs[side]);
            if (!is_black(Le) && visible(s, origin, m)) h[side] = Le;
            continue;
        }
        Ray ray{origin, dirs[side], 0, kInfinity};
        Vec3 Le;
        Real t;
        if (!closest_emitter(s, ray, &Le, &t) || is_black(Le)) continue;
        ray.tmax = t * (1 - Real(1e-4));
        if (!occluded(s.bvh, ray)) h[side] = Le;
    }
    return true;
}

// Points on an edge part [t0, t1] (of v0 + t (v1 - v0)) are drawn uniformly in the angle the part
// subtends at x: the term falls off as 1 / distance, so uniform in t would give heavy tails
// where an edge passes close to x, as at contact. The distance from x to the edge's line and the
// part's ends along it, or false when x lies on the line (then uniform in t).
struct EdgeSpan {
    Real t0, t1, len, hgt, s_a, s_b;
    bool angular;
};

EdgeSpan edge_span(Vec3 x, Vec3 v0, Vec3 v1, Real t0, Real t1) {
    EdgeSpan sp;
    sp.t0 = t0;
    sp.t1 = t1;
    sp.len = length(v1 - v0);
    Vec3 dir_e = (v1 - v0) / sp.len;
    Vec3 a = v0 + (v1 - v0) * t0;
    sp.s_a = dot(a - x, dir_e);
    sp.s_b = sp.s_a + sp.len * (t1 - t0);
    sp.hgt = length((a - x) - dir_e * sp.s_a);
    sp.angular = sp.hgt > Real(1e-6) * (std::fabs(sp.s_a) + std::fabs(sp.s_b) + Real(1e-30));
    return sp;
}

// The angle the part subtends at x, th_b - th_a with th = atan2(s, hgt), in a form that keeps its
// precision when the difference is tiny (x near the edge's line, far from the part).
Real subtended_angle(const EdgeSpan& sp) {
    return std::atan2(sp.hgt * (sp.s_b - sp.s_a), sp.hgt * sp.hgt + sp.s_a * sp.s_b);
}

// Draws t from u; returns its density per unit t (0: none).
Real sample_edge_point(const EdgeSpan& sp, Real u, Real* t) {
    if (!sp.angular) {
        *t = sp.t0 + (sp.t1 - sp.t0) * u;
        return sp.t1 > sp.t0 ? 1 / (sp.t1 - sp.t0) : Real(0);
    }
    Real th_a = std::atan2(sp.s_a, sp.hgt), dth = subtended_angle(sp);
    Real th = th_a + dth * u;
    Real s_m = sp.hgt * std::tan(th);
    *t = min_r(sp.t1, max_r(sp.t0, sp.t0 + (s_m - sp.s_a) / sp.len));  // tan's rounding near +-pi/2
    // p(s) = hgt / ((hgt^2 + s^2) (th_b - th_a)); ds/dt = len.
    Real den = (sp.hgt * sp.hgt + s_m * s_m) * dth;
    return den > 0 ? sp.hgt * sp.len / den : Real(0);
}

// The density per unit t with which sample_edge_point draws t.
Real edge_point_pdf(const EdgeSpan& sp, Real t) {
    if (!(t >= sp.t0 && t <= sp.t1 && sp.t1 > sp.t0)) return 0;
    if (!sp.angular) return 1 / (sp.t1 - sp.t0);
    Real s_m = sp.s_a + (t - sp.t0) * sp.len;
    Real den = (sp.hgt * sp.hgt + s_m * s_m) * subtended_angle(sp);
    return den > 0 ? sp.hgt * sp.len / den : Real(0);
}

// The boundary term of the scattering integral at vertex pv for edge `ei` at the point of
// parameter t, drawn with density 1 / inv_density (over edges and t together; the estimator's
// weight). Adds the gradient w.r.t. the edge's vertices and returns the one w.r.t. the vertex
// position. `path_sampler` gives the paths that estimate the incoming radiance on both sides.
Vec3 secondary_edge_term(const SceneView& s, const Edge* edges, const EdgeQuery& query, int ei, Real t,
                         Real inv_density, const GradLayout& layout, const PathVertex& pv, Vec3 d_L,
                         int remaining_bounces, bool few_light_triangles, const Sampler& path_sampler,
                         GradAccumulator& acc) {
    Vec3 x = pv.sp.p;
    if (ei < 0 || !(inv_density > 0)) return Vec3(0);
    const Edge& e = edges[ei];
    Vec3 v0 = Vec3::load(s.vertices + 3 * size_t(e.v0)), v1 = Vec3::load(s.vertices + 3 * size_t(e.v1));
    Vec3 m = v0 + (v1 - v0) * t;
    Vec3 w = m - x;
    Real dist = length(w);
    if (dist <= 0) return Vec3(0);
    Vec3 omega = w / dist;
    Vec3 N = cross(v0 - x, v1 - x);
    Real N_len = length(N);
    if (N_len <= 0) return Vec3(0);
    Vec3 n_hat = N / N_len;
    // The integrand on both sides of the edge's projection: BSDF x cosine is continuous across
    // it and taken at omega; only the incoming radiance jumps.
    Real c = dot(pv.ns, omega);
    if (c <= 0 || dot(pv.ng, omega) <= 0) return Vec3(0);
    Vec3 fc = bsdf_eval_world(pv.bsdf, pv.ns, pv.wo, omega) * (c * terminator(pv.ng, pv.ns, omega));
    if (is_black(fc)) return Vec3(0);
    const Real eps = Real(1e-4);
    Vec3 origin = offset_ray_origin(pv.sp, pv.ng);
    Vec3 dirs[2] = {normalize(omega - n_hat * eps), normalize(omega + n_hat * eps)};
    Vec3 h[2];
    if (query.num_emitters >= 0 && few_light_triangles && emission_edge_sides(s, e, x, origin, m, n_hat, dirs, h)) {
        h[0] = fc * h[0];
        h[1] = fc * h[1];
    } else {
        for (int side = 0; side < 2; ++side) {
            PrimaryInfo info;
            h[side] = fc * radiance(s, Ray{origin, dirs[side], 0, kInfinity}, remaining_bounces, path_sampler, &info);
        }
    }
    // (h- - h+) times the normal velocity of the projected edge, per unit of t.
    Real S = dot(d_L, h[0] - h[1]);
    if (S == 0) return Vec3(0);
    Real jacobian = length(cross(omega, v1 - v0)) / dist;
    Real K = -S * jacobian * inv_density / N_len;
    Vec3 g0 = cross(v1 - x, omega) * K;
    Vec3 g1 = cross(omega, v0 - x) * K;
    add_vec3(acc, layout.vertices, e.v0, g0);
    add_vec3(acc, layout.vertices, e.v1, g1);
    return -(g0 + g1);
}

// What both backward kernels read.
struct BackwardContext {
    const SceneView* s;
    const CameraParams* camera;
    const GradLayout* layout;
    const BackwardParams* p;
    const Real* d_image;  // [H, W, 3]
    const Edge* edges;
};

void add_camera_grad(GradAccumulator& acc, const GradLayout& layout, const DCameraParams& d_cam) {
    add_vec3(acc, layout.camera, 0, d_cam.position);
    add_vec3(acc, layout.camera, 1, d_cam.look_at);
    add_vec3(acc, layout.camera, 2, d_cam.up);
    acc.add(layout.camera + 9, d_cam.fov_degrees);
}

// ---- The interior kernel ----------------------------------------------------------------

// Sample multiplier of the pixels that a visibility boundary crosses.
constexpr int kBoundaryPixelBoost = 4;

// The interior kernel's tiles are this many pixels on a side (fewer at the image's border).
constexpr int kTileSize = 8;

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

Probe probe(const SceneView& s, Real x, Real y) {
    Ray ray = generate_ray(s.camera, x, y);
    Hit hit;
    if (!intersect(s.bvh, ray, &hit)) return Probe{-1, 0};
    return Probe{s.tri_shape[hit.tri], hit.t};
}

// Whether the rays through a pixel's corners disagree: some hit and some miss, they hit
// different shapes, or their depths differ by more than 5%. (Geometry thinner than a pixel
// that all four miss leaves its pixel unboosted: a loss of samples, not a bias.)
bool on_visibility_boundary(const Probe (&rays)[4]) {
    Real dmin = kInfinity, dmax = 0;
    for (const Probe& r : rays) {
        if (r.shape != rays[0].shape) return true;
        dmin = min_r(dmin, r.t);
        dmax = max_r(dmax, r.t);
    }
    return rays[0].shape >= 0 && dmax > dmin * Real(1.05);
}

struct InteriorTile : BackwardContext {
    // The edge trees: [0] every edge that can matter (empty when every vertex is emission-only),
    // [1] those that can matter when only emission arrives; grad_trees: the same over the edges
    // of the shapes whose vertices need gradients, for vertices whose own position needs none
    // (has_grad_trees: some shape's do).
    EdgeTreeView trees[2], grad_trees[2];
    bool has_grad_trees;
    bool few_light_triangles;    // emission-only edge samples test the lights' triangles directly
    const Probe* corners;        // [(H + 1) x (W + 1)] probe rays through the pixel corners
    int tiles_x;

    void operator()(int tile, GradAccumulator& acc) const {
        const SceneView& s = *this->s;
        const Camera& cam = s.camera;
        int tx = tile % tiles_x, ty = tile / tiles_x;
        int64_t draws = 0;
        // Emission-only vertices take their secondary terms on one path in `stride` (see
        // BackwardParams::secondary_stride).
        const uint64_t stride = uint64_t(p->secondary_stride);
        const uint64_t emission_per_pixel = (uint64_t(p->spp) + stride - 1) / stride;  // at most this many
        // Whether a path's first vertex can have bounces left (then its draws trace paths).
        const bool traced_first = p->secondary_edges_traced > 0 && !emission_only(s, p->max_bounces - 1);
        int x0 = tx * kTileSize, y0 = ty * kTileSize;
        int x1 = std::min(cam.width, x0 + kTileSize), y1 = std::min(cam.height, y0 + kTileSize);
        const int corners_x = cam.width + 1;
        // One path buffer for the tile (constructing one zeroes every vector of its 17 vertices):
        // trace_path sets each field that d_path reads before d_path reads it.
        Path path;
        for (int py = y0; py < y1; ++py) {
            for (int px = x0; px < x1; ++px) {
                int pixel = py * cam.width + px;
                acc.set_pixel(pixel);
                Vec3 d_pix = Vec3::load(d_image + 3 * size_t(pixel));
                if (is_black(d_pix)) continue;
                // Pixels on a visibility boundary take more samples: the faces seen nearly
                // edge-on there move their hit points by 1/cos, the largest terms of the
                // gradient's noise.
                const Probe* c = corners + size_t(py) * corners_x + px;
                const Probe rays[4] = {c[0], c[1], c[corners_x], c[corners_x + 1]};
                int n = on_visibility_boundary(rays) ? p->spp * kBoundaryPixelBoost : p->spp;
                d_pix = d_pix / Real(n);
                DCameraParams d_cam{};
                uint32_t pattern_key = hash32(uint32_t(p->seed * 0x2545f491u) ^ 0x3c6ef372u, uint32_t(pixel));
                // Emission-only vertices take their secondary terms on the pixel's samples smp
                // with (smp + offset) % stride == 0, the offset random per pixel and seed: each
                // path with probability 1 / stride (a fixed pattern over the image would leave
                // whole columns out at spp < stride).
                const uint64_t stride_offset = hash32(pattern_key, 0x85ebca6bu) % stride;
                for (int smp = 0; smp < n; ++smp) {
                    if (cancel_requested()) return;  // the call throws Cancelled
                    Vec2 j = cmj_sample(uint32_t(smp), uint32_t(n), pattern_key);
                    Real sx = Real(px) + j.x, sy = Real(py) + j.y;
                    Ray ray = generate_ray(cam, sx, sy);
                    Sampler sampler(p->seed, kStreamBackward, uint64_t(pixel), uint64_t(smp));
                    Sampler edge_sampler(p->seed, kStreamEdge, uint64_t(pixel), uint64_t(smp));
                    trace_path(s, ray, p->max_bounces, sampler, &path);
                    // The secondary edges take the first spp samples only (each is uniform over the
                    // pixel, as the pattern permutes its samples), weighted up to stand for all
                    // n: the extra samples are for the terms of the hit points. Emission-only
                    // vertices take one of those paths in secondary_stride (BackwardParams).
                    EdgeWeights ew;
                    ew.traced = smp < p->spp ? Real(n) / Real(p->spp) : Real(0);
                    ew.u_traced = 0;
                    if (traced_first) ew.u_traced = cmj_sample(uint32_t(smp), uint32_t(p->spp), pattern_key ^ 0x5bd1e995u).y;
                    ew.emission = 0;
                    ew.u_emission = 0;
                    if (smp < p->spp && (uint64_t(smp) + stride_offset) % stride == 0) {
                        ew.emission = ew.traced * Real(stride);
                        ew.u_emission = cmj_sample(uint32_t(uint64_t(smp) / stride), uint32_t(emission_per_pixel),
                                                   pattern_key ^ 0x7f4a7c15u).y;
                    }
                    d_path(s, path, d_pix, edge_sampler, ew, uint64_t(pixel), uint64_t(smp), acc, sx, sy, &d_cam,
                           &draws);
                }
                add_camera_grad(acc, *layout, d_cam);
            }
        }
        if (p->stats) p->stats->secondary_edge_draws += draws;
    }

    // The weights of a path's secondary-edge terms (0: none taken) at its emission-only vertices
    // and at the others, and the stratified number that places the draws at its first vertex.
    struct EdgeWeights {
        Real traced, u_traced;
        Real emission, u_emission;
    };

    void d_path(const SceneView& s, const Path& path, Vec3 d_pix, const Sampler& edge_sampler, const EdgeWeights& ew,
                uint64_t pixel, uint64_t smp, GradAccumulator& acc, Real sx, Real sy, DCameraParams* d_cam,
                int64_t* draws) const {
        const GradLayout& L = *layout;
        GradSink tex_sink{&acc, L.texels};
        GradSink env_sink{&acc, L.envmap};
        Vec3 d_cam_org(0), d_cam_dir(0);
        Vec3 unused;
        if (p->interior && path.escaped) {
            Vec3 d_dir(0);
            d_envmap_eval(s.envmap, path.escape_ray.dir, d_pix * path.escape_beta * path.escape_weight, env_sink,
                          &d_dir);
            if (path.n == 0) d_cam_dir += d_dir;  // the background seen directly turns with the camera
        }
        // Whether a gradient w.r.t. vertex k's position reaches anything asked for: the camera,
        // or the vertices of its own or an earlier vertex's shape (through the rays' origins).
        bool x_grad[kMaxPathVertices];
        bool any = p->camera_grad != 0;
        for (int k = 0; k < path.n; ++k) {
            any = any || !p->shape_vertex_grad || p->shape_vertex_grad[path.v[k].sp.shape_id];
            x_grad[k] = any;
        }
        Vec3 d_x_next(0);  // gradient w.r.t. the origin of the ray leaving the current vertex
        for (int k = path.n - 1; k >= 0; --k) {
            const PathVertex& pv = path.v[k];
            Vec3 d_L = d_pix * pv.beta;
            Vec3 d_p = d_x_next, d_ns(0), d_ng(0), d_wo(0);
            Vec2 d_uv(0, 0);
            d_x_next = Vec3(0);
            if (p->interior && pv.light_id >= 0) add_vec3(acc, L.lights, pv.light_id, d_L * pv.emit_weight);
            if (pv.scatters) {
                DBSDFParams d_bsdf{};
                if (p->interior && pv.nee_kind != kNeeNone) {
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
                if (p->interior && pv.has_next) {
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
                if (p->interior) {
                    d_eval_material(s.texels, s.materials[pv.material_id], pv.sp.uv, d_bsdf, tex_sink, &d_uv);
                }
                int remaining = p->max_bounces - (k + 1);
                bool emission = emission_only(s, remaining);
                // (Emission-only with no area light: nothing arrives, no edge matters.)
                Real edge_weight = emission ? (s.num_lights > 0 ? ew.emission : Real(0)) : ew.traced;
                if (p->secondary_edges + p->secondary_edges_traced > 0 && edge_weight > 0 &&
                    (x_grad[k] || has_grad_trees)) {
                    Sampler path_sampler(p->seed, kStreamEdge + 1 + uint32_t(k), pixel, smp);
                    // At the first vertex the pixel's samples share one stratified pattern.
                    Real u = k == 0 ? (emission ? ew.u_emission : ew.u_traced) : edge_sampler.get(uint32_t(k));
                    // n samples, stratified over the edges' importance: the opposite edges of a
                    // light (or of an occluder), whose terms cancel in large part, are then all
                    // sampled from the same point.
                    // Where the edges are looked at from (creases count where a bounce is left).
                    EdgeQuery query = make_edge_query(pv.sp.p, pv.ng, remaining >= 1,
                                                      emission ? trees[0].emitters : nullptr, trees[0].num_emitters);
                    int n = emission ? p->secondary_edges : p->secondary_edges_traced;
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
                            int m = std::min(kMaxEdgeDraws, count - j0);
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
            if (!p->interior) {
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
        d_generate_ray(*camera, sx, sy, d_cam_org, d_cam_dir, d_cam);
    }
};

// ---- Primary edges ----------------------------------------------------------------------

// The radiance on both sides of edge e where it crosses screen point pt (L[0] at pt - eps n, L[1]
// at pt + eps n, in the limit eps -> 0), t the screen-space parameter of pt on the projected edge.
// A side covered by one of the edge's own faces is shaded on that face at the edge point itself:
// offset rays would miss a face seen nearly edge-on, whose image is a sliver thinner than any
// offset, and bias the term in proportion to the offset. A side that no face of the edge covers
// (beyond a silhouette or a boundary) is traced with a ray offset by a small eps. Returns false
// when something hides the edge point from the camera (no jump there).
bool primary_edge_sides(const SceneView& s, const Edge& e, Vec3 v0, Vec3 v1, Real t, Vec2 pt, Vec2 n, int max_bounces,
                        const Sampler& sampler, Vec3 L[2]) {
    const Camera& cam = s.camera;
    // The edge point seen at pt: screen-space t to world-space t (perspective-correct).
    Real t_w = t;
    if (!cam.orthographic) {
        Real z0 = dot(v0 - cam.position, cam.forward), z1 = dot(v1 - cam.position, cam.forward);
        Real den = (1 - t) * z1 + t * z0;
        if (!(den > 0)) return false;
        t_w = t * z0 / den;
    }
    Vec3 m = v0 + (v1 - v0) * t_w;
    Ray centre = generate_ray(cam, pt.x, pt.y);
    Vec3 dir = cam.orthographic ? centre.dir : m - centre.org;
    Real t_m = cam.orthographic ? dot(m - centre.org, dir) : Real(1);
    if (!(t_m > 0)) return false;
    // Which of the edge's faces covers each side: the side of its third vertex, and when both
    // lie on one side (a silhouette) the one in front.
    int face_on[2] = {-1, -1};
    for (int f : {e.f0, e.f1}) {
        if (f < 0) continue;
        Vec2 q;
        if (!project(cam, third_vertex(s, e, f), &q)) continue;
        Real side_dot = (q.x - pt.x) * n.x + (q.y - pt.y) * n.y;
        if (side_dot == 0) continue;
        int side = side_dot > 0 ? 1 : 0;
        // Both faces on one side (a silhouette): keep the one in front.
        if (face_on[side] >= 0 && !face_in_front(s, e, f, face_on[side], -dir)) continue;
        face_on[side] = f;
    }
    // Something in front of the edge point hides the jump. A side that no face of the edge
    // covers is traced first: its ray passes just beside the edge point, so a first hit in front
    // of it (in depth) means the point is hidden, without a ray of its own. Only when both sides
    // are covered does the edge point take a visibility ray.
    const Real eps = Real(1e-3);
    Real depth_m = dot(m - cam.position, cam.forward);
    Ray far_ray[2];
    Hit far_hit[2];
    bool far_found[2] = {false, false};
    for (int side = 0; side < 2; ++side) {
        if (face_on[side] >= 0) continue;
        Real off = side == 0 ? -eps : eps;
        far_ray[side] = generate_ray(cam, pt.x + n.x * off, pt.y + n.y * off);
        far_found[side] = intersect(s.bvh, far_ray[side], &far_hit[side]);
        // (A hit on one of the edge's own faces, seen at a grazing angle, hides nothing.)
        if (far_found[side] && far_hit[side].tri != e.f0 && far_hit[side].tri != e.f1) {
            Vec3 q = far_ray[side].org + far_ray[side].dir * far_hit[side].t;
            if (dot(q - cam.position, cam.forward) < depth_m * (1 - Real(1e-4))) return false;
        }
    }
    if (face_on[0] >= 0 && face_on[1] >= 0 && !visible(s, centre.org, centre.org + dir * t_m)) return false;
    for (int side = 0; side < 2; ++side) {
        PrimaryInfo info;
        int f = face_on[side];
        if (f < 0) {
            L[side] = radiance_from(s, far_ray[side], far_found[side], far_hit[side], max_bounces, sampler, &info);
            continue;
        }
        // The hit on face f at the edge point: barycentrics 1 - t_w and t_w on the edge's ends.
        const int* idx = s.indices + 3 * size_t(f);
        Real b[3];
        for (int k = 0; k < 3; ++k) b[k] = idx[k] == e.v0 ? 1 - t_w : (idx[k] == e.v1 ? t_w : Real(0));
        Hit hit{t_m, f, b[1], b[2]};
        L[side] = radiance_from(s, Ray{centre.org, dir, 0, kInfinity}, true, hit, max_bounces, sampler, &info);
    }
    return true;
}

struct PrimaryEdgeTile : BackwardContext {
    Distribution1D choice;   // over edges, by projected length (0 for edges that do not matter)
    int64_t num_samples;
    int samples_per_tile;

    void operator()(int tile, GradAccumulator& acc) const {
        const SceneView& s = *this->s;
        const Camera& cam = s.camera;
        int64_t begin = int64_t(tile) * samples_per_tile;
        int64_t end = std::min<int64_t>(num_samples, begin + samples_per_tile);
        for (int64_t i = begin; i < end; ++i) {
            if (cancel_requested()) return;  // the call throws Cancelled
            // One number, stratified over all samples, picks the edge (by projected length) and the
            // point along it: the samples spread evenly over the total length of the edges, so
            // the large, cancelling terms of opposite edges cancel instead of adding noise.
            Real u = cmj_sample(uint32_t(i), uint32_t(num_samples), uint32_t(p->seed * 0x9e3779b9u) ^ 0x85ebca6bu).y;
            Real u_t;
            int ei = choice.sample(u, &u_t);
            Real p_edge = choice.pmf(ei);
            if (p_edge <= 0) continue;
            const Edge& e = edges[ei];
            Vec3 v0 = Vec3::load(s.vertices + 3 * size_t(e.v0)), v1 = Vec3::load(s.vertices + 3 * size_t(e.v1));
            Vec2 s0, s1;
            if (!project(cam, v0, &s0) || !project(cam, v1, &s1)) continue;
            Real t = u_t;
            Vec2 seg = s1 - s0;
            Real seg_len = std::sqrt(seg.x * seg.x + seg.y * seg.y);
            if (seg_len <= 0) continue;
            Vec2 pt = s0 + seg * t;
            if (!(pt.x >= 0 && pt.y >= 0 && pt.x < Real(cam.width) && pt.y < Real(cam.height))) continue;
            int px = int(pt.x), py = int(pt.y);
            acc.set_pixel(py * cam.width + px);
            if (px >= cam.width || py >= cam.height) continue;
            Vec3 d_pix = Vec3::load(d_image + 3 * (size_t(py) * cam.width + px));
            if (is_black(d_pix)) continue;
            Vec2 n(-seg.y / seg_len, seg.x / seg_len);
            // Radiance just on either side, with the same random numbers.
            Sampler path_sampler(p->seed, kStreamEdge, uint64_t(0xfffffffeull), uint64_t(i));
            Vec3 L[2];
            if (!primary_edge_sides(s, e, v0, v1, t, pt, n, p->max_bounces, path_sampler, L)) continue;
            // (L- - L+) times the normal velocity; pdf = p_edge / seg_len per unit length.
            Real weight = dot(d_pix, L[0] - L[1]) * seg_len / (p_edge * Real(num_samples));
            if (weight == 0) continue;
            Vec3 d_v0(0), d_v1(0);
            DCameraParams d_cam{};
            d_project(*camera, v0, n * (weight * (1 - t)), &d_cam, &d_v0);
            d_project(*camera, v1, n * (weight * t), &d_cam, &d_v1);
            add_vec3(acc, layout->vertices, e.v0, d_v0);
            add_vec3(acc, layout->vertices, e.v1, d_v1);
            add_camera_grad(acc, *layout, d_cam);
        }
    }
};

void build_cdf(const std::vector<Real>& weights, std::vector<Real>* cdf) {
    cdf->assign(weights.size() + 1, 0);
    double total = 0;
    for (Real w : weights) total += w;
    double acc = 0;
    for (size_t i = 0; i < weights.size(); ++i) {
        acc += weights[i];
        (*cdf)[i + 1] = total > 0 ? Real(acc / total) : Real(0);
    }
    if (total > 0) cdf->back() = 1;
}

}  // namespace

void check_backward_params(const Camera& cam, const BackwardParams& p) {
    check_count(p.spp, 1, kMaxSpp, "spp");
    check_count(p.max_bounces, 0, kMaxPathVertices - 1, "max_bounces (with gradients)");
    check_count(p.edge_spp, 0, kMaxEdgeSpp, "edge_spp");
    check_count(p.secondary_edges, 0, kMaxSecondarySpp, "secondary_spp");
    check_count(p.secondary_edges_traced, 0, kMaxSecondarySpp, "secondary_spp (traced)");
    check_count(p.secondary_stride, 1, kMaxSecondaryStride, "secondary_stride");
    check_count(p.num_threads, 0, kMaxThreads, "threads");
    check_count(cam.height, 1, kMaxResolution, "the image height");
    check_count(cam.width, 1, kMaxResolution, "the image width");
    int64_t pixels = checked_product(cam.height, cam.width, kMaxPixels, "the image's pixels (height x width)");
    if (p.primary_edges) {
        checked_product(p.edge_spp, pixels, kMaxEdgeSamples, "edge_spp x pixels (primary-edge samples)");
    }
    checked_product(p.spp, kBoundaryPixelBoost, kMaxIndex, "spp x boundary boost");
}

void render_backward(const SceneView& s, const CameraParams& camera, const std::vector<Edge>& edges,
                     const GradLayout& layout, const BackwardParams& p, const Real* d_image, const GradOutput& out) {
    const Camera& cam = s.camera;
    check_backward_params(cam, p);
    int num_edges = int(edges.size());
    // Secondary edges: chosen from each shading point through the edge tree.
    // The tree over every edge serves the vertices with a bounce left (or under an environment
    // map); with one bounce and no environment every vertex takes emission-only queries.
    EdgeTree tree, grad_tree;
    if (p.secondary_edges + p.secondary_edges_traced > 0) {
        bool general = p.secondary_edges_traced > 0 && !emission_only(s, p.max_bounces - 1);
        // The two builds are independent: one per thread.
        auto build = [&](int i) {
            if (i == 0) tree.build(s, edges, nullptr, general);
            else grad_tree.build(s, edges, p.shape_vertex_grad, general);
        };
        parallel_for(build, p.shape_vertex_grad ? 2 : 1, p.num_threads, 1);
    }

    BackwardContext context{&s, &camera, &layout, &p, d_image, edges.data()};
    if (p.interior || p.secondary_edges + p.secondary_edges_traced > 0) {
        InteriorTile k;
        static_cast<BackwardContext&>(k) = context;
        k.trees[0] = tree.view();
        k.trees[1] = tree.emission_view();
        const EdgeTree& g = p.shape_vertex_grad ? grad_tree : tree;
        k.grad_trees[0] = g.view();
        k.grad_trees[1] = g.emission_view();
        k.has_grad_trees = !g.empty();
        k.few_light_triangles = count_light_triangles(s) <= kMaxBruteForceLightTriangles;
        // The probe rays through every pixel corner, each shared by up to four pixels.
        std::vector<Probe> corners(size_t(cam.width + 1) * size_t(cam.height + 1));
        auto probe_row = [&](int cy) {
            Probe* row = corners.data() + size_t(cy) * size_t(cam.width + 1);
            for (int cx = 0; cx <= cam.width; ++cx) row[cx] = probe(s, Real(cx), Real(cy));
        };
        parallel_for(probe_row, cam.height + 1, p.num_threads);
        k.corners = corners.data();
        k.tiles_x = (cam.width + kTileSize - 1) / kTileSize;
        int64_t tiles = int64_t(k.tiles_x) * ((cam.height + kTileSize - 1) / kTileSize);
        accumulate_tiles(k, tiles, layout.total, p.num_threads, out);
    }

    if (p.primary_edges && num_edges > 0 && p.edge_spp > 0) {
        // Edges that matter from the camera, by projected length.
        std::vector<Real> screen_lengths(num_edges, 0);
        double all_length = 0, wanted_length = 0;
        bool creases = p.max_bounces >= 1;
        std::vector<EmitterBall> balls = emitter_balls(s);
        for (int i = 0; i < num_edges; ++i) {
            const Edge& e = edges[i];
            // Smooth shapes' edges where the terminator factor may differ on the two faces are
            // sampled too, at a quarter of the density (their jumps are small and rare).
            Real density = 1;
            if (!edge_matters(s, e, cam.position, cam.orthographic != 0, cam.forward, creases)) {
                if (!(creases && s.shapes[e.shape].has_normals && smooth_edge_may_jump(s, e, p.max_bounces >= 2, balls))) {
                    continue;
                }
                density = Real(0.25);
            }
            Vec2 s0, s1;
            if (!project(cam, Vec3::load(s.vertices + 3 * size_t(e.v0)), &s0) ||
                !project(cam, Vec3::load(s.vertices + 3 * size_t(e.v1)), &s1)) {
                continue;
            }
            Vec2 d = s1 - s0;
            Real len = density * std::sqrt(d.x * d.x + d.y * d.y);
            all_length += len;
            // Its term moves only its own vertices and the camera: edges whose motion no
            // gradient asks for are not sampled.
            if (!p.camera_grad && p.shape_vertex_grad && !p.shape_vertex_grad[e.shape]) continue;
            screen_lengths[i] = len;
            wanted_length += len;
        }
        std::vector<Real> cdf;
        build_cdf(screen_lengths, &cdf);
        if (cdf.back() > 0) {
            PrimaryEdgeTile k;
            static_cast<BackwardContext&>(k) = context;
            k.choice = Distribution1D{cdf.data(), num_edges};
            // edge_spp * H * W samples would go over all the edges; the edges sampled get the
            // same density (their share of them).
            double share = all_length > 0 ? wanted_length / all_length : 1.0;
            // (At most kMaxEdgeSamples: check_backward_params; the pattern indexes them in 32 bits.)
            int64_t all_samples = int64_t(p.edge_spp) * cam.width * cam.height;
            k.num_samples =
                std::min(all_samples, std::max<int64_t>(1, int64_t(std::ceil(double(all_samples) * share))));
            k.samples_per_tile = 1024;
            if (p.stats) p.stats->primary_edge_samples += k.num_samples;
            int64_t tiles = (k.num_samples + k.samples_per_tile - 1) / k.samples_per_tile;
            accumulate_tiles(k, tiles, layout.total, p.num_threads, out);
        }
    }
}

}  // namespace rt
