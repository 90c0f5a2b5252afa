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

}  // namespace rt
