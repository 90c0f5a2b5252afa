// backward_path.h: a path recorded for its reverse sweep, and the derivatives of a hit's geometry
// (backward_terms.h).
#pragma once

#include "backward_terms.h"
#include "geometry.h"
#include "light.h"
#include "path_tracer.h"

namespace rt {
namespace bwd {

// The same path as radiance() traces, recorded. Keep the two in step.
RT_HOST_DEVICE inline void trace_path(const SceneView& s, Ray ray, int max_bounces, const Sampler& sampler,
                                      Path* path) {
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

// Back-propagates gradients w.r.t. a vertex's position, shading normal and uv to the mesh
// and to the ray that found it (through the barycentrics of the ray-plane intersection).
template <typename Acc>
RT_HOST_DEVICE void d_hit_geometry(const SceneView& s, const GradLayout& layout, const PathVertex& pv, Vec3 d_p,
                                   Vec3 d_ns, Vec3 d_ng, Vec2 d_uv, Acc& acc, Vec3* d_org, Vec3* d_dir) {
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

}  // namespace bwd
}  // namespace rt
