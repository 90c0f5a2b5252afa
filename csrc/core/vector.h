// vector.h: small fixed-size vectors for the kernels.
#pragma once

#include <cmath>

#include "rt.h"

namespace rt {

struct Vec2 {
    Real x, y;
    RT_HOST_DEVICE Vec2() : x(0), y(0) {}
    RT_HOST_DEVICE Vec2(Real x, Real y) : x(x), y(y) {}
    RT_HOST_DEVICE Real operator[](int i) const { return i == 0 ? x : y; }
};

struct Vec3 {
    Real x, y, z;
    RT_HOST_DEVICE Vec3() : x(0), y(0), z(0) {}
    RT_HOST_DEVICE explicit Vec3(Real s) : x(s), y(s), z(s) {}
    RT_HOST_DEVICE Vec3(Real x, Real y, Real z) : x(x), y(y), z(z) {}
    RT_HOST_DEVICE static Vec3 load(const Real* p) { return Vec3(p[0], p[1], p[2]); }
    RT_HOST_DEVICE Real operator[](int i) const { return i == 0 ? x : (i == 1 ? y : z); }
    RT_HOST_DEVICE Real& operator[](int i) { return i == 0 ? x : (i == 1 ? y : z); }
};

RT_HOST_DEVICE RT_INLINE Vec2 operator+(Vec2 a, Vec2 b) { return Vec2(a.x + b.x, a.y + b.y); }
RT_HOST_DEVICE RT_INLINE Vec2 operator-(Vec2 a, Vec2 b) { return Vec2(a.x - b.x, a.y - b.y); }
RT_HOST_DEVICE RT_INLINE Vec2 operator*(Vec2 a, Real s) { return Vec2(a.x * s, a.y * s); }
RT_HOST_DEVICE RT_INLINE Vec2 operator*(Real s, Vec2 a) { return Vec2(a.x * s, a.y * s); }

RT_HOST_DEVICE RT_INLINE Vec3 operator+(Vec3 a, Vec3 b) { return Vec3(a.x + b.x, a.y + b.y, a.z + b.z); }
RT_HOST_DEVICE RT_INLINE Vec3 operator-(Vec3 a, Vec3 b) { return Vec3(a.x - b.x, a.y - b.y, a.z - b.z); }
RT_HOST_DEVICE RT_INLINE Vec3 operator-(Vec3 a) { return Vec3(-a.x, -a.y, -a.z); }
RT_HOST_DEVICE RT_INLINE Vec3 operator*(Vec3 a, Vec3 b) { return Vec3(a.x * b.x, a.y * b.y, a.z * b.z); }
RT_HOST_DEVICE RT_INLINE Vec3 operator*(Vec3 a, Real s) { return Vec3(a.x * s, a.y * s, a.z * s); }
RT_HOST_DEVICE RT_INLINE Vec3 operator*(Real s, Vec3 a) { return Vec3(a.x * s, a.y * s, a.z * s); }
RT_HOST_DEVICE RT_INLINE Vec3 operator/(Vec3 a, Real s) { Real inv = Real(1) / s; return a * inv; }
RT_HOST_DEVICE RT_INLINE Vec3& operator+=(Vec3& a, Vec3 b) { a.x += b.x; a.y += b.y; a.z += b.z; return a; }
RT_HOST_DEVICE RT_INLINE Vec3& operator*=(Vec3& a, Vec3 b) { a.x *= b.x; a.y *= b.y; a.z *= b.z; return a; }
RT_HOST_DEVICE RT_INLINE Vec3& operator*=(Vec3& a, Real s) { a.x *= s; a.y *= s; a.z *= s; return a; }

RT_HOST_DEVICE RT_INLINE Real dot(Vec3 a, Vec3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
RT_HOST_DEVICE RT_INLINE Vec3 cross(Vec3 a, Vec3 b) {
    return Vec3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x);
}
RT_HOST_DEVICE RT_INLINE Real length_squared(Vec3 a) { return dot(a, a); }
RT_HOST_DEVICE RT_INLINE Real length(Vec3 a) { return std::sqrt(dot(a, a)); }
RT_HOST_DEVICE RT_INLINE Vec3 normalize(Vec3 a) {
    Real l = length(a);
    return l > 0 ? a / l : a;
}

// ---- Adjoints ------------------------------------------------------------------------------
// d_f(inputs, d_out) gives the gradient w.r.t. the inputs of a loss whose gradient w.r.t. the
// output of f is d_out. Those returning a value return it; those taking pointers add (+=).

// normalize(v) = v / |v|: d_v = (d_out - n dot(n, d_out)) / |v|, zero at v = 0.
RT_HOST_DEVICE RT_INLINE Vec3 d_normalize(Vec3 v, Vec3 d_out) {
    Real l = length(v);
    if (!(l > 0)) return Vec3(0);
    Vec3 n = v / l;
    return (d_out - n * dot(n, d_out)) / l;
}

// length(v) = |v|: d_v = d_out v / |v|, zero at v = 0.
RT_HOST_DEVICE RT_INLINE Vec3 d_length(Vec3 v, Real d_out) {
    Real l = length(v);
    if (!(l > 0)) return Vec3(0);
    return v * (d_out / l);
}

// cross(a, b): dot(g, a x b) = dot(a, b x g) = dot(b, g x a).
RT_HOST_DEVICE RT_INLINE void d_cross(Vec3 a, Vec3 b, Vec3 d_out, Vec3* d_a, Vec3* d_b) {
    *d_a += cross(b, d_out);
    *d_b += cross(d_out, a);
}

RT_HOST_DEVICE RT_INLINE Vec3 vmin(Vec3 a, Vec3 b) {
    return Vec3(min_r(a.x, b.x), min_r(a.y, b.y), min_r(a.z, b.z));
}
RT_HOST_DEVICE RT_INLINE Vec3 vmax(Vec3 a, Vec3 b) {
    return Vec3(max_r(a.x, b.x), max_r(a.y, b.y), max_r(a.z, b.z));
}
RT_HOST_DEVICE RT_INLINE Real max_component(Vec3 a) { return max_r(a.x, max_r(a.y, a.z)); }
RT_HOST_DEVICE RT_INLINE Vec3 vabs(Vec3 a) { return Vec3(std::fabs(a.x), std::fabs(a.y), std::fabs(a.z)); }
RT_HOST_DEVICE RT_INLINE Real luminance(Vec3 c) {
    return Real(0.212671) * c.x + Real(0.715160) * c.y + Real(0.072169) * c.z;
}
RT_HOST_DEVICE RT_INLINE bool is_black(Vec3 c) { return c.x == 0 && c.y == 0 && c.z == 0; }

// An orthonormal basis (Duff et al. 2017, "Building an Orthonormal Basis, Revisited").
RT_HOST_DEVICE RT_INLINE void coordinate_system(Vec3 n, Vec3* s, Vec3* t) {
    Real sign = std::copysign(Real(1), n.z);
    Real a = Real(-1) / (sign + n.z);
    Real b = n.x * n.y * a;
    *s = Vec3(Real(1) + sign * n.x * n.x * a, sign * b, -sign * n.x);
    *t = Vec3(b, sign + n.y * n.y * a, -n.y);
}

struct Frame {
    Vec3 s, t, n;
    RT_HOST_DEVICE Frame() {}
    RT_HOST_DEVICE explicit Frame(Vec3 n_) : n(n_) { coordinate_system(n, &s, &t); }
    RT_HOST_DEVICE Vec3 to_local(Vec3 v) const { return Vec3(dot(v, s), dot(v, t), dot(v, n)); }
    RT_HOST_DEVICE Vec3 to_world(Vec3 v) const { return s * v.x + t * v.y + n * v.z; }
};

struct Ray {
    Vec3 org, dir;
    Real tmin, tmax;
};

}  // namespace rt
