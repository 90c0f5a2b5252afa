// camera.h: pinhole (perspective) and orthographic cameras.
//
// The camera is described by the values the user gives (position, look_at, up, horizontal
// fov in degrees, resolution); the derived basis is computed here, once per render, so that
// the reverse pass can differentiate through it.
#pragma once

#include <cmath>

#include "vector.h"

namespace rt {

struct CameraParams {
    Vec3 position, look_at, up;
    Real fov_degrees;          // horizontal field of view
    int width, height;         // resolution in pixels
    int orthographic;          // 0: perspective, 1: orthographic
};

struct Camera {
    Vec3 position;
    Vec3 forward, right, up;   // orthonormal; right = cross(forward, up)
    Real tan_half_fov;         // perspective: half the image-plane width at unit distance
    Real half_width;           // orthographic: half the view's width in world units
    Real aspect;               // height / width
    int width, height, orthographic;
};

RT_HOST_DEVICE RT_INLINE Camera make_camera(const CameraParams& p) {
    Camera c;
    c.position = p.position;
    Vec3 to_target = p.look_at - p.position;
    Real distance = length(to_target);
    c.forward = to_target / distance;
    c.right = normalize(cross(c.forward, p.up));
    c.up = cross(c.right, c.forward);
    c.tan_half_fov = std::tan(p.fov_degrees * (kPi / 360));
    c.half_width = c.tan_half_fov * distance;
    c.aspect = Real(p.height) / Real(p.width);
    c.width = p.width;
    c.height = p.height;
    c.orthographic = p.orthographic;
    return c;
}

// The camera ray through continuous pixel coordinates (x, y): x in [0, width) to the right,
// y in [0, height) downwards, pixel (i, j) covering [j, j+1) x [i, i+1).
RT_HOST_DEVICE RT_INLINE Ray generate_ray(const Camera& c, Real x, Real y) {
    Real sx = 2 * x / Real(c.width) - 1;
    Real sy = 1 - 2 * y / Real(c.height);
    Ray ray;
    if (c.orthographic) {
        ray.org = c.position + c.right * (sx * c.half_width) + c.up * (sy * c.half_width * c.aspect);
        ray.dir = c.forward;
    } else {
        ray.org = c.position;
        ray.dir = normalize(c.forward + c.right * (sx * c.tan_half_fov) +
                            c.up * (sy * c.tan_half_fov * c.aspect));
    }
    ray.tmin = 0;
    ray.tmax = kInfinity;
    return ray;
}

// ---- Projection ------------------------------------------------------------------------

// The continuous pixel coordinates (x right, y down) of world point p: the inverse of
// generate_ray, whose ray through (screen->x, screen->y) passes through p. Returns false (and
// leaves *screen alone) when p is not in front of the camera: dot(p - position, forward) <= 0,
// for both projections (an orthographic ray starts on the plane through position).
RT_HOST_DEVICE RT_INLINE bool project(const Camera& c, Vec3 p, Vec2* screen) {
    Vec3 d = p - c.position;
    Real z = dot(d, c.forward);
    if (!(z > 0)) return false;
    // Image-plane coordinates in [-1, 1]: the inverse of the scales in generate_ray.
    Real scale = c.orthographic ? c.half_width : z * c.tan_half_fov;
    Real sx = dot(d, c.right) / scale;
    Real sy = dot(d, c.up) / (scale * c.aspect);
    *screen = Vec2((sx + 1) * (Real(c.width) / 2), (1 - sy) * (Real(c.height) / 2));
    return true;
}

// ---- Adjoints ---------------------------------------------------------------------------

// Gradients w.r.t. CameraParams' differentiable fields (zero-initialise: DCameraParams{}).
struct DCameraParams {
    Vec3 position, look_at, up;
    Real fov_degrees = 0;
};

// Gradients w.r.t. the fields make_camera derives.
struct DCamera {
    Vec3 position, forward, right, up;
    Real tan_half_fov = 0, half_width = 0;
};

// Back-propagates through make_camera: forward = normalize(look_at - position),
// right = normalize(cross(forward, up)), up' = cross(right, forward), tan(fov / 2) with fov in
// degrees, half_width = tan(fov / 2) |look_at - position|. Adds into *d_p.
RT_HOST_DEVICE RT_INLINE void d_make_camera(const CameraParams& p, const DCamera& d_c, DCameraParams* d_p) {
    Vec3 to_target = p.look_at - p.position;
    Real distance = length(to_target);
    Vec3 forward = to_target / distance;
    Vec3 side = cross(forward, p.up);
    Vec3 right = normalize(side);
    Real tan_half_fov = std::tan(p.fov_degrees * (kPi / 360));
    Vec3 d_forward = d_c.forward, d_right = d_c.right;
    // up' = cross(right, forward)
    d_cross(right, forward, d_c.up, &d_right, &d_forward);
    // right = normalize(cross(forward, up))
    Vec3 d_side = d_normalize(side, d_right);
    d_cross(forward, p.up, d_side, &d_forward, &d_p->up);
    // half_width = tan_half_fov * distance
    Real d_tan = d_c.tan_half_fov + d_c.half_width * distance;
    Real d_distance = d_c.half_width * tan_half_fov;
    // tan_half_fov = tan(fov_degrees * pi / 360)
    d_p->fov_degrees += d_tan * (1 + tan_half_fov * tan_half_fov) * (kPi / 360);
    // forward = to_target / distance, distance = |to_target|
    Vec3 d_to_target = d_normalize(to_target, d_forward) + d_length(to_target, d_distance);
    d_p->look_at += d_to_target;
    d_p->position += d_c.position - d_to_target;
}

// The adjoint of generate_ray(make_camera(p), x, y) w.r.t. p (x, y are held fixed), given the
// gradients w.r.t. the ray's origin and direction. Adds into *d_p.
RT_HOST_DEVICE RT_INLINE void d_generate_ray(const CameraParams& p, Real x, Real y, Vec3 d_org, Vec3 d_dir,
                                             DCameraParams* d_p) {
    Camera c = make_camera(p);
    Real sx = 2 * x / Real(c.width) - 1;
    Real sy = 1 - 2 * y / Real(c.height);
    DCamera d_c;
    d_c.position = d_org;
    if (c.orthographic) {
        // org = position + right sx half_width + up sy half_width aspect; dir = forward
        d_c.right = d_org * (sx * c.half_width);
        d_c.up = d_org * (sy * c.half_width * c.aspect);
        d_c.half_width = dot(d_org, c.right) * sx + dot(d_org, c.up) * (sy * c.aspect);
        d_c.forward = d_dir;
    } else {
        // dir = normalize(q), q = forward + right sx tan + up sy tan aspect
        Vec3 q = c.forward + c.right * (sx * c.tan_half_fov) + c.up * (sy * c.tan_half_fov * c.aspect);
        Vec3 d_q = d_normalize(q, d_dir);
        d_c.forward = d_q;
        d_c.right = d_q * (sx * c.tan_half_fov);
        d_c.up = d_q * (sy * c.tan_half_fov * c.aspect);
        d_c.tan_half_fov = dot(d_q, c.right) * sx + dot(d_q, c.up) * (sy * c.aspect);
    }
    d_make_camera(p, d_c, d_p);
}

// The adjoint of project(make_camera(p), point) w.r.t. p and point, given the gradient
// w.r.t. the pixel coordinates. Adds nothing where project returns false.
RT_HOST_DEVICE RT_INLINE void d_project(const CameraParams& p, Vec3 point, Vec2 d_screen, DCameraParams* d_p,
                                        Vec3* d_point) {
    Camera c = make_camera(p);
    Vec3 d = point - c.position;
    Real z = dot(d, c.forward);
    if (!(z > 0)) return;
    Real a = dot(d, c.right), b = dot(d, c.up);
    // x = (sx + 1) width / 2, y = (1 - sy) height / 2
    Real d_sx = d_screen.x * (Real(c.width) / 2);
    Real d_sy = -d_screen.y * (Real(c.height) / 2);
    // sx = a / scale, sy = b / (scale aspect)
    Real scale = c.orthographic ? c.half_width : z * c.tan_half_fov;
    Real d_a = d_sx / scale;
    Real d_b = d_sy / (scale * c.aspect);
    Real d_scale = -(d_sx * a + d_sy * b / c.aspect) / (scale * scale);
    DCamera d_c;
    Real d_z = 0;
    if (c.orthographic) {
        d_c.half_width = d_scale;
    } else {
        d_z = d_scale * c.tan_half_fov;
        d_c.tan_half_fov = d_scale * z;
    }
    // a = dot(d, right), b = dot(d, up), z = dot(d, forward), d = point - position
    Vec3 d_d = c.right * d_a + c.up * d_b + c.forward * d_z;
    d_c.right = d * d_a;
    d_c.up = d * d_b;
    d_c.forward = d * d_z;
    d_c.position = -d_d;
    *d_point += d_d;
    d_make_camera(p, d_c, d_p);
}

}  // namespace rt
