// light.h: area lights and the environment map: emission, sampling and pdfs.
//
// Next-event estimation picks the environment with probability env_choice_prob, else an area
// light in proportion to its power, a triangle of it in proportion to area and a point
// uniformly on that triangle. pdfs are returned per unit solid angle at the shading point.
#pragma once

#include <cmath>

#include "scene.h"

namespace rt {

// ---- Environment map -------------------------------------------------------------------

// Lat-long mapping, y up: theta = acos(d.y), phi = atan2(d.x, -d.z); u = phi / 2pi + 1/2, v = theta / pi.
RT_HOST_DEVICE RT_INLINE Vec2 direction_to_envmap_uv(Vec3 d) {
    Real cos_theta = min_r(max_r(d.y, Real(-1)), Real(1));
    Real theta = std::acos(cos_theta);
    Real phi = std::atan2(d.x, -d.z);
    return Vec2(phi * kInvTwoPi + Real(0.5), theta * kInvPi);
}

// The adjoint of direction_to_envmap_uv for a unit d, w.r.t. d's components as they enter
// the formula: d theta / d d.y = -1 / sqrt(1 - d.y^2), d phi / d (x, z) = (-z, x) / (x^2 + z^2).
// Zero at the poles, where the mapping is singular.
RT_HOST_DEVICE RT_INLINE Vec3 d_direction_to_envmap_uv(Vec3 d, Vec2 d_uv) {
    Vec3 d_d(0);
    Real d_phi = d_uv.x * kInvTwoPi, d_theta = d_uv.y * kInvPi;
    if (d.y > -1 && d.y < 1) d_d.y = -d_theta / std::sqrt(1 - d.y * d.y);
    Real r2 = d.x * d.x + d.z * d.z;
    if (r2 > 0) {
        // phi = atan2(a, b), a = x, b = -z: d phi = (b da - a db) / (a^2 + b^2).
        d_d.x = d_phi * (-d.z) / r2;
        d_d.z = d_phi * d.x / r2;
    }
    return d_d;
}

RT_HOST_DEVICE RT_INLINE Vec3 envmap_uv_to_direction(Vec2 uv, Real* sin_theta) {
    Real phi = (uv.x - Real(0.5)) * 2 * kPi;
    Real theta = uv.y * kPi;
    Real st = std::sin(theta);
    *sin_theta = st;
    return Vec3(st * std::sin(phi), std::cos(theta), -st * std::cos(phi));
}

// Bilinear lookup: wrap in u, clamp in v.
RT_HOST_DEVICE RT_INLINE Vec3 envmap_eval(const EnvmapData& env, Vec3 d) {
    Vec2 uv = direction_to_envmap_uv(normalize(d));
    BilinearTaps b = bilinear_taps(uv, env.width, env.height, true);
    Real tx = b.tx, ty = b.ty;
    auto at = [&](int yy, int xx) { return Vec3::load(env.values + (size_t(yy) * env.width + xx) * 3); };
    return at(b.y0, b.x0) * ((1 - tx) * (1 - ty)) + at(b.y0, b.x1) * (tx * (1 - ty)) +
           at(b.y1, b.x0) * ((1 - tx) * ty) + at(b.y1, b.x1) * (tx * ty);
}

// The adjoint of envmap_eval: the texels' gradients go through d_values.add(index, value),
// index into env.values ([height, width, 3] flattened); the direction's (d need not be unit)
// is added to *d_dir. The slope is the one inside the texel cell the direction falls in; it
// is zero at the poles.
template <typename Sink>
RT_HOST_DEVICE RT_INLINE void d_envmap_eval(const EnvmapData& env, Vec3 dir, Vec3 d_value, Sink& d_values,
                                            Vec3* d_dir) {
    Vec3 dn = normalize(dir);
    Vec2 uv = direction_to_envmap_uv(dn);
    BilinearTaps b = bilinear_taps(uv, env.width, env.height, true);
    auto at = [&](int yy, int xx) { return Vec3::load(env.values + (size_t(yy) * env.width + xx) * 3); };
    auto add = [&](int yy, int xx, Real w) {
        int index = (yy * env.width + xx) * 3;
        for (int k = 0; k < 3; ++k) d_values.add(index + k, d_value[k] * w);
    };
    add(b.y0, b.x0, (1 - b.tx) * (1 - b.ty));
    add(b.y0, b.x1, b.tx * (1 - b.ty));
    add(b.y1, b.x0, (1 - b.tx) * b.ty);
    add(b.y1, b.x1, b.tx * b.ty);
    // uv -> (tx, ty) -> blended value; dir -> normalize -> uv.
    Vec2 d_t = d_bilinear_weights(b, at(b.y0, b.x0), at(b.y0, b.x1), at(b.y1, b.x0), at(b.y1, b.x1), d_value);
    Vec2 d_uv(d_t.x * Real(env.width), d_t.y * Real(env.height));
    *d_dir += d_normalize(dir, d_direction_to_envmap_uv(dn, d_uv));
}

// Piecewise-constant importance sampling over texels (weights: luminance * sin(theta)).
RT_HOST_DEVICE RT_INLINE Vec3 envmap_sample(const EnvmapData& env, Vec2 u, Real* pdf) {
    Distribution1D rows{env.marginal_cdf, env.height};
    Real ur, uc;
    int i = rows.sample(u.x, &ur);
    Distribution1D cols{env.conditional_cdf + size_t(i) * (env.width + 1), env.width};
    int j = cols.sample(u.y, &uc);
    Vec2 uv((Real(j) + uc) / Real(env.width), (Real(i) + ur) / Real(env.height));
    Real sin_theta;
    Vec3 d = envmap_uv_to_direction(uv, &sin_theta);
    Real p = env.texel_pmf[size_t(i) * env.width + j];
    *pdf = sin_theta > 0 ? p * Real(env.width) * Real(env.height) / (2 * kPi * kPi * sin_theta) : Real(0);
    return d;
}

RT_HOST_DEVICE RT_INLINE Real envmap_pdf(const EnvmapData& env, Vec3 d) {
    Vec3 dn = normalize(d);
    Vec2 uv = direction_to_envmap_uv(dn);
    int j = int(uv.x * Real(env.width)), i = int(uv.y * Real(env.height));
    j = j < 0 ? 0 : (j >= env.width ? env.width - 1 : j);
    i = i < 0 ? 0 : (i >= env.height ? env.height - 1 : i);
    Real sin_theta = std::sqrt(max_r(Real(0), 1 - dn.y * dn.y));
    if (sin_theta <= 0) return 0;
    Real p = env.texel_pmf[size_t(i) * env.width + j];
    return p * Real(env.width) * Real(env.height) / (2 * kPi * kPi * sin_theta);
}

// ---- Area lights -----------------------------------------------------------------------

// Radiance leaving an emitting triangle toward `dir_to_viewer` (unit), or 0.
RT_HOST_DEVICE RT_INLINE Vec3 area_light_emission(const AreaLightData& light, Vec3 ng, Vec3 dir_to_viewer) {
    Real c = dot(ng, dir_to_viewer);
    if (c > 0 || (light.two_sided && c < 0)) return light.intensity;
    return Vec3(0);
}

struct LightSample {
    Vec3 point;     // on the light
    Vec3 normal;    // geometric normal of the light there
    Vec3 dir;       // unit, from the shading point toward the light point
    Real dist;
    Vec3 Le;        // radiance arriving along -dir (0 if the light faces away)
    Real pdf;       // solid angle, at the shading point; 0 for a failed sample
    int tri;
};

// Samples a point on the area lights as seen from p, using u in [0,1)^3.
RT_HOST_DEVICE RT_INLINE LightSample sample_area_lights(const SceneView& s, Vec3 p, Vec3 u) {
    LightSample ls;
    ls.pdf = 0;
    ls.tri = -1;
    if (s.num_lights == 0) return ls;
    Real u_tri;
    int l = s.light_choice.sample(u.x, &u_tri);
    const AreaLightData& light = s.lights[l];
    if (light.area <= 0) return ls;
    Distribution1D tris{s.light_tri_cdf + light.cdf_offset, light.num_triangles};
    int k = tris.sample(u_tri);
    int tri = s.light_tri[light.tri_offset + k];
    const int* idx = s.indices + 3 * size_t(tri);
    Vec3 v0 = Vec3::load(s.vertices + 3 * size_t(idx[0]));
    Vec3 v1 = Vec3::load(s.vertices + 3 * size_t(idx[1]));
    Vec3 v2 = Vec3::load(s.vertices + 3 * size_t(idx[2]));
    Vec2 b = sample_uniform_triangle(Vec2(u.y, u.z));
    ls.point = v0 * (1 - b.x - b.y) + v1 * b.x + v2 * b.y;
    Vec3 n = cross(v1 - v0, v2 - v0);
    Real len = length(n);
    if (len <= 0) return ls;
    ls.normal = n / len;
    Vec3 to_light = ls.point - p;
    Real d2 = length_squared(to_light);
    if (d2 <= 0) return ls;
    ls.dist = std::sqrt(d2);
    ls.dir = to_light / ls.dist;
    Real cos_l = std::fabs(dot(ls.normal, ls.dir));
    if (cos_l <= 0) return ls;
    ls.Le = area_light_emission(light, ls.normal, -ls.dir);
    ls.pdf = s.light_choice.pmf(l) / light.area * d2 / cos_l;
    ls.tri = tri;
    return ls;
}

// The solid-angle pdf with which sample_area_lights picks point `q` on emitting triangle `tri`
// as seen from p (0 if the triangle does not belong to a light).
RT_HOST_DEVICE RT_INLINE Real area_lights_pdf(const SceneView& s, Vec3 p, Vec3 q, Vec3 ng, int tri) {
    int l = s.shapes[s.tri_shape[tri]].light_id;
    if (l < 0) return 0;
    const AreaLightData& light = s.lights[l];
    if (light.area <= 0) return 0;
    Vec3 d = q - p;
    Real d2 = length_squared(d);
    Real cos_l = std::fabs(dot(ng, d)) / std::sqrt(d2);
    if (cos_l <= 0) return 0;
    return s.light_choice.pmf(l) / light.area * d2 / cos_l;
}

}  // namespace rt
