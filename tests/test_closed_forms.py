"""Rendered images against closed forms.

- An emitting triangle seen directly covers exactly its projected area: sum(image) / L is the
  area in pixels of the projected triangle (shoelace formula on the projected vertices).
- A diffuse plane under a polygonal Lambertian emitter: radiance rho / pi * E with E from
  Lambert's formula for the irradiance of a uniform polygon.
- White furnaces: a convex diffuse object in a constant environment reflects a * Le; a closed
  emitting diffuse enclosure seen from inside has radiance Le * sum_{k<=B} a^k.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import raytrace as rt
from conftest import (CameraModel, face_normals, ggx_brdf, make_quad, make_sphere, rt_diffuse,
                      rt_shape, shoelace_area, to_torch)


# ----------------------------------------------------------------------------------------------
# Emitter area
# ----------------------------------------------------------------------------------------------
L_RGB = np.array([1.5, 0.75, 3.0])


def emitter_scene(cam, tri, two_sided=False):
    light = rt.AreaLight(0, to_torch(L_RGB), two_sided=two_sided)
    return rt.Scene(camera=cam.rt(), shapes=[rt_shape(tri, np.array([[0, 1, 2]]), 0)],
                    materials=[rt_diffuse(0.0)], area_lights=[light], envmap=None)


def facing(cam, tri):
    """Winds tri so that its geometric normal faces the camera."""
    n = face_normals(tri, np.array([[0, 1, 2]]))[0]
    to_cam = cam.position - tri.mean(0) if cam.camera_type == "perspective" else -cam.forward
    return tri if n @ to_cam > 0 else tri[[0, 2, 1]]


def pixel_classes(cam, tri):
    """(inside, outside) [H,W] masks: pixels entirely inside / certainly outside the projection."""
    px, py = cam.to_pixels(tri.astype(np.float64))
    col, row = np.meshgrid(np.arange(cam.W + 1.0), np.arange(cam.H + 1.0), indexing="xy")
    # signed edge functions at pixel corners, oriented so that the interior is positive
    sign = np.sign((px[1] - px[0]) * (py[2] - py[0]) - (py[1] - py[0]) * (px[2] - px[0]))
    e = []
    for a, b in ((0, 1), (1, 2), (2, 0)):
        e.append(sign * ((px[b] - px[a]) * (row - py[a]) - (py[b] - py[a]) * (col - px[a])))
    e = np.stack(e)  # [3, H+1, W+1]
    corners = np.stack([e[:, :-1, :-1], e[:, 1:, :-1], e[:, :-1, 1:], e[:, 1:, 1:]], axis=-1)
    inside = np.all(corners > 1e-3, axis=(0, 3))
    outside = np.any(np.all(corners < -1e-3, axis=3), axis=0)
    return inside, outside


CAMERAS = {
    "perspective": dict(position=(0.3, -0.2, 4.0), look_at=(0.0, 0.1, 0.0), up=(0.0, 1.0, 0.0),
                        fov=40.0, hw=(48, 64), camera_type="perspective"),
    "orthographic": dict(position=(0.3, -0.2, 4.0), look_at=(0.0, 0.1, 0.0),
                         up=(0.1, 1.0, 0.0), fov=40.0, hw=(48, 64), camera_type="orthographic"),
    "perspective_rolled": dict(position=(1.5, 0.5, 1.0), look_at=(0.0, 0.0, 0.0),
                               up=(0.0, 0.0, 1.0), fov=55.0, hw=(64, 40),
                               camera_type="perspective"),
}
TRIANGLES = {
    # in the plane z = 0 (parallel to the image plane of the first two cameras)
    "flat": np.array([[-0.9, -0.6, 0.0], [0.8, -0.4, 0.0], [0.1, 0.7, 0.0]], np.float32),
    # tilted out of that plane
    "tilted": np.array([[-0.8, -0.5, 0.4], [0.7, -0.6, -0.5], [0.0, 0.8, 0.1]], np.float32),
}


@pytest.mark.parametrize("tri_name", list(TRIANGLES))
@pytest.mark.parametrize("cam_name", list(CAMERAS))
def test_emitting_triangle_projected_area(cam_name, tri_name):
    cam = CameraModel(**CAMERAS[cam_name])
    tri = facing(cam, TRIANGLES[tri_name])
    px, py = cam.to_pixels(tri.astype(np.float64))
    assert np.all((px > 1) & (px < cam.W - 1) & (py > 1) & (py < cam.H - 1)), "setup: in view"
    area = shoelace_area(px, py)
    assert area > 200.0
    img = rt.render(emitter_scene(cam, tri), spp=32, max_bounces=0, seed=1)
    assert img.shape == (cam.H, cam.W, 3) and img.dtype == torch.float32
    img = img.numpy().astype(np.float64)
    measured = img.sum(axis=(0, 1)) / L_RGB
    np.testing.assert_allclose(measured, area, rtol=0.01)

    # box filter: pixels fully inside see exactly L, pixels outside see nothing
    inside, outside = pixel_classes(cam, tri)
    assert inside.sum() > 50 and outside.sum() > 500
    np.testing.assert_allclose(img[inside], np.broadcast_to(L_RGB, img[inside].shape), rtol=1e-5)
    assert np.all(img[outside] == 0.0)

    # one-sided: the back side is black; a two-sided light shows the same area from behind
    back = tri[[0, 2, 1]]
    img_back = rt.render(emitter_scene(cam, back), spp=4, max_bounces=0, seed=1)
    assert torch.count_nonzero(img_back) == 0, "a one-sided light must not emit backwards"
    img_two = rt.render(emitter_scene(cam, back, two_sided=True), spp=32, max_bounces=0, seed=1)
    measured_two = img_two.numpy().astype(np.float64).sum(axis=(0, 1)) / L_RGB
    np.testing.assert_allclose(measured_two, area, rtol=0.01)


def test_emitting_triangle_seen_at_every_bounce_count():
    """The emitter is seen with its radiance L whatever max_bounces (a black material)."""
    cam = CameraModel(**CAMERAS["perspective"])
    tri = facing(cam, TRIANGLES["flat"])
    inside, _ = pixel_classes(cam, tri)
    for b in (0, 1, 3):
        img = rt.render(emitter_scene(cam, tri), spp=2, max_bounces=b, seed=2).numpy()
        np.testing.assert_allclose(img[inside], np.broadcast_to(L_RGB, img[inside].shape),
                                   rtol=1e-5)


# ----------------------------------------------------------------------------------------------
# Polygonal light
# ----------------------------------------------------------------------------------------------
def polygon_irradiance(x, n, verts, radiance):
    """Irradiance at points x [...,3] with normal n [3] from a uniform Lambertian polygon.

    Lambert's formula: E = L / 2 * |sum_i theta_i (n . Gamma_i)|, with theta_i the angle between
    the directions to consecutive vertices and Gamma_i the unit normal of the plane they span.
    Valid when the polygon lies entirely above the tangent plane of x.
    """
    x = np.asarray(x, np.float64)
    u = np.asarray(verts, np.float64) - x[..., None, :]
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    total = 0.0
    k = u.shape[-2]
    for i in range(k):
        a, b = u[..., i, :], u[..., (i + 1) % k, :]
        theta = np.arccos(np.clip(np.sum(a * b, -1), -1.0, 1.0))
        gamma = np.cross(a, b)
        gamma /= np.linalg.norm(gamma, axis=-1, keepdims=True)
        total = total + theta * (gamma @ np.asarray(n, np.float64))
    return 0.5 * np.abs(total)[..., None] * np.asarray(radiance, np.float64)


def irradiance_numerical(x, n, quad_verts, radiance, m=400):
    """E = L * integral over the emitter of cos(theta) cos(theta') / r^2 dA (midpoint rule)."""
    v0, v1, v3 = (np.asarray(quad_verts[k], np.float64) for k in (0, 1, 3))
    a, b = v1 - v0, v3 - v0
    nl = np.cross(a, b)
    area = np.linalg.norm(nl)
    nl /= area
    s = (np.arange(m) + 0.5) / m
    p = v0 + s[:, None, None] * a + s[None, :, None] * b
    d = p - x
    r2 = np.sum(d * d, -1)
    r = np.sqrt(r2)
    cos = np.clip(d @ n, 0, None) / r
    cosl = np.abs(d @ nl) / r
    return np.mean(cos * cosl / r2) * area * np.asarray(radiance, np.float64)


LIGHT_QUAD = make_quad((1.6, 1.0, 0.0), (0.4, 0.0, 0.0), (0.0, 0.0, 0.4))  # faces -y
PLANE_N = np.array([0.0, 1.0, 0.0])


def test_polygon_irradiance_formula_matches_numerical_integration():
    verts = LIGHT_QUAD[0]
    n = face_normals(verts, LIGHT_QUAD[1])
    assert np.all(n[:, 1] < 0), "setup: the light faces down"
    for x in ([0.0, 0.0, 0.0], [-1.0, 0.0, 1.0], [1.0, 0.0, 0.3], [0.9, 0.0, -0.9]):
        e = polygon_irradiance(np.array(x), PLANE_N, verts, [1.0])
        e_num = irradiance_numerical(np.array(x), PLANE_N, verts, [1.0])
        np.testing.assert_allclose(e, e_num, rtol=2e-4)
    # and the point directly below a small square: E ~ L * A / h^2
    tiny = make_quad((0.0, 10.0, 0.0), (0.01, 0.0, 0.0), (0.0, 0.0, 0.01))[0]
    np.testing.assert_allclose(polygon_irradiance(np.zeros(3), PLANE_N, tiny, [1.0]),
                               4e-4 / 100.0, rtol=1e-4)


RHO = np.array([0.8, 0.5, 0.25])
LE = np.array([3.0, 4.0, 6.0])


def polygon_scene(radiance, hw=(32, 32)):
    # orthographic camera straight down onto the plane y = 0, framing x, z in [-1, 1]
    cam = CameraModel(position=(0.0, 5.0, 0.0), look_at=(0.0, 0.0, 0.0), up=(0.0, 0.0, -1.0),
                      fov=2.0 * np.degrees(np.arctan(0.2)), hw=hw, camera_type="orthographic")
    plane = make_quad((0.0, 0.0, 0.0), (10.0, 0.0, 0.0), (0.0, 0.0, -10.0))  # faces +y
    assert face_normals(plane[0], plane[1])[0, 1] > 0
    scene = rt.Scene(camera=cam.rt(),
                     shapes=[rt_shape(plane[0], plane[1], 0),
                             rt_shape(LIGHT_QUAD[0], LIGHT_QUAD[1], 1)],
                     materials=[rt_diffuse(RHO), rt_diffuse(0.0)],
                     area_lights=[rt.AreaLight(1, to_torch(radiance))])
    return cam, scene


def test_diffuse_plane_under_polygonal_light():
    cam, scene = polygon_scene(LE)
    # expected pixel values: rho / pi * E averaged over a 4x4 grid in each pixel footprint
    col, row = cam.subpixel_grid(4)
    o, d = cam.rays(col, row)
    assert np.allclose(d, [0.0, -1.0, 0.0])
    x = o - (o[..., 1:2] / d[..., 1:2]) * d  # on the plane y = 0
    assert np.all(np.abs(x[..., [0, 2]]) <= 1.0 + 1e-9)
    expected = (RHO / np.pi * polygon_irradiance(x, PLANE_N, LIGHT_QUAD[0], LE)).mean(axis=2)

    img = rt.render(scene, spp=256, max_bounces=1, seed=3).numpy().astype(np.float64)
    assert np.all(np.isfinite(img)) and np.all(img >= 0)
    # the whole image and 8x8-pixel blocks, per channel
    np.testing.assert_allclose(img.sum((0, 1)), expected.sum((0, 1)), rtol=0.015)
    blocks = lambda a: a.reshape(4, 8, 4, 8, 3).sum(axis=(1, 3))  # noqa: E731
    np.testing.assert_allclose(blocks(img), blocks(expected), rtol=0.03)
    # the irradiance varies strongly across the view: this is not a constant image
    assert expected[..., 1].max() > 10 * expected[..., 1].min()

    # twice the radiance, same seed: twice the image
    _, scene2 = polygon_scene(2.0 * LE)
    img2 = rt.render(scene2, spp=256, max_bounces=1, seed=3).numpy().astype(np.float64)
    np.testing.assert_allclose(img2, 2.0 * img, rtol=1e-4, atol=1e-7)


def test_polygonal_light_is_one_sided_and_max_bounces_zero_is_dark():
    cam, scene = polygon_scene(LE, hw=(16, 16))
    # direct lighting off: the plane is black (the light is not in view)
    img0 = rt.render(scene, spp=4, max_bounces=0, seed=0)
    assert torch.count_nonzero(img0) == 0
    # flipped light (facing up, away from the plane): no light reaches the plane
    flipped = rt.Scene(camera=cam.rt(), shapes=[scene.shapes[0],
                                                rt_shape(LIGHT_QUAD[0], LIGHT_QUAD[1][:, [0, 2, 1]],
                                                         1)],
                       materials=scene.materials, area_lights=[rt.AreaLight(1, to_torch(LE))])
    img = rt.render(flipped, spp=16, max_bounces=3, seed=0)
    assert torch.count_nonzero(img) == 0


# ----------------------------------------------------------------------------------------------
# White furnaces
# ----------------------------------------------------------------------------------------------
ENV_LE = np.array([0.5, 1.0, 1.5], np.float32)


def furnace_sphere_scene(albedo):
    cam = CameraModel(position=(0.0, 0.3, 4.0), look_at=(0.0, 0.0, 0.0), up=(0.0, 1.0, 0.0),
                      fov=40.0, hw=(32, 32))
    v, i, _ = make_sphere(16, 32)
    env = rt.EnvironmentMap(to_torch(np.broadcast_to(ENV_LE, (8, 16, 3)).copy()))
    scene = rt.Scene(camera=cam.rt(), shapes=[rt_shape(v, i, 0)],
                     materials=[rt_diffuse(albedo)], area_lights=[], envmap=env)
    return scene


@pytest.mark.parametrize("albedo", [1.0, 0.8, (0.2, 0.5, 0.9)])
def test_white_furnace_convex_sphere_in_constant_environment(albedo):
    a = np.broadcast_to(np.asarray(albedo, np.float64), (3,))
    scene = furnace_sphere_scene(albedo)
    for bounces in (0, 1, 2, 4):
        img = rt.render(scene, spp=32, max_bounces=bounces, seed=bounces,
                        channels=("radiance", "alpha")).numpy().astype(np.float64)
        rad, alpha = img[..., :3], img[..., 3]
        covered, background = alpha == 1.0, alpha == 0.0
        assert covered.sum() > 150 and background.sum() > 300
        np.testing.assert_allclose(rad[background],
                                   np.broadcast_to(ENV_LE, rad[background].shape), rtol=1e-5)
        if bounces == 0:
            assert np.all(rad[covered] == 0.0), "max_bounces=0: the sphere is black"
            continue
        expect = a * ENV_LE
        # a convex object never sees itself: every covered pixel is a * Le
        np.testing.assert_allclose(rad[covered].mean(0), expect, rtol=0.01)
        # per pixel (32 spp): Monte Carlo noise only, no pixel far off
        np.testing.assert_allclose(rad[covered], np.broadcast_to(expect, rad[covered].shape),
                                   rtol=0.3)
        np.testing.assert_allclose(np.median(rad[covered], axis=0), expect, rtol=0.02)
        # partially covered pixels lie in between
        part = ~(covered | background)
        lo = np.minimum(expect, ENV_LE) - 0.2 * ENV_LE
        hi = np.maximum(expect, ENV_LE) + 0.2 * ENV_LE
        assert np.all((rad[part] >= lo) & (rad[part] <= hi))


@pytest.mark.parametrize("albedo", [0.5, (0.9, 0.7, 0.3)])
def test_white_furnace_emitting_enclosure(albedo):
    """Inside a closed diffuse emitter: L = Le * sum_{k=0..B} a^k for max_bounces B."""
    a = np.broadcast_to(np.asarray(albedo, np.float64), (3,))
    le = np.array([0.5, 1.0, 2.0])
    v, i, _ = make_sphere(24, 48, radius=2.0)
    cam = CameraModel(position=(0.0, 0.0, 0.0), look_at=(0.3, 0.2, -1.0), up=(0.0, 1.0, 0.0),
                      fov=70.0, hw=(24, 24))
    scene = rt.Scene(camera=cam.rt(), shapes=[rt_shape(v, i, 0)],
                     materials=[rt_diffuse(albedo, two_sided=True)],
                     area_lights=[rt.AreaLight(0, to_torch(le), two_sided=True)])
    for bounces in (0, 1, 2, 3, 5):
        img = rt.render(scene, spp=32, max_bounces=bounces, seed=10 + bounces)
        img = img.numpy().astype(np.float64)
        expect = le * sum(a ** k for k in range(bounces + 1))
        if bounces == 0:
            np.testing.assert_allclose(img, np.broadcast_to(le, img.shape), rtol=1e-5)
            continue
        np.testing.assert_allclose(img.mean((0, 1)), expect, rtol=0.01,
                                   err_msg=f"max_bounces={bounces}")
        # no pixel is far off (noise only): the median pixel is close too
        np.testing.assert_allclose(np.median(img, axis=(0, 1)), expect, rtol=0.05)
        assert np.all(img >= le * 0.999), "the emitted radiance alone is a lower bound"


# ----------------------------------------------------------------------------------------------
# Glossy furnace
# ----------------------------------------------------------------------------------------------
def directional_albedo(kd, ks, roughness, theta_o, n_theta=48, n_phi=256):
    """integral over the hemisphere of f(wo, wi) cos(theta_i), by Gauss-Legendre x midpoint."""
    x, w = np.polynomial.legendre.leggauss(n_theta)
    # theta in [0, pi/2] split into 4 panels
    edges = np.linspace(0.0, np.pi / 2, 5)
    th = ((edges[:-1, None] + edges[1:, None]) / 2 + (edges[1:, None] - edges[:-1, None]) / 2 * x).ravel()
    wt = ((edges[1:, None] - edges[:-1, None]) / 2 * w).ravel()
    ph = (np.arange(n_phi) + 0.5) / n_phi * 2 * np.pi
    tt, pp = np.meshgrid(th, ph, indexing="ij")
    wi = np.stack([np.sin(tt) * np.cos(pp), np.sin(tt) * np.sin(pp), np.cos(tt)], -1).reshape(-1, 3)
    wo = np.broadcast_to([np.sin(theta_o), 0.0, np.cos(theta_o)], wi.shape)
    f = ggx_brdf(kd, ks, roughness, wo, wi)
    weight = (np.outer(wt * np.sin(th) * np.cos(th), np.full(n_phi, 2 * np.pi / n_phi))).reshape(-1)
    return np.sum(f * weight[:, None], axis=0)


@pytest.mark.parametrize("theta_deg,roughness", [(0.0, 0.3), (45.0, 0.3), (70.0, 0.5), (30.0, 0.1)])
def test_glossy_plane_in_constant_environment(theta_deg, roughness):
    """A flat glossy plane in a constant environment reflects Le * integral of f cos."""
    kd, ks = np.array([0.2, 0.2, 0.2]), np.array([0.9, 0.6, 0.3])
    th = np.radians(theta_deg)
    n = np.array([0.0, np.sin(th), np.cos(th)])  # angle theta with the view direction +z
    cam = CameraModel((0.0, 0.0, 5.0), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0),
                      2 * np.degrees(np.arctan(1.0 / 5.0)), (24, 24), "orthographic")
    a = np.array([1.0, 0.0, 0.0])
    b = np.cross(n, a)
    q = make_quad((0.0, 0.0, 0.0), 4.0 * a, 4.0 * b)
    assert face_normals(q[0], q[1])[0] @ n > 0
    scene = rt.Scene(camera=cam.rt(), shapes=[rt_shape(q[0], q[1], 0)],
                     materials=[rt_diffuse(kd, ks=ks, roughness=roughness)], area_lights=[],
                     envmap=rt.EnvironmentMap(to_torch(np.broadcast_to(ENV_LE, (8, 16, 3)).copy())))
    img = rt.render(scene, spp=64, max_bounces=1, seed=7, channels=("radiance", "alpha")).numpy()
    assert np.all(img[..., 3] == 1.0)
    expect = ENV_LE * directional_albedo(kd, ks, roughness, th)
    np.testing.assert_allclose(img[..., :3].astype(np.float64).mean((0, 1)), expect, rtol=0.02)
    # more bounces add nothing: a plane never sees itself
    img3 = rt.render(scene, spp=64, max_bounces=3, seed=8).numpy()
    np.testing.assert_allclose(img3.astype(np.float64).mean((0, 1)), expect, rtol=0.02)
