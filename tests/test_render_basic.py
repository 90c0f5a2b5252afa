"""Basic rendering conventions: orientation, channels, coverage, depth, normals, albedo,
shape ids, orthographic framing, textures, smooth shading, one-sided materials, background."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import raytrace as rt
from conftest import (CameraModel, bilinear, envmap_lookup, face_normals, make_quad, make_sphere,
                      normalize, rt_diffuse, rt_shape, to_torch)

CH_WIDTH = {"radiance": 3, "alpha": 1, "depth": 1, "normal": 3, "albedo": 3, "shape_id": 1}
ALL = tuple(CH_WIDTH)


def split(img, channels):
    out, k = {}, 0
    for c in channels:
        out[c] = img[..., k:k + CH_WIDTH[c]]
        k += CH_WIDTH[c]
    assert k == img.shape[-1]
    return out


def emitter_quad_in_view(cam, sx0, sx1, sy0, sy1, depth=None):
    """A quad facing the camera covering image-plane [sx0, sx1] x [sy0, sy1] on the plane
    perpendicular to the view at `depth` (default: the look-at distance)."""
    depth = cam.dist if depth is None else depth
    hx = cam.tan * (depth if cam.camera_type == "perspective" else cam.dist)
    hy = hx * cam.H / cam.W
    c = cam.position + depth * cam.forward
    center = c + 0.5 * (sx0 + sx1) * hx * cam.right + 0.5 * (sy0 + sy1) * hy * cam.up
    u = 0.5 * (sx1 - sx0) * hx * cam.right
    v = 0.5 * (sy1 - sy0) * hy * cam.up
    verts, idx, uvs = make_quad(center, u, v)
    n = face_normals(verts, idx)[0]
    assert n @ cam.forward < 0  # cross(right, up) = -forward: faces the camera
    return verts, idx, uvs


# ----------------------------------------------------------------------------------------------
# Orientation
# ----------------------------------------------------------------------------------------------
FRAMES = {
    "front": ((0.0, 0.0, 4.0), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "upside_down": ((0.0, 0.0, 4.0), (0.0, 0.0, 0.0), (0.0, -1.0, 0.0)),
    "side": ((3.0, 1.0, 0.0), (0.0, 1.0, 0.0), (0.0, 1.0, 0.0)),
    "down": ((0.0, 5.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
    "rolled_oblique_up": ((1.0, 2.0, 3.0), (0.0, 0.0, 0.0), (0.3, 1.0, 0.5)),
}


@pytest.mark.parametrize("camera_type", ["perspective", "orthographic"])
@pytest.mark.parametrize("frame", list(FRAMES))
def test_image_orientation(frame, camera_type):
    pos, look, up = FRAMES[frame]
    cam = CameraModel(pos, look, up, 50.0, (24, 32), camera_type)
    # world-space sanity of the reference frame: up is the camera's up, right = forward x up
    assert cam.up @ np.asarray(up) > 0
    tl = emitter_quad_in_view(cam, -2.0, 0.0, 0.0, 2.0)  # top-left quadrant (and beyond)
    br = emitter_quad_in_view(cam, 0.5, 1.5, -1.5, -0.5)  # bottom-right corner block
    lt, lb = np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.25, 0.125])
    scene = rt.Scene(camera=cam.rt(), shapes=[rt_shape(tl[0], tl[1], 0), rt_shape(br[0], br[1], 0)],
                     materials=[rt_diffuse(0.0)],
                     area_lights=[rt.AreaLight(0, to_torch(lt)), rt.AreaLight(1, to_torch(lb))])
    img = rt.render(scene, spp=4, max_bounces=0, seed=0)
    assert img.shape == (24, 32, 3) and img.dtype == torch.float32
    img = img.numpy()
    expect = np.zeros((24, 32, 3), np.float32)
    expect[:12, :16] = lt
    expect[18:, 24:] = lb  # sx in [0.5, 1] -> columns 24..31; sy in [-1, -0.5] -> rows 18..23
    np.testing.assert_allclose(img, expect, rtol=1e-5, atol=0)


# ----------------------------------------------------------------------------------------------
# Channels: shapes, dtypes, stacking order
# ----------------------------------------------------------------------------------------------
L_EMIT = np.array([0.25, 0.5, 0.75])
KD = np.array([0.1, 0.2, 0.3])
DIST = 7.0


def half_covered_scene(hw=(6, 8), camera_type="orthographic"):
    """The left half of the view covered by an emitting quad facing the camera at distance 7."""
    cam = CameraModel((0.0, 0.0, DIST), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0),
                      2 * np.degrees(np.arctan(1.0 / DIST)), hw, camera_type)
    q = make_quad((-1.5, 0.0, 0.0), (1.5, 0.0, 0.0), (0.0, 3.0, 0.0))  # x in [-3, 0], faces +z
    scene = rt.Scene(camera=cam.rt(), shapes=[rt_shape(q[0], q[1], 0)],
                     materials=[rt_diffuse(KD)], area_lights=[rt.AreaLight(0, to_torch(L_EMIT))])
    return cam, scene


def expected_channels(hw):
    h, w = hw
    left = np.zeros((h, w), bool)
    left[:, : w // 2] = True
    e = {c: np.zeros((h, w, CH_WIDTH[c])) for c in ALL}
    e["radiance"][left] = L_EMIT
    e["alpha"][left] = 1.0
    e["depth"][left] = DIST
    e["normal"][left] = [0.0, 0.0, 1.0]
    e["albedo"][left] = KD
    e["shape_id"][:] = -1.0
    e["shape_id"][left] = 0.0
    return e


def channel_orders():
    subsets = [s for r in range(1, 7) for s in itertools.combinations(ALL, r)]
    perms = [tuple(reversed(ALL)), ("depth", "radiance", "alpha"), ("shape_id", "normal"),
             ("albedo", "depth", "shape_id", "alpha", "radiance", "normal")]
    return subsets + perms


def test_channels_shapes_dtypes_and_order():
    hw = (6, 8)
    _, scene = half_covered_scene(hw)
    exp = expected_channels(hw)
    for channels in channel_orders():
        img = rt.render(scene, spp=2, max_bounces=0, seed=0, channels=channels)
        width = sum(CH_WIDTH[c] for c in channels)
        assert img.shape == (hw[0], hw[1], width) and img.dtype == torch.float32, channels
        got = split(img.numpy(), channels)
        for c in channels:
            np.testing.assert_allclose(got[c], exp[c], rtol=1e-5, atol=1e-5,
                                       err_msg=f"channel {c} in {channels}")


def test_channels_accept_a_list_and_default_is_radiance():
    _, scene = half_covered_scene()
    a = rt.render(scene, spp=2, max_bounces=0, seed=0)
    b = rt.render(scene, spp=2, max_bounces=0, seed=0, channels=["radiance"])
    assert a.shape == (6, 8, 3)
    assert torch.equal(a, b)


def test_alpha_of_half_covered_pixels():
    hw = (15, 9)  # odd width: the quad's edge x = 0 splits column 4 in half
    _, scene = half_covered_scene(hw)
    img = rt.render(scene, spp=256, max_bounces=0, seed=4, channels=("alpha", "radiance"))
    alpha, rad = img[..., 0].numpy(), img[..., 1:].numpy()
    assert np.all(alpha[:, :4] == 1.0) and np.all(alpha[:, 5:] == 0.0)
    np.testing.assert_allclose(alpha[:, 4], 0.5, atol=0.15)
    np.testing.assert_allclose(alpha[:, 4].mean(), 0.5, atol=0.04)
    # the radiance of a half-covered pixel is half the emitter's
    np.testing.assert_allclose(rad[:, 4].mean(0), 0.5 * L_EMIT, rtol=0.08)
    np.testing.assert_allclose(rad[:, 4] / L_EMIT, alpha[:, 4:5].repeat(3, 1), atol=1e-5)


# ----------------------------------------------------------------------------------------------
# Depth, normals, albedo, shape ids
# ----------------------------------------------------------------------------------------------
TILT_N = normalize([0.0, np.sin(np.radians(30)), np.cos(np.radians(30))])


def plane_scene(cam, normal, point=(0.0, 0.0, 0.0), flip=False, two_sided=False, kd=KD,
                envmap=None, size=20.0):
    normal = normalize(normal)
    a = normalize(np.cross(normal, [1.0, 0.0, 0.0] if abs(normal[0]) < 0.9 else [0, 1.0, 0]))
    b = np.cross(normal, a)
    q = make_quad(point, size * a, size * b)
    assert face_normals(q[0], q[1])[0] @ normal > 0
    idx = q[1][:, [0, 2, 1]] if flip else q[1]
    return rt.Scene(camera=cam.rt(), shapes=[rt_shape(q[0], idx, 0)],
                    materials=[rt_diffuse(kd, two_sided=two_sided)], area_lights=[],
                    envmap=envmap)


def plane_t(o, d, normal, point=(0.0, 0.0, 0.0)):
    return ((np.asarray(point) - o) @ normal) / (d @ normal)


@pytest.mark.parametrize("camera_type", ["perspective", "orthographic"])
@pytest.mark.parametrize("tilted", [False, True])
def test_depth_of_a_plane(camera_type, tilted):
    cam = CameraModel((0.0, 0.0, 5.0), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0), 50.0, (12, 16),
                      camera_type)
    n = TILT_N if tilted else np.array([0.0, 0.0, 1.0])
    scene = plane_scene(cam, n)
    img = rt.render(scene, spp=16, max_bounces=0, seed=0, channels=("depth", "alpha"))
    depth, alpha = img[..., 0].numpy(), img[..., 1].numpy()
    assert np.all(alpha == 1.0)
    col, row = cam.subpixel_grid(8)
    o, d = cam.rays(col, row)
    expect = plane_t(o, d, n).mean(axis=2)  # d is unit: t is the distance
    np.testing.assert_allclose(depth, expect, rtol=2e-3)
    if not tilted:
        if camera_type == "orthographic":
            np.testing.assert_allclose(depth, 5.0, rtol=1e-5)
        else:
            assert depth[0, 0] > depth[6, 8] * 1.1  # corners are farther than the centre


def test_depth_and_channels_zero_on_misses():
    cam = CameraModel((0.0, 0.0, 5.0), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0), 50.0, (8, 8))
    scene = plane_scene(cam, [0.0, 0.0, 1.0], size=0.1)  # covers the centre pixels only
    img = rt.render(scene, spp=4, max_bounces=1, seed=0, channels=ALL).numpy()
    ch = split(img, ALL)
    miss = ch["alpha"][..., 0] == 0
    assert miss.sum() > 50
    for c in ("radiance", "depth", "normal", "albedo"):
        assert np.all(ch[c][miss] == 0), c
    assert np.all(ch["shape_id"][miss] == -1)


@pytest.mark.parametrize("camera_type", ["perspective", "orthographic"])
@pytest.mark.parametrize("flip,two_sided", [(False, False), (True, False), (True, True)])
def test_normal_channel_faces_the_camera(flip, two_sided, camera_type):
    cam = CameraModel((0.5, 0.5, 5.0), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0), 40.0, (8, 10),
                      camera_type)
    scene = plane_scene(cam, TILT_N, flip=flip, two_sided=two_sided)
    img = rt.render(scene, spp=4, max_bounces=0, seed=0, channels=("normal", "alpha", "albedo"))
    img = img.numpy()
    assert np.all(img[..., 3] == 1.0)
    # the geometric normal is TILT_N (or -TILT_N when flipped); reported toward the camera
    np.testing.assert_allclose(img[..., :3], np.broadcast_to(TILT_N, (8, 10, 3)), atol=1e-4)
    # the albedo channel is the diffuse reflectance, whichever side is hit
    np.testing.assert_allclose(img[..., 4:7], np.broadcast_to(KD, (8, 10, 3)), rtol=1e-5)


def test_shape_id_channel_matches_intersect_at_pixel_centres():
    cam = CameraModel((0.0, 0.0, 6.0), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0), 45.0, (20, 28))
    a = make_quad((-0.9, 0.1, 0.0), (0.77, 0.0, 0.0), (0.0, 1.13, 0.0))
    b = make_quad((0.6, -0.2, 1.0), (0.81, 0.0, 0.0), (0.0, 0.67, 0.0))  # nearer, overlapping a
    c = make_quad((0.3, -1.2, -1.0), (0.5, 0.0, 0.0), (0.0, 0.3, 0.0))
    shapes = [rt_shape(*a[:2], 0), rt_shape(*b[:2], 0), rt_shape(*c[:2], 0)]
    scene = rt.Scene(camera=cam.rt(), shapes=shapes, materials=[rt_diffuse(0.5)],
                     area_lights=[])
    img = rt.render(scene, spp=4, max_bounces=0, seed=0, channels=("shape_id",))
    assert img.shape == (20, 28, 1)
    sid = img[..., 0].numpy()
    col, row = cam.pixel_centers()
    o, d = cam.rays(col, row)
    hits = scene.intersect(to_torch(o.reshape(-1, 3)), to_torch(d.reshape(-1, 3)))
    ref = hits["shape_id"].numpy().reshape(20, 28)
    assert np.array_equal(sid, ref.astype(np.float32))
    for k in (-1, 0, 1, 2):
        assert np.any(ref == k), f"setup: shape {k} visible"


# ----------------------------------------------------------------------------------------------
# Orthographic framing
# ----------------------------------------------------------------------------------------------
def test_orthographic_framing():
    """The orthographic view frames the look-at plane exactly as the perspective one does, and
    does not shrink with depth."""
    h, w = 12, 16
    pos, look = np.array([0.0, 0.0, 4.0]), np.zeros(3)
    hx = np.tan(np.radians(20.0)) * 4.0
    hy = hx * h / w
    expect = np.zeros((h, w))
    expect[3:9, 4:12] = 1.0  # the middle half of the view in each direction
    masks = {}
    for camera_type in ("perspective", "orthographic"):
        cam = CameraModel(pos, look, (0.0, 1.0, 0.0), 40.0, (h, w), camera_type)
        for z in (0.0, -6.0):
            q = make_quad((0.0, 0.0, z), (hx / 2, 0.0, 0.0), (0.0, hy / 2, 0.0))
            scene = rt.Scene(camera=cam.rt(), shapes=[rt_shape(q[0], q[1], 0)],
                             materials=[rt_diffuse(0.5)], area_lights=[])
            img = rt.render(scene, spp=4, max_bounces=0, seed=0, channels=("alpha", "depth"))
            masks[camera_type, z] = img[..., 0].numpy()
            if camera_type == "orthographic":
                d = img[..., 1].numpy()
                np.testing.assert_allclose(d[expect == 1], 4.0 - z, rtol=1e-5)
    np.testing.assert_array_equal(masks["perspective", 0.0], expect)
    np.testing.assert_array_equal(masks["orthographic", 0.0], expect)
    np.testing.assert_array_equal(masks["orthographic", -6.0], expect)
    # perspective: the farther quad is 10/4 times smaller, i.e. inside the middle block
    far = masks["perspective", -6.0]
    assert 0 < far.sum() < 0.25 * expect.sum()


# ----------------------------------------------------------------------------------------------
# Textures
# ----------------------------------------------------------------------------------------------
CHECKER = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],   # row 0 (v = 0): red, green
                    [[0.0, 0.0, 1.0], [1.0, 1.0, 0.5]]],  # row 1 (v = 1/2..1): blue, yellow
                   np.float32)


def texture_setup(hw=(16, 16)):
    # orthographic, looking down -z at the square [-1, 1]^2 that fills the view
    cam = CameraModel((0.0, 0.0, 3.0), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0),
                      2 * np.degrees(np.arctan(1.0 / 3.0)), hw, "orthographic")
    col, row = cam.subpixel_grid(8)
    o, _ = cam.rays(col, row)
    u, v = (o[..., 0] + 1) / 2, (o[..., 1] + 1) / 2  # the quad's uv at each sub-pixel point
    return cam, u, v


def test_texture_on_a_quad_with_uvs():
    cam, u, v = texture_setup()
    q = make_quad((0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0))  # uv (0,0) bottom-left
    env = rt.EnvironmentMap(torch.ones(4, 8, 3))
    scene = rt.Scene(camera=cam.rt(), shapes=[rt_shape(q[0], q[1], 0, uvs=q[2])],
                     materials=[rt_diffuse(CHECKER)], area_lights=[], envmap=env)
    expect = bilinear(CHECKER, u, v).mean(axis=2)
    img = rt.render(scene, spp=64, max_bounces=1, seed=0, channels=("albedo", "radiance"))
    albedo, rad = img[..., :3].numpy(), img[..., 3:].numpy()
    np.testing.assert_allclose(albedo, expect, atol=0.02)
    # texel centres appear in the right quadrants: bottom-left is texel (0,0) (red), ...
    h, w = 16, 16
    np.testing.assert_allclose(albedo[3 * h // 4, w // 4], CHECKER[0, 0], atol=0.15)
    np.testing.assert_allclose(albedo[3 * h // 4, 3 * w // 4], CHECKER[0, 1], atol=0.15)
    np.testing.assert_allclose(albedo[h // 4, w // 4], CHECKER[1, 0], atol=0.15)
    np.testing.assert_allclose(albedo[h // 4, 3 * w // 4], CHECKER[1, 1], atol=0.15)
    # under a uniform white environment the diffuse quad reflects its albedo
    np.testing.assert_allclose(rad.mean((0, 1)), expect.mean((0, 1)), rtol=0.02)
    np.testing.assert_allclose(rad, expect, atol=0.15)


def test_texture_without_uvs_uses_barycentrics():
    cam, u, v = texture_setup()
    tri = np.array([[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [-1.0, 1.0, 0.0]], np.float32)
    rng = np.random.default_rng(0)
    tex = rng.uniform(0, 1, (3, 5, 3)).astype(np.float32)
    scene = rt.Scene(camera=cam.rt(), shapes=[rt_shape(tri, np.array([[0, 1, 2]]), 0)],
                     materials=[rt_diffuse(tex)], area_lights=[])
    img = rt.render(scene, spp=64, max_bounces=0, seed=0, channels=("albedo", "alpha")).numpy()
    inside = (u + v).max(axis=2) < 0.999  # pixels entirely inside the triangle
    assert inside.sum() > 80
    expect = bilinear(tex, u, v).mean(axis=2)  # barycentric (u, v) = ((x+1)/2, (y+1)/2)
    np.testing.assert_allclose(img[..., :3][inside], expect[inside], atol=0.03)
    assert np.all(img[..., 3][inside] == 1.0)


def test_roughness_and_specular_textures_are_accepted():
    cam, _, _ = texture_setup((8, 8))
    q = make_quad((0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
    mat = rt.Material(to_torch(CHECKER), specular_reflectance=to_torch(CHECKER * 0.5),
                      roughness=torch.full((2, 2, 1), 0.3))
    scene = rt.Scene(camera=cam.rt(), shapes=[rt_shape(q[0], q[1], 0, uvs=q[2])],
                     materials=[mat], area_lights=[],
                     envmap=rt.EnvironmentMap(torch.ones(4, 8, 3)))
    img = rt.render(scene, spp=4, max_bounces=1, seed=0)
    assert torch.isfinite(img).all() and img.min() >= 0 and img.max() > 0


# ----------------------------------------------------------------------------------------------
# Smooth vs flat shading
# ----------------------------------------------------------------------------------------------
def test_smooth_and_flat_normals():
    v, i, n = make_sphere(6, 12)
    cam = CameraModel((0.3, 0.4, 4.0), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0), 35.0, (32, 32))
    flat = rt.Scene(camera=cam.rt(), shapes=[rt_shape(v, i, 0)], materials=[rt_diffuse(0.5)],
                    area_lights=[])
    smooth = rt.Scene(camera=cam.rt(), shapes=[rt_shape(v, i, 0, normals=n)],
                      materials=[rt_diffuse(0.5)], area_lights=[])
    nf = rt.render(flat, spp=16, max_bounces=0, seed=0, channels=("normal",))[..., :3].numpy()
    ns = rt.render(smooth, spp=16, max_bounces=0, seed=0, channels=("normal",))[..., :3].numpy()

    # pixels whose centre and four corners hit the same triangle
    col, row = cam.pixel_centers()
    ids, uvs = [], None
    for dc, dr in ((0, 0), (-0.5, -0.5), (0.5, -0.5), (-0.5, 0.5), (0.5, 0.5)):
        o, d = cam.rays(col + dc, row + dr)
        hits = flat.intersect(to_torch(o.reshape(-1, 3)), to_torch(d.reshape(-1, 3)))
        ids.append(hits["triangle_id"].numpy().reshape(32, 32))
        if uvs is None:
            uvs = hits["uv"].numpy().reshape(32, 32, 2).astype(np.float64)
            d_centre = d
    ids = np.stack(ids)
    interior = np.all(ids == ids[0], axis=0) & (ids[0] >= 0)
    assert interior.sum() > 100
    tri = i[ids[0][interior]]
    fn = normalize(face_normals(v, i))[ids[0][interior]]
    toward = -d_centre[interior]
    fn *= np.sign(np.sum(fn * toward, -1))[:, None]
    np.testing.assert_allclose(nf[interior], fn, atol=1e-4)

    # smooth: the interpolated vertex normal (normalised), facing the camera
    b = uvs[interior]
    vn = n.astype(np.float64)[tri]
    sn = normalize((1 - b[:, :1] - b[:, 1:]) * vn[:, 0] + b[:, :1] * vn[:, 1] + b[:, 1:] * vn[:, 2])
    sn *= np.sign(np.sum(sn * toward, -1))[:, None]
    np.testing.assert_allclose(ns[interior], sn, atol=0.03)
    # on a coarse sphere the two differ clearly
    ang = np.degrees(np.arccos(np.clip(np.sum(nf[interior] * ns[interior], -1), -1, 1)))
    assert np.mean(ang) > 5.0


# ----------------------------------------------------------------------------------------------
# One-sided materials
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flip,two_sided,lit", [(False, False, True), (True, False, False),
                                                 (True, True, True), (False, True, True)])
def test_one_sided_material_is_black_from_behind(flip, two_sided, lit):
    cam = CameraModel((0.0, 0.5, 4.0), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0), 30.0, (16, 16))
    env = rt.EnvironmentMap(torch.full((4, 8, 3), 2.0))
    scene = plane_scene(cam, [0.0, 0.2, 1.0], flip=flip, two_sided=two_sided, kd=0.4,
                        envmap=env, size=0.7)
    img = rt.render(scene, spp=32, max_bounces=2, seed=1, channels=("radiance", "alpha"))
    rad, alpha = img[..., :3].numpy(), img[..., 3].numpy()
    covered = alpha == 1.0
    assert covered.sum() > 20 and (alpha == 0).sum() > 20
    np.testing.assert_allclose(rad[alpha == 0], 2.0, rtol=1e-5)  # background
    if lit:
        np.testing.assert_allclose(rad[covered].mean(), 0.4 * 2.0, rtol=0.025)
    else:
        assert np.all(rad[covered] == 0.0), "a one-sided material seen from behind is black"


# ----------------------------------------------------------------------------------------------
# Environment map seen directly
# ----------------------------------------------------------------------------------------------
def smooth_envmap(h=16, w=32):
    v = (np.arange(h) + 0.5) / h
    u = (np.arange(w) + 0.5) / w
    uu, vv = np.meshgrid(u, v, indexing="xy")
    r = 0.5 + 0.4 * np.cos(2 * np.pi * uu)
    g = 0.5 + 0.4 * np.sin(2 * np.pi * uu) * np.sin(np.pi * vv)
    b = 0.2 + 0.7 * vv
    return np.stack([r, g, b], -1).astype(np.float32)


@pytest.mark.parametrize("look_at", [(0.0, 0.0, -1.0), (1.0, 0.3, 0.0), (-0.2, -1.0, 0.4)])
def test_environment_map_background(look_at):
    vals = smooth_envmap()
    cam = CameraModel((0.0, 0.0, 0.0), look_at, (0.0, 1.0, 0.0), 90.0, (12, 16))
    far = make_quad((0.0, 100.0, 0.0), (0.01, 0.0, 0.0), (0.0, 0.0, 0.01))  # never in view
    scene = rt.Scene(camera=cam.rt(), shapes=[rt_shape(far[0], far[1], 0)],
                     materials=[rt_diffuse(0.5)], area_lights=[],
                     envmap=rt.EnvironmentMap(to_torch(vals)))
    img = rt.render(scene, spp=64, max_bounces=0, seed=0).numpy()
    col, row = cam.subpixel_grid(6)
    _, d = cam.rays(col, row)
    expect = envmap_lookup(vals, d).mean(axis=2)
    np.testing.assert_allclose(img, expect, atol=0.02)

    # orthographic: every ray looks along `forward`
    cam_o = CameraModel((0.0, 0.0, 0.0), look_at, (0.0, 1.0, 0.0), 40.0, (4, 4), "orthographic")
    scene_o = rt.Scene(camera=cam_o.rt(), shapes=[rt_shape(far[0], far[1], 0)],
                       materials=[rt_diffuse(0.5)], area_lights=[],
                       envmap=rt.EnvironmentMap(to_torch(vals)))
    img_o = rt.render(scene_o, spp=4, max_bounces=0, seed=0).numpy()
    np.testing.assert_allclose(img_o, np.broadcast_to(envmap_lookup(vals, cam_o.forward),
                                                      img_o.shape), rtol=1e-4)


def test_a_loss_on_a_channel_without_gradient_warns_naming_it():
    """shape_id never carries a gradient, nor a second copy of a channel: a loss on them warns,
    naming them, and the rest of the gradient still arrives."""
    from test_render_batch import _scene
    scene = _scene()
    verts = scene.shapes[0].vertices.requires_grad_(True)
    img = rt.render(scene, spp=1, channels=("radiance", "alpha", "alpha", "shape_id"))
    with pytest.warns(RuntimeWarning, match=r"\['alpha', 'shape_id'\].*carry no gradient"):
        (img[..., :3].sum() + img[..., 4].sum() + img[..., 5].sum()).backward()
    assert verts.grad is not None  # (the radiance part still arrives)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rt.render(scene, spp=1, channels=("radiance", "alpha", "depth", "normal", "albedo"))[..., :11].sum().backward()
