// path_tracer.h: the forward rendering kernels.
//
// radiance() traces one camera path with next-event estimation and BSDF sampling, combined by
// multiple importance sampling (power heuristic). The random numbers of bounce b come from
// fixed dimensions of the pixel's Sampler, so the path is a pure function of
// (seed, pixel, sample) and a backward pass can replay it.
#pragma once

#include <cmath>

#include "light.h"
#include "rng.h"
#include "scene.h"

namespace rt {

// Output channels of render(), in the order the caller asks for them.
enum Channel : int {
    kChannelRadiance = 0,  // 3
    kChannelAlpha = 1,     // 1
    kChannelDepth = 2,     // 1
    kChannelNormal = 3,    // 3
    kChannelAlbedo = 4,    // 3
    kChannelShapeId = 5,   // 1
    kChannelPosition = 6,        // 3
    kChannelGeometryNormal = 7,  // 3
    kChannelUV = 8,              // 2
    kChannelBarycentrics = 9,    // 2
    kChannelTriangleId = 10,     // 1
    kLastChannel = 10,
};
constexpr int kMaxChannels = 8;  // per call

RT_HOST_DEVICE RT_INLINE int channel_width(int c) {
    switch (c) {
        case kChannelRadiance: case kChannelNormal: case kChannelAlbedo: case kChannelPosition:
        case kChannelGeometryNormal: return 3;
        case kChannelUV: case kChannelBarycentrics: return 2;
        default: return 1;
    }
}

// The channels read from the one ray through the pixel's centre (ids, and the barycentrics that go
// with triangle_id), not averaged over the samples.
RT_HOST_DEVICE RT_INLINE bool centre_channel(int c) {
    return c == kChannelShapeId || c == kChannelBarycentrics || c == kChannelTriangleId;
}

struct RenderParams {
    int spp;
    int max_bounces;
    uint64_t seed;
    int num_channels;
    int channels[kMaxChannels];
    int num_threads;
};

// Sampler dimensions: 2 for the pixel position (stratified, not from the Sampler), then a
// fixed block per bounce.
constexpr uint32_t kDimsPerBounce = 6;  // light: choice, u, v; bsdf: lobe, u, v
RT_HOST_DEVICE RT_INLINE uint32_t bounce_dim(int bounce) { return uint32_t(bounce) * kDimsPerBounce; }

// What the first hit of a camera ray contributes to the auxiliary channels.
struct PrimaryInfo {
    int hit;
    Real depth;
    Vec3 normal;   // shading normal, facing the camera
    Vec3 albedo;
    Vec3 position;
    Vec3 geometry_normal;  // unit geometric normal, facing the camera
    Vec2 uv;
};

// The auxiliary channels of a first hit (what render()'s depth, normal, albedo, position,
// geometry_normal and uv channels average), from its surface point: radiance_from() and the
// reverse pass's primary edges share it.
RT_HOST_DEVICE RT_INLINE void fill_primary(const SceneView& s, const Ray& ray, const Hit& hit, const SurfacePoint& sp,
                                           Vec3 wo, PrimaryInfo* primary) {
    primary->depth = hit.t * length(ray.dir);
    primary->normal = dot(sp.ns, wo) < 0 ? -sp.ns : sp.ns;
    primary->albedo = texture_lookup(s.texels, s.materials[s.shapes[sp.shape_id].material_id].diffuse, sp.uv);
    primary->position = sp.p;
    primary->geometry_normal = dot(sp.ng, wo) < 0 ? -sp.ng : sp.ng;
    primary->uv = sp.uv;
}

// The auxiliary values of one first hit as one vector (all zero where nothing is hit), the layout
// of BackwardParams::d_aux: alpha, depth, normal (3), albedo (3), position (3), geometry normal
// (3), uv (2).
constexpr int kAuxWidth = 16;
RT_HOST_DEVICE RT_INLINE void aux_values(const SceneView& s, const Ray& ray, bool found, const Hit& hit,
                                         Real out[kAuxWidth]) {
    for (int k = 0; k < kAuxWidth; ++k) out[k] = 0;
    if (!found) return;
    SurfacePoint sp = surface_point(s, hit);
    PrimaryInfo info;
    fill_primary(s, ray, hit, sp, -normalize(ray.dir), &info);
    out[0] = 1;
    out[1] = info.depth;
    for (int k = 0; k < 3; ++k) {
        out[2 + k] = info.normal[k];
        out[5 + k] = info.albedo[k];
        out[8 + k] = info.position[k];
        out[11 + k] = info.geometry_normal[k];
    }
    out[14] = info.uv.x;
    out[15] = info.uv.y;
}

// Whether nothing blocks the segment from `p` (already offset) to `q`.
RT_HOST_DEVICE RT_INLINE bool visible(const SceneView& s, Vec3 p, Vec3 q) {
    Ray shadow;
    shadow.org = p;
    shadow.dir = q - p;
    shadow.tmin = 0;
    shadow.tmax = Real(1) - Real(1e-4);
    return !occluded(s.bvh, shadow);
}

// Whether `ray` can meet an emitter: the environment (met by any ray that escapes) or the box
// around the area lights, by the BVH's own slab test (a box the traversal would cull holds no
// triangle the ray meets, so the test is as conservative as the traversal).
RT_HOST_DEVICE RT_INLINE bool may_reach_emitter(const SceneView& s, const Ray& ray) {
    if (s.has_envmap) return true;
    if (!(s.light_box.bmin[0] <= s.light_box.bmax[0])) return false;
    detail::RayPrep r;
    if (!detail::prepare_ray(ray, &r)) return false;
    Real tnear;
    return detail::hit_box(s.light_box, r, ray.tmax, &tnear);
}

// The first hit of the ray a path continues along after vertex `bounce`. The next vertex adds
// only its emission when it is the last (bounce + 1 == max_bounces), so a ray that can meet no
// emitter is not traced: as if it met nothing, which adds the same nothing.
RT_HOST_DEVICE RT_INLINE bool continue_path(const SceneView& s, const Ray& ray, int bounce, int max_bounces,
                                            Hit* hit) {
    if (bounce + 1 >= max_bounces && !may_reach_emitter(s, ray)) return false;
    return intersect(s.bvh, ray, hit);
}

// The radiance arriving along `ray`, whose first hit is given (`found`, `hit`): the path
// tracer's estimate. radiance() below finds the hit itself.
RT_HOST_DEVICE RT_INLINE Vec3 radiance_from(const SceneView& s, Ray ray, bool found, Hit hit, int max_bounces,
                                            const Sampler& sampler, PrimaryInfo* primary) {
    Vec3 L(0), beta(1);
    Real prev_bsdf_pdf = 0;  // solid-angle pdf of the BSDF sample that produced `ray`
    Vec3 prev_p;             // where that ray started
    primary->hit = found;
    for (int bounce = 0;; ++bounce) {
        // Escaped: the environment, MIS-weighted against environment sampling.
        if (!found) {
            if (s.has_envmap) {
                Vec3 Le = envmap_eval(s.envmap, ray.dir);
                Real w = 1;
                if (bounce > 0 && s.env_choice_prob > 0) {
                    w = power_heuristic(prev_bsdf_pdf, s.env_choice_prob * envmap_pdf(s.envmap, ray.dir));
                }
                L += beta * Le * w;
            }
            break;
        }
        SurfacePoint sp = surface_point(s, hit);
        Vec3 wo = -normalize(ray.dir);
        const ShapeData& shape = s.shapes[sp.shape_id];
        const Material& material = s.materials[shape.material_id];
        if (bounce == 0) fill_primary(s, ray, hit, sp, wo, primary);
        // Emission, MIS-weighted against area-light sampling.
        if (shape.light_id >= 0) {
            Vec3 Le = area_light_emission(s.lights[shape.light_id], sp.ng, wo);
            if (!is_black(Le)) {
                Real w = 1;
                if (bounce > 0) {
                    Real light_pdf = (1 - s.env_choice_prob) * area_lights_pdf(s, prev_p, sp.p, sp.ng, sp.tri);
                    w = power_heuristic(prev_bsdf_pdf, light_pdf);
                }
                L += beta * Le * w;
            }
        }
        if (bounce >= max_bounces) break;
        // The side of the surface we are on; one-sided materials reflect on the front only.
        Vec3 ng = sp.ng, ns = sp.ns;
        if (dot(wo, ng) < 0) {
            if (!material.two_sided) break;
            ng = -ng;
            ns = -ns;
        }
        Frame frame(ns);
        Vec3 wo_local = frame.to_local(wo);
        BSDFParams bsdf = eval_material(s.texels, material, sp.uv);
        Vec3 origin = offset_ray_origin(sp, ng);
        uint32_t dim = bounce_dim(bounce);

        // Next-event estimation.
        if (s.env_choice_prob > 0 || s.num_lights > 0) {
            Real u_choice = sampler.get(dim + 0);
            Vec2 u_light(sampler.get(dim + 1), sampler.get(dim + 2));
            Vec3 wi, Le;
            Real light_pdf = 0;
            Vec3 target;
            if (u_choice < s.env_choice_prob) {
                Real pdf;
                wi = envmap_sample(s.envmap, u_light, &pdf);
                light_pdf = s.env_choice_prob * pdf;
                Le = envmap_eval(s.envmap, wi);
                target = origin + wi * Real(1e30);  // treated as unbounded by the shadow ray below
            } else {
                Real u_rescaled = (u_choice - s.env_choice_prob) / (1 - s.env_choice_prob);
                LightSample ls = sample_area_lights(s, sp.p, Vec3(u_rescaled, u_light.x, u_light.y));
                light_pdf = (1 - s.env_choice_prob) * ls.pdf;
                wi = ls.dir;
                Le = ls.Le;
                target = ls.point;
            }
            if (light_pdf > 0 && !is_black(Le) && dot(wi, ng) > 0) {
                Vec3 wi_local = frame.to_local(wi);
                Vec3 f = bsdf_eval(bsdf, wo_local, wi_local);
                if (!is_black(f)) {
                    bool unblocked;
                    if (u_choice < s.env_choice_prob) {
                        Ray shadow{origin, wi, 0, kInfinity};
                        unblocked = !occluded(s.bvh, shadow);
                    } else {
                        unblocked = visible(s, origin, target);
                    }
                    if (unblocked) {
                        Real w = power_heuristic(light_pdf, bsdf_pdf(bsdf, wo_local, wi_local));
                        L += beta * f * Le * (wi_local.z * terminator(ng, ns, wi) * w / light_pdf);
                    }
                }
            }
        }

        // BSDF sampling: the next ray of the path.
        Vec3 u_bsdf(sampler.get(dim + 3), sampler.get(dim + 4), sampler.get(dim + 5));
        Vec3 wi_local;
        Real pdf;
        if (!bsdf_sample(bsdf, wo_local, u_bsdf, &wi_local, &pdf)) break;
        Vec3 wi = frame.to_world(wi_local);
        if (dot(wi, ng) <= 0) break;  // below the geometric surface: no light leaks
        Vec3 f = bsdf_eval(bsdf, wo_local, wi_local);
        beta *= f * (wi_local.z * terminator(ng, ns, wi) / pdf);
        if (is_black(beta)) break;
        prev_bsdf_pdf = pdf;
        prev_p = sp.p;
        ray = Ray{origin, wi, 0, kInfinity};
        found = continue_path(s, ray, bounce, max_bounces, &hit);
    }
    return L;
}

RT_HOST_DEVICE RT_INLINE Vec3 radiance(const SceneView& s, Ray ray, int max_bounces, const Sampler& sampler,
                                       PrimaryInfo* primary) {
    Hit hit;
    bool found = intersect(s.bvh, ray, &hit);
    return radiance_from(s, ray, found, hit, max_bounces, sampler, primary);
}

// One pixel of render(): its spp samples in a fixed order, each with its own random sequence,
// box-filtered into the requested channels at `o` (out_width floats). The CPU and CUDA backends
// both call this, so their images differ only by the compilers' rounding. `stop()` is polled every
// 16 samples (the CPU's Ctrl-C); when it returns true the pixel is left unwritten and false is
// returned.
template <typename Stop>
RT_HOST_DEVICE RT_INLINE bool render_pixel(const SceneView& scene, const RenderParams& params, bool need_centre,
                                           int pixel, Real* o, const Stop& stop) {
    const Camera& cam = scene.camera;
    int px = pixel % cam.width, py = pixel / cam.width;
    uint32_t pattern_key = hash32(uint32_t(params.seed * 0x2545f491u) ^ 0x6a09e667u, uint32_t(pixel));
    double radiance_sum[3] = {0, 0, 0};
    double alpha_sum = 0, depth_sum = 0;
    double normal_sum[3] = {0, 0, 0}, albedo_sum[3] = {0, 0, 0};
    double position_sum[3] = {0, 0, 0}, gnormal_sum[3] = {0, 0, 0}, uv_sum[2] = {0, 0};
    for (int s = 0; s < params.spp; ++s) {
        if ((s & 15) == 0 && stop()) return false;
        Vec2 j = cmj_sample(uint32_t(s), uint32_t(params.spp), pattern_key);
        Ray ray = generate_ray(cam, Real(px) + j.x, Real(py) + j.y);
        Sampler sampler(params.seed, kStreamForward, uint64_t(pixel), uint64_t(s));
        PrimaryInfo primary{0, 0, Vec3(0), Vec3(0), Vec3(0), Vec3(0), Vec2(0, 0)};
        Vec3 L = radiance(scene, ray, params.max_bounces, sampler, &primary);
        radiance_sum[0] += L.x;
        radiance_sum[1] += L.y;
        radiance_sum[2] += L.z;
        if (primary.hit) {
            alpha_sum += 1;
            depth_sum += primary.depth;
            for (int k = 0; k < 3; ++k) {
                normal_sum[k] += primary.normal[k];
                albedo_sum[k] += primary.albedo[k];
                position_sum[k] += primary.position[k];
                gnormal_sum[k] += primary.geometry_normal[k];
            }
            uv_sum[0] += primary.uv.x;
            uv_sum[1] += primary.uv.y;
        }
    }
    int shape_at_centre = -1, triangle_at_centre = -1;
    Real bary_at_centre[2] = {0, 0};
    if (need_centre) {
        Ray ray = generate_ray(cam, Real(px) + Real(0.5), Real(py) + Real(0.5));
        Hit hit;
        if (intersect(scene.bvh, ray, &hit)) {
            shape_at_centre = scene.tri_shape[hit.tri];
            triangle_at_centre = hit.tri - scene.shapes[shape_at_centre].tri_offset;
            bary_at_centre[0] = hit.u;
            bary_at_centre[1] = hit.v;
        }
    }
    // Box filter: the average of the samples.
    double inv = 1.0 / double(params.spp);
    for (int c = 0; c < params.num_channels; ++c) {
        switch (params.channels[c]) {
            case kChannelRadiance:
                for (int k = 0; k < 3; ++k) *o++ = Real(radiance_sum[k] * inv);
                break;
            case kChannelAlpha: *o++ = Real(alpha_sum * inv); break;
            case kChannelDepth: *o++ = Real(depth_sum * inv); break;
            case kChannelNormal:
                for (int k = 0; k < 3; ++k) *o++ = Real(normal_sum[k] * inv);
                break;
            case kChannelAlbedo:
                for (int k = 0; k < 3; ++k) *o++ = Real(albedo_sum[k] * inv);
                break;
            case kChannelShapeId: *o++ = Real(shape_at_centre); break;
            case kChannelPosition:
                for (int k = 0; k < 3; ++k) *o++ = Real(position_sum[k] * inv);
                break;
            case kChannelGeometryNormal:
                for (int k = 0; k < 3; ++k) *o++ = Real(gnormal_sum[k] * inv);
                break;
            case kChannelUV:
                for (int k = 0; k < 2; ++k) *o++ = Real(uv_sum[k] * inv);
                break;
            case kChannelBarycentrics:
                for (int k = 0; k < 2; ++k) *o++ = bary_at_centre[k];
                break;
            case kChannelTriangleId: *o++ = Real(triangle_at_centre); break;
            default: break;
        }
    }
    return true;
}

// Floats per pixel of render()'s output, and whether it holds a channel of the pixel's centre ray.
RT_HOST_DEVICE RT_INLINE int output_width(const RenderParams& params, bool* need_centre) {
    int width = 0;
    *need_centre = false;
    for (int c = 0; c < params.num_channels; ++c) {
        width += channel_width(params.channels[c]);
        *need_centre = *need_centre || centre_channel(params.channels[c]);
    }
    return width;
}

// Ray i of scene.intersect(). The ray is traced along the unit direction (any non-zero length
// works, 1e-30 or 1e30: scaled by its largest component first, so squaring it neither underflows
// nor overflows) and t is converted back to units of the given direction.
RT_HOST_DEVICE RT_INLINE void intersect_ray(const SceneView& scene, const Real* origins, const Real* directions,
                                            int64_t i, Real* t, int64_t* shape_id, int64_t* triangle_id, Real* uv) {
    Vec3 d = Vec3::load(directions + 3 * size_t(i));
    Real m = max_component(vabs(d));
    Vec3 dm = d / m;
    Real len = length(dm);
    Ray ray{Vec3::load(origins + 3 * size_t(i)), dm / len, 0, kInfinity};
    Hit hit;
    if (m > 0 && intersect(scene.bvh, ray, &hit)) {
        int shape = scene.tri_shape[hit.tri];
        t[i] = Real(double(hit.t) / (double(len) * double(m)));
        shape_id[i] = shape;
        triangle_id[i] = hit.tri - scene.shapes[shape].tri_offset;
        uv[2 * size_t(i)] = hit.u;
        uv[2 * size_t(i) + 1] = hit.v;
    } else {
        t[i] = Real(INFINITY);
        shape_id[i] = -1;
        triangle_id[i] = -1;
        uv[2 * size_t(i)] = 0;
        uv[2 * size_t(i) + 1] = 0;
    }
}

// Throws std::invalid_argument / std::length_error naming the count when a parameter or the
// image size passes its bound (limits.h).
void check_render_params(const Camera& camera, const RenderParams& params);

// Renders pixels into `out` ([height, width, total channel width], float32). Checks the
// parameters first (check_render_params); throws Cancelled when the calling thread's CancelFlag
// (cancel.h) is set before it is done, with `out` partly written.
void render(const SceneView& scene, const RenderParams& params, Real* out);

// scene.intersect(): closest hits of n rays (at most kMaxRays). Cancellable as render().
void intersect_rays(const SceneView& scene, const Real* origins, const Real* directions, int64_t n,
                    Real* t, int64_t* shape_id, int64_t* triangle_id, Real* uv, int num_threads);

}  // namespace rt
