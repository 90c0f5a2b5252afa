// backward_secondary.h: the secondary-edge term: an edge seen from a path vertex, where the
// radiance arriving there jumps (shadows, indirect visibility; backward_terms.h).
#pragma once

#include <cmath>

#include "backward_path.h"

namespace rt {
namespace bwd {

// The nearest area-light triangle along `ray` (all of them tested): its emission toward the
// ray's origin in *Le and its distance in *t; false when the ray meets none.
RT_HOST_DEVICE inline bool closest_emitter(const SceneView& s, const Ray& ray, Vec3* Le, Real* t) {
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
RT_HOST_DEVICE RT_INLINE Vec3 third_vertex(const SceneView& s, const Edge& e, int f) {
    const int* idx = s.indices + 3 * size_t(f);
    int k = idx[0] != e.v0 && idx[0] != e.v1 ? 0 : (idx[1] != e.v0 && idx[1] != e.v1 ? 1 : 2);
    return Vec3::load(s.vertices + 3 * size_t(idx[k]));
}

// Of two faces f and g of edge e that lie on the same side of its image (a silhouette), whether f
// is the one in front: its plane separates the viewer (at offset `to_viewer` from the edge, or
// in that direction) from g's third vertex, for either winding.
RT_HOST_DEVICE RT_INLINE bool face_in_front(const SceneView& s, const Edge& e, int f, int g, Vec3 to_viewer) {
    Vec3 nf = face_normal_unnormalised(s, f);
    Vec3 v0 = Vec3::load(s.vertices + 3 * size_t(e.v0));
    Real viewer_side = dot(nf, to_viewer), other_side = dot(nf, third_vertex(s, e, g) - v0);
    return (viewer_side > 0) != (other_side > 0);
}

// Which of edge e's faces covers each side of its image as seen from x, side 1 being the side
// of +n_hat (n_hat normal to the plane of x and the edge): the side of each face's third
// vertex, and when both lie on one side (a silhouette) the face in front. -1: no face there.
// False when a face is seen edge-on from x.
RT_HOST_DEVICE inline bool faces_on_sides(const SceneView& s, const Edge& e, Vec3 x, Vec3 n_hat, int face_on[2]) {
    face_on[0] = face_on[1] = -1;
    Vec3 v0 = Vec3::load(s.vertices + 3 * size_t(e.v0));
    const int faces[2] = {e.f0, e.f1};
    for (int f : faces) {
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
RT_HOST_DEVICE inline bool emission_edge_sides(const SceneView& s, const Edge& e, Vec3 x, Vec3 origin, Vec3 m, Vec3 n_hat,
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

RT_HOST_DEVICE RT_INLINE EdgeSpan edge_span(Vec3 x, Vec3 v0, Vec3 v1, Real t0, Real t1) {
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
RT_HOST_DEVICE RT_INLINE Real subtended_angle(const EdgeSpan& sp) {
    return std::atan2(sp.hgt * (sp.s_b - sp.s_a), sp.hgt * sp.hgt + sp.s_a * sp.s_b);
}

// Draws t from u; returns its density per unit t (0: none).
RT_HOST_DEVICE RT_INLINE Real sample_edge_point(const EdgeSpan& sp, Real u, Real* t) {
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
RT_HOST_DEVICE RT_INLINE Real edge_point_pdf(const EdgeSpan& sp, Real t) {
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
template <typename Acc>
RT_HOST_DEVICE Vec3 secondary_edge_term(const SceneView& s, const Edge* edges, const EdgeQuery& query, int ei, Real t,
                                        Real inv_density, const GradLayout& layout, const PathVertex& pv, Vec3 d_L,
                                        int remaining_bounces, bool few_light_triangles, const Sampler& path_sampler,
                                        Acc& acc) {
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

}  // namespace bwd
}  // namespace rt
