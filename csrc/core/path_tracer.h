// path_tracer.h: the forward rendering kernels.
//
// radiance() traces one camera path with next-event estimation and BSDF sampling, combined by
// multiple importance sampling (power heuristic). The random numbers of bounce b come from
// fixed dimensions of the pixel's Sampler, so the path is a pure function of
// (seed, pixel, sample) and a backward pass can replay it.
#pragma once

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
};
constexpr int kMaxChannels = 8;

RT_HOST_DEVICE RT_INLINE int channel_width(int c) {
    return (c == kChannelRadiance || c == kChannelNormal || c == kChannelAlbedo) ? 3 : 1;
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
};

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
        if (bounce == 0) {
            primary->depth = hit.t * length(ray.dir);
            primary->normal = dot(sp.ns, wo) < 0 ? -sp.ns : sp.ns;
            primary->albedo = texture_lookup(s.texels, material.diffuse, sp.uv);
        }
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
