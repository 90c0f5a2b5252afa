// material.h: textures and the BSDF, a Lambertian lobe plus a GGX microfacet specular lobe.
//
// All BSDF functions work in the local shading frame, normal = +z, with wo pointing toward the
// viewer and wi toward the light; values exclude the cosine factor.
#pragma once

#include <cmath>

#include "sampling.h"
#include "vector.h"

namespace rt {

// A texture (or a constant, which is a 1x1 texture) inside the scene's texel buffer.
struct Texture {
    int offset;    // first texel in the buffer
    int width, height;
    int channels;  // 1 or 3
};

// Bilinear lookup with wrap-around addressing. Row 0 is v = 0, column 0 is u = 0, and
// texel (i, j) is centred on ((j + 0.5) / width, (i + 0.5) / height).
RT_HOST_DEVICE RT_INLINE Vec3 texture_lookup(const Real* texels, const Texture& tex, Vec2 uv) {
    const Real* base = texels + tex.offset;
    int c = tex.channels;
    if (tex.width == 1 && tex.height == 1) {
        return c == 3 ? Vec3(base[0], base[1], base[2]) : Vec3(base[0]);
    }
    Real x = uv.x * Real(tex.width) - Real(0.5);
    Real y = uv.y * Real(tex.height) - Real(0.5);
    Real fx = std::floor(x), fy = std::floor(y);
    Real tx = x - fx, ty = y - fy;
    int x0 = int(fx) % tex.width, y0 = int(fy) % tex.height;
    if (x0 < 0) x0 += tex.width;
    if (y0 < 0) y0 += tex.height;
    int x1 = x0 + 1 == tex.width ? 0 : x0 + 1;
    int y1 = y0 + 1 == tex.height ? 0 : y0 + 1;
    auto at = [&](int yy, int xx) {
        const Real* t = base + (size_t(yy) * tex.width + xx) * c;
        return c == 3 ? Vec3(t[0], t[1], t[2]) : Vec3(t[0]);
    };
    return at(y0, x0) * ((1 - tx) * (1 - ty)) + at(y0, x1) * (tx * (1 - ty)) +
           at(y1, x0) * ((1 - tx) * ty) + at(y1, x1) * (tx * ty);
}

struct Material {
    Texture diffuse;    // 3 channels
    Texture specular;   // 3 channels: Fresnel reflectance at normal incidence
    Texture roughness;  // 1 channel: GGX alpha
    int two_sided;
};

// The BSDF's parameters at one shading point.
struct BSDFParams {
    Vec3 kd, ks;
    Real alpha;
};

constexpr Real kMinAlpha = Real(1e-3);

RT_HOST_DEVICE RT_INLINE BSDFParams eval_material(const Real* texels, const Material& m, Vec2 uv) {
    BSDFParams p;
    p.kd = texture_lookup(texels, m.diffuse, uv);
    p.ks = texture_lookup(texels, m.specular, uv);
    p.alpha = std::fmax(texture_lookup(texels, m.roughness, uv).x, kMinAlpha);
    return p;
}

// GGX (Trowbridge-Reitz) normal distribution D(h).
RT_HOST_DEVICE RT_INLINE Real ggx_d(Real cos_h, Real alpha) {
    if (cos_h <= 0) return 0;
    Real a2 = alpha * alpha;
    Real t = cos_h * cos_h * (a2 - 1) + 1;
    return a2 / (kPi * t * t);
}

// Smith's masking term G1 for GGX.
RT_HOST_DEVICE RT_INLINE Real smith_g1(Real cos_w, Real alpha) {
    if (cos_w <= 0) return 0;
    Real c2 = cos_w * cos_w;
    Real tan2 = std::fmax(Real(0), 1 - c2) / c2;
    return 2 / (1 + std::sqrt(1 + alpha * alpha * tan2));
}

RT_HOST_DEVICE RT_INLINE Vec3 schlick_fresnel(Vec3 f0, Real cos_d) {
    Real m = std::fmin(std::fmax(1 - cos_d, Real(0)), Real(1));
    Real m5 = (m * m) * (m * m) * m;
    return f0 + (Vec3(1) - f0) * m5;
}

// The probability of choosing the specular lobe when sampling.
RT_HOST_DEVICE RT_INLINE Real specular_lobe_probability(const BSDFParams& p) {
    Real wd = luminance(p.kd), ws = luminance(p.ks);
    if (wd + ws <= 0) return 0;
    return ws / (wd + ws);
}

RT_HOST_DEVICE RT_INLINE Vec3 bsdf_eval(const BSDFParams& p, Vec3 wo, Vec3 wi) {
    if (wo.z <= 0 || wi.z <= 0) return Vec3(0);
    Vec3 f = p.kd * kInvPi;
    if (!is_black(p.ks)) {
        Vec3 h = normalize(wo + wi);
        Real d = ggx_d(h.z, p.alpha);
        Real g = smith_g1(wo.z, p.alpha) * smith_g1(wi.z, p.alpha);
        Vec3 fr = schlick_fresnel(p.ks, dot(wi, h));
        f += fr * (d * g / (4 * wo.z * wi.z));
    }
    return f;
}

RT_HOST_DEVICE RT_INLINE Real bsdf_pdf(const BSDFParams& p, Vec3 wo, Vec3 wi) {
    if (wo.z <= 0 || wi.z <= 0) return 0;
    Real ps = specular_lobe_probability(p);
    Real pdf = (1 - ps) * cosine_hemisphere_pdf(wi.z);
    if (ps > 0) {
        Vec3 h = normalize(wo + wi);
        Real wo_h = dot(wo, h);
        if (wo_h > 0) pdf += ps * ggx_d(h.z, p.alpha) * h.z / (4 * wo_h);
    }
    return pdf;
}

// Samples wi from u in [0,1)^3 (u.x chooses the lobe). Returns false for a failed sample.
RT_HOST_DEVICE RT_INLINE bool bsdf_sample(const BSDFParams& p, Vec3 wo, Vec3 u, Vec3* wi, Real* pdf) {
    if (wo.z <= 0) return false;
    Real ps = specular_lobe_probability(p);
    if (u.x < ps) {
        // A microfacet normal from D(h) cos(theta_h), reflected about.
        Real a2 = p.alpha * p.alpha;
        Real tan2 = a2 * u.y / std::fmax(1 - u.y, Real(1e-12));
        Real cos_h = 1 / std::sqrt(1 + tan2);
        Real sin_h = std::sqrt(std::fmax(Real(0), 1 - cos_h * cos_h));
        Real phi = 2 * kPi * u.z;
        Vec3 h(sin_h * std::cos(phi), sin_h * std::sin(phi), cos_h);
        Real wo_h = dot(wo, h);
        if (wo_h <= 0) return false;
        *wi = h * (2 * wo_h) - wo;
    } else {
        *wi = sample_cosine_hemisphere(Vec2(u.y, u.z));
    }
    if (wi->z <= 0) return false;
    *pdf = bsdf_pdf(p, wo, *wi);
    return *pdf > 0;
}

}  // namespace rt
