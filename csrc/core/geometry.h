// geometry.h: the ray-triangle intersection as a smooth function, and its adjoint.
//
// The BVH finds which triangle a ray hits; the reverse pass then needs how the hit moves when
// the ray or the triangle moves. Within one triangle the hit is the intersection of the ray
// with the triangle's plane, a smooth function of (o, d, v0, v1, v2), written here without the
// inside test.
#pragma once

#include "vector.h"

namespace rt {

// The ray o + t d meets the plane of (v0, v1, v2) at v0 + b1 (v1 - v0) + b2 (v2 - v0): with
// e1 = v1 - v0, e2 = v2 - v0, r = o - v0, the 3x3 system [-d | e1 | e2] (t, b1, b2) = r.
// By Cramer's rule (Moller-Trumbore), with det = dot(-d, e1 x e2):
//   t = dot(r, e1 x e2) / det,  b1 = dot(r, d x e2) / det,  b2 = dot(r, e1 x d) / det.
// Returns false only if det = 0 (ray parallel to the plane, or a degenerate triangle); t may be
// negative and (b1, b2) outside the triangle.
RT_HOST_DEVICE RT_INLINE bool intersect_triangle(Vec3 o, Vec3 d, Vec3 v0, Vec3 v1, Vec3 v2, Real* t, Real* b1,
                                                 Real* b2) {
    Vec3 e1 = v1 - v0, e2 = v2 - v0, r = o - v0;
    Vec3 pvec = cross(d, e2);
    Real det = dot(e1, pvec);  // = dot(-d, e1 x e2)
    if (det == 0 || !std::isfinite(det)) return false;
    Real inv = 1 / det;
    Vec3 qvec = cross(r, e1);
    *b1 = dot(r, pvec) * inv;
    *b2 = dot(d, qvec) * inv;  // = dot(r, e1 x d) / det
    *t = dot(e2, qvec) * inv;  // = dot(r, e1 x e2) / det
    return true;
}

// The adjoint of intersect_triangle. With M = [-d | e1 | e2], x = (t, b1, b2) = M^-1 r and
// g = (d_t, d_b1, d_b2): lambda = M^-T g, d_r = lambda, d_M = -lambda x^T. The rows of M^-1
// are (e1 x e2, e2 x -d, -d x e1) / det, so lambda = (d_t e1 x e2 + d_b1 d x e2 + d_b2 e1 x d) / det.
// Adds into the outputs; adds nothing where intersect_triangle returns false.
RT_HOST_DEVICE RT_INLINE void d_intersect_triangle(Vec3 o, Vec3 d, Vec3 v0, Vec3 v1, Vec3 v2, Real d_t, Real d_b1,
                                                   Real d_b2, Vec3* d_o, Vec3* d_d, Vec3* d_v0, Vec3* d_v1,
                                                   Vec3* d_v2) {
    Real t, b1, b2;
    if (!intersect_triangle(o, d, v0, v1, v2, &t, &b1, &b2)) return;
    Vec3 e1 = v1 - v0, e2 = v2 - v0;
    Vec3 n = cross(e1, e2);
    Real det = -dot(d, n);
    Vec3 lambda = (n * d_t + cross(d, e2) * d_b1 + cross(e1, d) * d_b2) / det;
    // Right-hand side r = o - v0.
    *d_o += lambda;
    // Columns of M: -d, e1, e2.
    *d_d += lambda * t;
    Vec3 d_e1 = lambda * (-b1), d_e2 = lambda * (-b2);
    *d_v1 += d_e1;
    *d_v2 += d_e2;
    *d_v0 += -(lambda + d_e1 + d_e2);
}

}  // namespace rt
