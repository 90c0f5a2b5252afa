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

// The four texels a bilinear lookup at uv blends, (x0|x1, y0|y1), and the blend weights'
// parameters (tx, ty) in [0, 1): weights (1-tx)(1-ty), tx(1-ty), (1-tx)ty, tx ty. Texel (i, j)
// is centred on ((j + 0.5) / width, (i + 0.5) / height); u wraps around; v wraps around, or
// with clamp_v is clamped to the first and last rows. tx and ty are the only parts that
// depend smoothly on uv: d tx / du = width, d ty / dv = height.
struct BilinearTaps {
    int x0, x1, y0, y1;
    Real tx, ty;
};

RT_HOST_DEVICE RT_INLINE BilinearTaps bilinear_taps(Vec2 uv, int width, int height, bool clamp_v) {
    BilinearTaps b;
    Real x = uv.x * Real(width) - Real(0.5);
    Real y = uv.y * Real(height) - Real(0.5);
    Real fx = std::floor(x), fy = std::floor(y);
    b.tx = x - fx;
    b.ty = y - fy;
    b.x0 = int(fx) % width;
    if (b.x0 < 0) b.x0 += width;
    b.x1 = b.x0 + 1 == width ? 0 : b.x0 + 1;
    if (clamp_v) {
        int y0 = int(fy), y1 = y0 + 1;
        b.y0 = y0 < 0 ? 0 : (y0 >= height ? height - 1 : y0);
        b.y1 = y1 < 0 ? 0 : (y1 >= height ? height - 1 : y1);
    } else {
        b.y0 = int(fy) % height;
        if (b.y0 < 0) b.y0 += height;
        b.y1 = b.y0 + 1 == height ? 0 : b.y0 + 1;
    }
    return b;
}

// Bilinear lookup with wrap-around addressing. Row 0 is v = 0, column 0 is u = 0, and
// texel (i, j) is centred on ((j + 0.5) / width, (i + 0.5) / height).
RT_HOST_DEVICE RT_INLINE Vec3 texture_lookup(const Real* texels, const Texture& tex, Vec2 uv) {
    const Real* base = texels + tex.offset;
    int c = tex.channels;
    if (tex.width == 1 && tex.height == 1) {
        return c == 3 ? Vec3(base[0], base[1], base[2]) : Vec3(base[0]);
    }
    BilinearTaps b = bilinear_taps(uv, tex.width, tex.height, false);
    Real tx = b.tx, ty = b.ty;
    auto at = [&](int yy, int xx) {
        const Real* t = base + (size_t(yy) * tex.width + xx) * c;
        return c == 3 ? Vec3(t[0], t[1], t[2]) : Vec3(t[0]);
    };
    return at(b.y0, b.x0) * ((1 - tx) * (1 - ty)) + at(b.y0, b.x1) * (tx * (1 - ty)) +
           at(b.y1, b.x0) * ((1 - tx) * ty) + at(b.y1, b.x1) * (tx * ty);
}

// The adjoint of a bilinear blend of t00 = (y0, x0), t01 = (y0, x1), t10 = (y1, x0),
// t11 = (y1, x1) w.r.t. (tx, ty), given the gradient g of the blended value.
RT_HOST_DEVICE RT_INLINE Vec2 d_bilinear_weights(const BilinearTaps& b, Vec3 t00, Vec3 t01, Vec3 t10, Vec3 t11,
                                                 Vec3 g) {
    Vec3 d_tx = (t01 - t00) * (1 - b.ty) + (t11 - t10) * b.ty;
    Vec3 d_ty = (t10 - t00) * (1 - b.tx) + (t11 - t01) * b.tx;
    return Vec2(dot(g, d_tx), dot(g, d_ty));
}

// The adjoint of texture_lookup. Adds d_value times each texel's weight through
// d_texels.add(index, value), index into the scene's texel buffer (tex.offset + ...), and the
// bilinear slope to *d_uv (piecewise: the derivative inside the texel cell uv falls in; zero
// for 1x1 textures). For 1-channel textures only d_value.x is used (the lookup's .x).
template <typename Sink>
RT_HOST_DEVICE RT_INLINE void d_texture_lookup(const Real* texels, const Texture& tex, Vec2 uv, Vec3 d_value,
                                               Sink& d_texels, Vec2* d_uv) {
    int c = tex.channels;
    if (tex.width == 1 && tex.height == 1) {
        for (int k = 0; k < c; ++k) d_texels.add(tex.offset + k, d_value[k]);
        return;
    }
    BilinearTaps b = bilinear_taps(uv, tex.width, tex.height, false);
    const Real* base = texels + tex.offset;
    auto at = [&](int yy, int xx) {
        const Real* t = base + (size_t(yy) * tex.width + xx) * c;
        return c == 3 ? Vec3(t[0], t[1], t[2]) : Vec3(t[0], 0, 0);  // 1 channel: only .x counts
    };
    auto add = [&](int yy, int xx, Real w) {
        int index = tex.offset + (yy * tex.width + xx) * c;
        for (int k = 0; k < c; ++k) d_texels.add(index + k, d_value[k] * w);
    };
    // value = sum of weight x texel: the texels' gradients.
    add(b.y0, b.x0, (1 - b.tx) * (1 - b.ty));
    add(b.y0, b.x1, b.tx * (1 - b.ty));
    add(b.y1, b.x0, (1 - b.tx) * b.ty);
    add(b.y1, b.x1, b.tx * b.ty);
    // The weights' slopes in (tx, ty), and tx = u width - 0.5 - floor(.), ty likewise.
    Vec2 d_t = d_bilinear_weights(b, at(b.y0, b.x0), at(b.y0, b.x1), at(b.y1, b.x0), at(b.y1, b.x1), d_value);
    d_uv->x += d_t.x * Real(tex.width);
    d_uv->y += d_t.y * Real(tex.height);
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

// Gradients w.r.t. BSDFParams (zero-initialised).
struct DBSDFParams {
    Vec3 kd, ks;
    Real alpha = 0;
};

// The GGX alpha the BSDF uses is the roughness clamped to [kMinAlpha, kMaxAlpha]: below, the
// lobe is a near-mirror whose evaluation loses precision; above, it is negligibly small (and
// alpha^2 would overflow on the way, giving NaN). Outside the range alpha is constant, so the
// roughness gets no gradient there (docs/limits.md; Python checks roughness > 0 and finite).
constexpr Real kMinAlpha = Real(1e-3);
constexpr Real kMaxAlpha = Real(100);

RT_HOST_DEVICE RT_INLINE Real ggx_alpha(Real roughness) { return min_r(max_r(roughness, kMinAlpha), kMaxAlpha); }
RT_HOST_DEVICE RT_INLINE bool alpha_is_clamped(Real roughness) { return !(roughness > kMinAlpha && roughness < kMaxAlpha); }

RT_HOST_DEVICE RT_INLINE BSDFParams eval_material(const Real* texels, const Material& m, Vec2 uv) {
    BSDFParams p;
    p.kd = texture_lookup(texels, m.diffuse, uv);
    p.ks = texture_lookup(texels, m.specular, uv);
    p.alpha = ggx_alpha(texture_lookup(texels, m.roughness, uv).x);
    return p;
}

// The adjoint of eval_material: the gradients w.r.t. the BSDF's parameters go to the texels
// (through d_texels.add, indices into the scene's texel buffer) and to *d_uv. Where the
// roughness is clamped (ggx_alpha), alpha passes no gradient back.
template <typename Sink>
RT_HOST_DEVICE RT_INLINE void d_eval_material(const Real* texels, const Material& m, Vec2 uv, const DBSDFParams& d_p,
                                              Sink& d_texels, Vec2* d_uv) {
    d_texture_lookup(texels, m.diffuse, uv, d_p.kd, d_texels, d_uv);
    d_texture_lookup(texels, m.specular, uv, d_p.ks, d_texels, d_uv);
    if (!alpha_is_clamped(texture_lookup(texels, m.roughness, uv).x)) {
        d_texture_lookup(texels, m.roughness, uv, Vec3(d_p.alpha, 0, 0), d_texels, d_uv);
    }
}

// GGX (Trowbridge-Reitz) normal distribution D(h).
RT_HOST_DEVICE RT_INLINE Real ggx_d(Real cos_h, Real alpha) {
    if (cos_h <= 0) return 0;
    Real a2 = alpha * alpha;
    Real t = cos_h * cos_h * (a2 - 1) + 1;
    return a2 / (kPi * t * t);
}

// d D / d cos_h = -4 a2 (a2 - 1) cos_h / (pi t^3); d D / d a2 = (t - 2 a2 cos_h^2) / (pi t^3).
RT_HOST_DEVICE RT_INLINE void d_ggx_d(Real cos_h, Real alpha, Real d_out, Real* d_cos_h, Real* d_alpha) {
    if (cos_h <= 0) return;
    Real a2 = alpha * alpha;
    Real c2 = cos_h * cos_h;
    Real t = c2 * (a2 - 1) + 1;
    Real k = d_out / (kPi * t * t * t);
    *d_cos_h += k * (-4 * a2 * (a2 - 1) * cos_h);
    *d_alpha += k * (t - 2 * a2 * c2) * (2 * alpha);
}

// Smith's masking term G1 for GGX.
RT_HOST_DEVICE RT_INLINE Real smith_g1(Real cos_w, Real alpha) {
    if (cos_w <= 0) return 0;
    Real c2 = cos_w * cos_w;
    Real tan2 = max_r(Real(0), 1 - c2) / c2;
    return 2 / (1 + std::sqrt(1 + alpha * alpha * tan2));
}

// G1 = 2 / (1 + s), s = sqrt(1 + alpha^2 tan2), tan2 = 1 / cos^2 - 1 (clamped at 0).
RT_HOST_DEVICE RT_INLINE void d_smith_g1(Real cos_w, Real alpha, Real d_out, Real* d_cos_w, Real* d_alpha) {
    if (cos_w <= 0) return;
    Real c2 = cos_w * cos_w;
    Real tan2 = max_r(Real(0), 1 - c2) / c2;
    Real s = std::sqrt(1 + alpha * alpha * tan2);
    Real d_s = d_out * (-2 / ((1 + s) * (1 + s)));
    *d_alpha += d_s * alpha * tan2 / s;
    if (1 - c2 > 0) *d_cos_w += d_s * (alpha * alpha / (2 * s)) * (-2 / (c2 * cos_w));
}

// Schlick's Fresnel with the grazing reflectance F90 = min(1, 50 luminance(f0)) (as in
// several production renderers): 1 for any real specular colour (f0 >= 0.02), but going to 0
// with f0, so the lobe fades out continuously as ks -> 0 instead of keeping a grazing sheen
// that jumps off at ks = 0 exactly (where gradients w.r.t. ks would be lost).
RT_HOST_DEVICE RT_INLINE Real fresnel_f90(Vec3 f0) { return min_r(Real(1), 50 * luminance(f0)); }

RT_HOST_DEVICE RT_INLINE Vec3 schlick_fresnel(Vec3 f0, Real cos_d) {
    Real m = min_r(max_r(1 - cos_d, Real(0)), Real(1));
    Real m5 = (m * m) * (m * m) * m;
    return f0 + (Vec3(fresnel_f90(f0)) - f0) * m5;
}

// F = f0 + (F90(f0) - f0) m^5, m = clamp(1 - cos_d, 0, 1).
RT_HOST_DEVICE RT_INLINE void d_schlick_fresnel(Vec3 f0, Real cos_d, Vec3 d_out, Vec3* d_f0, Real* d_cos_d) {
    Real m = min_r(max_r(1 - cos_d, Real(0)), Real(1));
    Real m4 = (m * m) * (m * m);
    Real f90 = fresnel_f90(f0);
    *d_f0 += d_out * (1 - m4 * m);
    if (50 * luminance(f0) < 1) {
        Real d_f90 = (d_out.x + d_out.y + d_out.z) * m4 * m;
        *d_f0 += Vec3(Real(0.212671), Real(0.715160), Real(0.072169)) * (50 * d_f90);
    }
    if (1 - cos_d > 0 && 1 - cos_d < 1) *d_cos_d -= dot(d_out, Vec3(f90) - f0) * (5 * m4);
}

// The probability of choosing the specular lobe when sampling.
RT_HOST_DEVICE RT_INLINE Real specular_lobe_probability(const BSDFParams& p) {
    Real wd = luminance(p.kd), ws = luminance(p.ks);
    if (wd + ws <= 0) return 0;
    return ws / (wd + ws);
}

// The BSDF from the four cosines it depends on: cos_o = <n, wo>, cos_i = <n, wi>,
// cos_h = <n, h> and cos_d = <wi, h> for the half vector h = normalize(wo + wi).
//
// The diffuse lobe needs only wi above the shading normal, not wo: with interpolated normals,
// wo can fall below the shading normal while the surface still faces the viewer (the path
// tracer checks the geometric normal), and cutting the lobe there would make the image jump
// along a curve no edge sampling sees. The specular lobe needs both.
RT_HOST_DEVICE RT_INLINE Vec3 bsdf_eval_cosines(const BSDFParams& p, Real cos_o, Real cos_i, Real cos_h,
                                                Real cos_d) {
    if (cos_i <= 0) return Vec3(0);
    Vec3 f = p.kd * kInvPi;
    if (cos_o > 0 && !is_black(p.ks)) {
        Real d = ggx_d(cos_h, p.alpha);
        Real g = smith_g1(cos_o, p.alpha) * smith_g1(cos_i, p.alpha);
        Vec3 fr = schlick_fresnel(p.ks, cos_d);
        f += fr * (d * g / (4 * cos_o * cos_i));
    }
    return f;
}

// wo, wi in the local shading frame.
RT_HOST_DEVICE RT_INLINE Vec3 bsdf_eval(const BSDFParams& p, Vec3 wo, Vec3 wi) {
    if (wi.z <= 0) return Vec3(0);
    Vec3 h = normalize(wo + wi);
    return bsdf_eval_cosines(p, wo.z, wi.z, h.z, dot(wi, h));
}

// The same BSDF for world-space directions around the unit shading normal n, written with dot
// products only (it is isotropic): equals bsdf_eval(p, Frame(n).to_local(wo), Frame(n).to_local(wi)).
// A shadow-terminator factor for interpolated normals (in the spirit of Chiang, Li and Burley,
// "Taming the Shadow Terminator", 2019, but confined to a band): with w = |ns x ng| (the sine of
// the angle between the shading and the geometric normal) and t = (ng . wi) / w, S = t^2 (3 - 2t)
// for t < 1, else 1. It fades the shading to 0 as wi reaches the geometric horizon, where the
// integrand used to be cut off while the shading cosine was still positive: a moving
// discontinuity near the terminator that no edge sample covers. With it the integrand is
// continuous there; in exchange the shading of a smooth shape differs slightly on the two faces
// of an edge where light arrives within the band, and the primary pass samples those edges
// (edges.h, smooth_edge_may_jump). S = 1 wherever ns = ng (flat shading). ng and ns are unit
// normals on the side of the path; 0 below the geometric horizon.
RT_HOST_DEVICE RT_INLINE Real terminator(Vec3 ng, Vec3 ns, Vec3 wi) {
    Real cg = dot(ng, wi);
    if (cg <= 0) return 0;
    Real w = length(cross(ns, ng));  // better conditioned than sqrt(1 - (ns . ng)^2)
    if (!(cg < w) || w <= Real(1e-6)) return 1;
    Real t = cg / w;
    return t * t * (3 - 2 * t);
}

RT_HOST_DEVICE RT_INLINE void d_terminator(Vec3 ng, Vec3 ns, Vec3 wi, Real d_out, Vec3* d_ng, Vec3* d_ns, Vec3* d_wi) {
    Real cg = dot(ng, wi);
    if (cg <= 0) return;
    Vec3 c = cross(ns, ng);
    Real w = length(c);
    if (!(cg < w) || w <= Real(1e-6)) return;
    Real t = cg / w;
    Real d_t = d_out * 6 * t * (1 - t);
    Real d_cg = d_t / w;
    Real d_w = -d_t * t / w;
    Vec3 d_c = c * (d_w / w);
    // c = ns x ng: d_ns = ng x d_c, d_ng = d_c x ns.
    *d_ns += cross(ng, d_c);
    *d_ng += cross(d_c, ns) + wi * d_cg;
    *d_wi += ng * d_cg;
}

RT_HOST_DEVICE RT_INLINE Vec3 bsdf_eval_world(const BSDFParams& p, Vec3 n, Vec3 wo, Vec3 wi) {
    Real cos_o = dot(n, wo), cos_i = dot(n, wi);
    if (cos_i <= 0) return Vec3(0);
    Vec3 h = normalize(wo + wi);
    return bsdf_eval_cosines(p, cos_o, cos_i, dot(n, h), dot(wi, h));
}

// The adjoint of bsdf_eval_cosines: f = kd / pi + F(ks, cos_d) D(cos_h) G1(cos_o) G1(cos_i) / (4 cos_o cos_i).
RT_HOST_DEVICE RT_INLINE void d_bsdf_eval_cosines(const BSDFParams& p, Real cos_o, Real cos_i, Real cos_h,
                                                  Real cos_d, Vec3 d_f, DBSDFParams* d_p, Real* d_cos_o,
                                                  Real* d_cos_i, Real* d_cos_h, Real* d_cos_d) {
    if (cos_i <= 0) return;
    d_p->kd += d_f * kInvPi;
    if (cos_o <= 0) return;  // (at ks = 0 the lobe is 0 but its ks-derivative is not)
    Real d = ggx_d(cos_h, p.alpha);
    Real g_o = smith_g1(cos_o, p.alpha), g_i = smith_g1(cos_i, p.alpha);
    Vec3 fr = schlick_fresnel(p.ks, cos_d);
    Real inv = 1 / (4 * cos_o * cos_i);
    Real scale = d * g_o * g_i * inv;
    // f += fr * scale
    d_schlick_fresnel(p.ks, cos_d, d_f * scale, &d_p->ks, d_cos_d);
    Real d_scale = dot(d_f, fr);
    // scale = d g_o g_i / (4 cos_o cos_i)
    d_ggx_d(cos_h, p.alpha, d_scale * g_o * g_i * inv, d_cos_h, &d_p->alpha);
    d_smith_g1(cos_o, p.alpha, d_scale * d * g_i * inv, d_cos_o, &d_p->alpha);
    d_smith_g1(cos_i, p.alpha, d_scale * d * g_o * inv, d_cos_i, &d_p->alpha);
    *d_cos_o -= d_scale * scale / cos_o;
    *d_cos_i -= d_scale * scale / cos_i;
}

// The adjoint of bsdf_eval_world, with n, wo and wi taken as given (the derivatives are those
// of the formula above, w.r.t. the vectors as they enter it: no unit-length constraint).
// Adds into the outputs. At ks = 0 exactly the specular lobe is skipped and ks gets no
// gradient (the forward function jumps there).
RT_HOST_DEVICE RT_INLINE void d_bsdf_eval_world(const BSDFParams& p, Vec3 n, Vec3 wo, Vec3 wi, Vec3 d_f,
                                                DBSDFParams* d_p, Vec3* d_n, Vec3* d_wo, Vec3* d_wi) {
    Real cos_o = dot(n, wo), cos_i = dot(n, wi);
    if (cos_i <= 0) return;
    Vec3 sum = wo + wi;
    Vec3 h = normalize(sum);
    Real cos_h = dot(n, h), cos_d = dot(wi, h);
    Real d_cos_o = 0, d_cos_i = 0, d_cos_h = 0, d_cos_d = 0;
    d_bsdf_eval_cosines(p, cos_o, cos_i, cos_h, cos_d, d_f, d_p, &d_cos_o, &d_cos_i, &d_cos_h, &d_cos_d);
    // The dot products, then h = normalize(wo + wi).
    *d_n += wo * d_cos_o + wi * d_cos_i + h * d_cos_h;
    Vec3 d_h = n * d_cos_h + wi * d_cos_d;
    Vec3 d_sum = d_normalize(sum, d_h);
    *d_wo += n * d_cos_o + d_sum;
    *d_wi += n * d_cos_i + h * d_cos_d + d_sum;
}

// The sampling pdf (solid angle, of wi) from cos_o = <n, wo>, cos_i = <n, wi>, cos_h = <n, h>
// and cos_oh = <wo, h>, h = normalize(wo + wi); the caller checks that wi is above. The
// specular lobe samples nothing when wo is below the shading normal.
RT_HOST_DEVICE RT_INLINE Real bsdf_pdf_cosines(const BSDFParams& p, Real cos_o, Real cos_i, Real cos_h,
                                               Real cos_oh) {
    Real ps = specular_lobe_probability(p);
    Real pdf = (1 - ps) * cosine_hemisphere_pdf(cos_i);
    if (ps > 0 && cos_o > 0 && cos_oh > 0) pdf += ps * ggx_d(cos_h, p.alpha) * cos_h / (4 * cos_oh);
    return pdf;
}

RT_HOST_DEVICE RT_INLINE Real bsdf_pdf(const BSDFParams& p, Vec3 wo, Vec3 wi) {
    if (wi.z <= 0) return 0;
    Vec3 h = normalize(wo + wi);
    return bsdf_pdf_cosines(p, wo.z, wi.z, h.z, dot(wo, h));
}

// bsdf_pdf for world-space directions around the unit shading normal n.
RT_HOST_DEVICE RT_INLINE Real bsdf_pdf_world(const BSDFParams& p, Vec3 n, Vec3 wo, Vec3 wi) {
    Real cos_o = dot(n, wo), cos_i = dot(n, wi);
    if (cos_i <= 0) return 0;
    Vec3 h = normalize(wo + wi);
    return bsdf_pdf_cosines(p, cos_o, cos_i, dot(n, h), dot(wo, h));
}

// Samples wi from u in [0,1)^3 (u.x chooses the lobe). Returns false for a failed sample.
RT_HOST_DEVICE RT_INLINE bool bsdf_sample(const BSDFParams& p, Vec3 wo, Vec3 u, Vec3* wi, Real* pdf) {
    Real ps = specular_lobe_probability(p);
    if (u.x < ps) {
        if (wo.z <= 0) return false;
        // A microfacet normal from D(h) cos(theta_h), reflected about.
        Real a2 = p.alpha * p.alpha;
        Real tan2 = a2 * u.y / max_r(1 - u.y, Real(1e-12));
        Real cos_h = 1 / std::sqrt(1 + tan2);
        Real sin_h = std::sqrt(max_r(Real(0), 1 - cos_h * cos_h));
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
