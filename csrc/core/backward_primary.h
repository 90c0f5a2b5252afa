// backward_primary.h: the primary-edge kernel of the reverse pass: edges seen from the camera,
// sampled by projected length (backward_terms.h). backward_primary.cpp chooses the edges (a
// distribution over them, on the host) and runs the samples on the CPU's tiles; csrc/cuda runs
// them on the GPU.
#pragma once

#include <cmath>

#include "backward_secondary.h"

namespace rt {
namespace bwd {

// The radiance on both sides of edge e where it crosses screen point pt (L[0] at pt - eps n, L[1]
// at pt + eps n, in the limit eps -> 0), t the screen-space parameter of pt on the projected edge,
// and, with `aux`, the auxiliary channels there (aux_values of each side's first hit: A[side]).
// With `radiance` false, L is left zero (only the auxiliary channels are wanted).
// A side covered by one of the edge's own faces is shaded on that face at the edge point itself:
// offset rays would miss a face seen nearly edge-on, whose image is a sliver thinner than any
// offset, and bias the term in proportion to the offset. A side that no face of the edge covers
// (beyond a silhouette or a boundary) is traced with a ray offset by a small eps. Returns false
// when something hides the edge point from the camera (no jump there).
RT_HOST_DEVICE inline bool primary_edge_sides(const SceneView& s, const Edge& e, Vec3 v0, Vec3 v1, Real t, Vec2 pt,
                                              Vec2 n, int max_bounces, const Sampler& sampler, bool radiance,
                                              bool aux, Vec3 L[2], Real A[2][kAuxWidth]) {
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
    const int faces[2] = {e.f0, e.f1};
    for (int f : faces) {
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
        L[side] = Vec3(0);
        if (f < 0) {
            if (aux) aux_values(s, far_ray[side], far_found[side], far_hit[side], A[side]);
            if (radiance) {
                L[side] = radiance_from(s, far_ray[side], far_found[side], far_hit[side], max_bounces, sampler, &info);
            }
            continue;
        }
        // The hit on face f at the edge point: barycentrics 1 - t_w and t_w on the edge's ends.
        const int* idx = s.indices + 3 * size_t(f);
        Real b[3];
        for (int k = 0; k < 3; ++k) b[k] = idx[k] == e.v0 ? 1 - t_w : (idx[k] == e.v1 ? t_w : Real(0));
        Hit hit{t_m, f, b[1], b[2]};
        Ray ray{centre.org, dir, 0, kInfinity};
        if (aux) aux_values(s, ray, true, hit, A[side]);
        if (radiance) L[side] = radiance_from(s, ray, true, hit, max_bounces, sampler, &info);
    }
    return true;
}

struct PrimaryEdgeKernel : BackwardContext {
    Distribution1D choice;   // over edges, by projected length (0 for edges that do not matter)
    int64_t num_samples;

    // Edge sample i of num_samples.
    template <typename Acc>
    RT_HOST_DEVICE void sample(int64_t i, Acc& acc) const {
        const Camera& cam = s.camera;
        // One number, stratified over all samples, picks the edge (by projected length) and the
        // point along it: the samples spread evenly over the total length of the edges, so
        // the large, cancelling terms of opposite edges cancel instead of adding noise.
        Real u = cmj_sample(uint32_t(i), uint32_t(num_samples), uint32_t(p.seed * 0x9e3779b9u) ^ 0x85ebca6bu).y;
        Real u_t;
        int ei = choice.sample(u, &u_t);
        Real p_edge = choice.pmf(ei);
        if (p_edge <= 0) return;
        const Edge& e = edges[ei];
        Vec3 v0 = Vec3::load(s.vertices + 3 * size_t(e.v0)), v1 = Vec3::load(s.vertices + 3 * size_t(e.v1));
        Vec2 s0, s1;
        if (!project(cam, v0, &s0) || !project(cam, v1, &s1)) return;
        Real t = u_t;
        Vec2 seg = s1 - s0;
        Real seg_len = std::sqrt(seg.x * seg.x + seg.y * seg.y);
        if (seg_len <= 0) return;
        Vec2 pt = s0 + seg * t;
        if (!(pt.x >= 0 && pt.y >= 0 && pt.x < Real(cam.width) && pt.y < Real(cam.height))) return;
        int px = int(pt.x), py = int(pt.y);
        acc.set_pixel(py * cam.width + px);
        if (px >= cam.width || py >= cam.height) return;
        Vec3 d_pix = Vec3::load(d_image + 3 * (size_t(py) * cam.width + px));
        Real d_aux[kAuxWidth];
        bool aux = false;
        for (int k = 0; k < kAuxWidth; ++k) {
            d_aux[k] = p.d_aux ? p.d_aux[(size_t(py) * cam.width + px) * kAuxWidth + k] : Real(0);
            aux = aux || d_aux[k] != 0;
        }
        if (is_black(d_pix) && !aux) return;
        Vec2 n(-seg.y / seg_len, seg.x / seg_len);
        // Radiance just on either side, with the same random numbers.
        Sampler path_sampler(p.seed, kStreamEdge, uint64_t(0xfffffffeull), uint64_t(i));
        Vec3 L[2];
        Real A[2][kAuxWidth];
        if (!primary_edge_sides(s, e, v0, v1, t, pt, n, p.max_bounces, path_sampler, !is_black(d_pix), aux, L, A)) {
            return;
        }
        // (L- - L+), and the auxiliary channels' jumps, times the normal velocity; pdf = p_edge /
        // seg_len per unit length.
        Real jump = dot(d_pix, L[0] - L[1]);
        if (aux) {
            for (int k = 0; k < kAuxWidth; ++k) jump += d_aux[k] * (A[0][k] - A[1][k]);
        }
        Real weight = jump * seg_len / (p_edge * Real(num_samples));
        if (weight == 0) return;
        Vec3 d_v0(0), d_v1(0);
        DCameraParams d_cam{};
        d_project(camera, v0, n * (weight * (1 - t)), &d_cam, &d_v0);
        d_project(camera, v1, n * (weight * t), &d_cam, &d_v1);
        add_vec3(acc, layout.vertices, e.v0, d_v0);
        add_vec3(acc, layout.vertices, e.v1, d_v1);
        add_camera_grad(acc, layout, d_cam);
    }
};

}  // namespace bwd
}  // namespace rt
