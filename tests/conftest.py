"""Shared scene builders and reference computations for the raytrace test suite.

Geometry builders return plain numpy arrays (float32 vertices, int64 indices) so the tests can
compute closed forms from exactly the values the renderer sees; `to_torch` and the `rt_*`
helpers wrap them into raytrace objects. Camera helpers implement the projection convention of
the API contract (pixel (0, 0) top-left, `up` to the top, box-filtered pixels) in float64.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

import raytrace as rt


# ----------------------------------------------------------------------------------------------
# Small vector helpers (float64 numpy)
# ----------------------------------------------------------------------------------------------
def normalize(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def to_torch(a, dtype=None):
    """numpy -> torch, float arrays as float32 and integer arrays as int64 unless `dtype`."""
    a = np.asarray(a)
    if dtype is None:
        dtype = torch.int64 if np.issubdtype(a.dtype, np.integer) else torch.float32
    return torch.as_tensor(np.ascontiguousarray(a)).to(dtype)


# ----------------------------------------------------------------------------------------------
# Geometry builders
# ----------------------------------------------------------------------------------------------
def make_quad(center, u_axis, v_axis):
    """A parallelogram with corners center +- u_axis +- v_axis.

    Returns (vertices [4,3] float32, indices [2,3] int64, uvs [4,2] float32). The geometric
    normal of both triangles is along cross(u_axis, v_axis); uv (0,0) is at center-u-v, u grows
    along u_axis and v along v_axis.
    """
    c = np.asarray(center, np.float64)
    u = np.asarray(u_axis, np.float64)
    v = np.asarray(v_axis, np.float64)
    verts = np.stack([c - u - v, c + u - v, c + u + v, c - u + v]).astype(np.float32)
    idx = np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int64)
    uvs = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float32)
    return verts, idx, uvs


def face_normals(verts, idx):
    """Unnormalised geometric normals cross(v1 - v0, v2 - v0), float64 [M,3]."""
    v = np.asarray(verts, np.float64)
    i = np.asarray(idx)
    return np.cross(v[i[:, 1]] - v[i[:, 0]], v[i[:, 2]] - v[i[:, 0]])


def orient_outward(verts, idx, center):
    """Flips triangles of a star-shaped closed mesh so their normals point away from center."""
    idx = np.array(idx, dtype=np.int64, copy=True)
    n = face_normals(verts, idx)
    centroid = np.asarray(verts, np.float64)[idx].mean(axis=1)
    flip = (n * (centroid - np.asarray(center, np.float64))).sum(-1) < 0
    idx[flip] = idx[flip][:, [0, 2, 1]]
    return idx


def make_sphere(n_theta=16, n_phi=32, radius=1.0, center=(0.0, 0.0, 0.0)):
    """A closed lat-long sphere (y up) with outward winding and one vertex at each pole.

    Returns (vertices [N,3] float32, indices [M,3] int64, normals [N,3] float32 outward unit).
    """
    c = np.asarray(center, np.float64)
    dirs = [np.array([0.0, 1.0, 0.0])]
    for k in range(1, n_theta):
        th = np.pi * k / n_theta
        for j in range(n_phi):
            ph = 2.0 * np.pi * j / n_phi
            dirs.append(np.array([np.sin(th) * np.cos(ph), np.cos(th), np.sin(th) * np.sin(ph)]))
    dirs.append(np.array([0.0, -1.0, 0.0]))
    dirs = np.stack(dirs)
    south = len(dirs) - 1

    def ring(k, j):  # k in 1..n_theta-1
        return 1 + (k - 1) * n_phi + (j % n_phi)

    tris = []
    for j in range(n_phi):
        tris.append([0, ring(1, j), ring(1, j + 1)])
        tris.append([south, ring(n_theta - 1, j), ring(n_theta - 1, j + 1)])
    for k in range(1, n_theta - 1):
        for j in range(n_phi):
            a, b = ring(k, j), ring(k, j + 1)
            cc, d = ring(k + 1, j), ring(k + 1, j + 1)
            tris.append([a, cc, d])
            tris.append([a, d, b])
    verts = (c + radius * dirs).astype(np.float32)
    idx = orient_outward(verts, np.array(tris, dtype=np.int64), c)
    return verts, idx, dirs.astype(np.float32)


def make_cube(n=2, half=1.0, center=(0.0, 0.0, 0.0)):
    """A closed cube [-half, half]^3 + center, each face an n x n grid, welded, outward winding.

    Returns (vertices [N,3] float32, indices [M,3] int64).
    """
    g = np.linspace(-1.0, 1.0, n + 1)
    pts, tris = [], []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            a1, a2 = [a for a in range(3) if a != axis]
            base = len(pts)
            for i in range(n + 1):
                for j in range(n + 1):
                    p = np.zeros(3)
                    p[axis] = sign
                    p[a1] = g[i]
                    p[a2] = g[j]
                    pts.append(p)
            for i in range(n):
                for j in range(n):
                    q00 = base + i * (n + 1) + j
                    q10 = q00 + (n + 1)
                    tris.append([q00, q10, q10 + 1])
                    tris.append([q00, q10 + 1, q00 + 1])
    pts = np.asarray(pts)
    # weld coincident vertices (exact: grid values are computed identically on every face)
    uniq, inverse = np.unique(pts, axis=0, return_inverse=True)
    idx = inverse.reshape(-1)[np.asarray(tris)]
    verts = (np.asarray(center, np.float64) + half * uniq).astype(np.float32)
    idx = orient_outward(verts, idx.astype(np.int64), center)
    return verts, idx


# ----------------------------------------------------------------------------------------------
# raytrace object helpers
# ----------------------------------------------------------------------------------------------
def rt_shape(verts, idx, material_id=0, uvs=None, normals=None):
    return rt.Shape(to_torch(verts), to_torch(idx), material_id,
                    uvs=None if uvs is None else to_torch(uvs),
                    normals=None if normals is None else to_torch(normals))


def rt_diffuse(kd, two_sided=False, ks=None, roughness=None):
    """A Material; kd/ks may be scalars (grey), [3] constants or [h,w,3] textures."""
    def color(x):
        x = np.asarray(x, np.float32)
        return to_torch(np.full(3, x, np.float32) if x.ndim == 0 else x)

    return rt.Material(color(kd), specular_reflectance=None if ks is None else color(ks),
                       roughness=roughness, two_sided=two_sided)


def rt_camera(position, look_at, up, fov, hw, camera_type="perspective"):
    return rt.Camera(to_torch(position), to_torch(look_at), to_torch(up), fov=float(fov),
                     resolution=tuple(int(x) for x in hw), camera_type=camera_type)


def default_camera():
    return rt_camera((0.0, 0.0, 5.0), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0), 45.0, (8, 8))


def scene_of(shapes, materials=None, area_lights=(), envmap=None, camera=None):
    """A Scene from numpy meshes [(verts, idx[, material_id])] or rt.Shape objects."""
    rt_shapes = []
    for s in shapes:
        if isinstance(s, rt.Shape):
            rt_shapes.append(s)
        else:
            rt_shapes.append(rt_shape(*s))
    if materials is None:
        materials = [rt_diffuse(0.5)]
    return rt.Scene(camera=camera if camera is not None else default_camera(),
                    shapes=rt_shapes, materials=list(materials),
                    area_lights=list(area_lights), envmap=envmap)


# ----------------------------------------------------------------------------------------------
# Camera convention (float64 reference of api.md)
# ----------------------------------------------------------------------------------------------
class CameraModel:
    """Reference camera: frame, projection to pixel coordinates and pixel rays."""

    def __init__(self, position, look_at, up, fov, hw, camera_type="perspective"):
        self.position = np.asarray(position, np.float64)
        self.look_at = np.asarray(look_at, np.float64)
        self.forward = normalize(self.look_at - self.position)
        self.right = normalize(np.cross(self.forward, np.asarray(up, np.float64)))
        self.up = np.cross(self.right, self.forward)
        self.H, self.W = int(hw[0]), int(hw[1])
        self.fov = float(fov)
        self.tan = np.tan(np.radians(fov) / 2.0)
        self.dist = np.linalg.norm(self.look_at - self.position)
        self.camera_type = camera_type

    def rt(self):
        return rt_camera(self.position, self.look_at, self.up, self.fov, (self.H, self.W),
                         self.camera_type)

    def screen(self, points):
        """World points [...,3] -> image-plane (sx, sy) in [-1,1]^2 (sx right, sy up)."""
        d = np.asarray(points, np.float64) - self.position
        x, y, z = d @ self.right, d @ self.up, d @ self.forward
        if self.camera_type == "perspective":
            assert np.all(z > 0), "points must be in front of the camera"
            sx = x / z / self.tan
            sy = y / z / (self.tan * self.H / self.W)
        else:
            sx = x / (self.tan * self.dist)
            sy = y / (self.tan * self.dist * self.H / self.W)
        return sx, sy

    def to_pixels(self, points):
        """World points -> continuous pixel coordinates (col in [0, W], row in [0, H])."""
        sx, sy = self.screen(points)
        return (sx + 1.0) * 0.5 * self.W, (1.0 - sy) * 0.5 * self.H

    def rays(self, col, row):
        """Rays through continuous pixel coordinates (arrays); returns (origins, unit dirs)."""
        col = np.asarray(col, np.float64)
        row = np.asarray(row, np.float64)
        sx = 2.0 * col / self.W - 1.0
        sy = 1.0 - 2.0 * row / self.H
        ox = sx[..., None] * self.tan * self.right
        oy = sy[..., None] * self.tan * (self.H / self.W) * self.up
        if self.camera_type == "perspective":
            d = self.forward + ox + oy
            o = np.broadcast_to(self.position, d.shape)
        else:
            o = self.position + self.dist * (ox + oy)
            d = np.broadcast_to(self.forward, o.shape)
        return np.ascontiguousarray(o), normalize(d)

    def subpixel_grid(self, n):
        """(col, row) [H, W, n*n] of an n x n midpoint grid inside every pixel."""
        s = (np.arange(n) + 0.5) / n
        sc, sr = np.meshgrid(s, s, indexing="xy")
        col = np.arange(self.W)[None, :, None] + sc.reshape(-1)[None, None, :]
        row = np.arange(self.H)[:, None, None] + sr.reshape(-1)[None, None, :]
        return np.broadcast_to(col, (self.H, self.W, n * n)), \
            np.broadcast_to(row, (self.H, self.W, n * n))

    def pixel_centers(self):
        col, row = np.meshgrid(np.arange(self.W) + 0.5, np.arange(self.H) + 0.5, indexing="xy")
        return col, row


def shoelace_area(px, py):
    """Area of a polygon given its vertex coordinates in order."""
    px, py = np.asarray(px, np.float64), np.asarray(py, np.float64)
    return 0.5 * abs(np.dot(px, np.roll(py, -1)) - np.dot(py, np.roll(px, -1)))


# ----------------------------------------------------------------------------------------------
# Texture / environment map references (float64)
# ----------------------------------------------------------------------------------------------
def bilinear(tex, u, v, wrap_v=True):
    """Bilinear lookup of tex [h,w,C] at (u, v) per the api.md convention (wrap u; wrap or clamp v)."""
    tex = np.asarray(tex, np.float64)
    h, w = tex.shape[:2]
    x = np.asarray(u, np.float64) * w - 0.5
    y = np.asarray(v, np.float64) * h - 0.5
    x0 = np.floor(x)
    y0 = np.floor(y)
    fx = (x - x0)[..., None]
    fy = (y - y0)[..., None]
    x0 = x0.astype(np.int64)
    y0 = y0.astype(np.int64)
    x1 = x0 + 1
    y1 = y0 + 1
    x0 %= w
    x1 %= w
    if wrap_v:
        y0 %= h
        y1 %= h
    else:
        y0 = np.clip(y0, 0, h - 1)
        y1 = np.clip(y1, 0, h - 1)
    return ((1 - fx) * (1 - fy) * tex[y0, x0] + fx * (1 - fy) * tex[y0, x1]
            + (1 - fx) * fy * tex[y1, x0] + fx * fy * tex[y1, x1])


def dir_to_uv(d):
    """Lat-long (u, v) of unit directions d [...,3] (y up)."""
    d = normalize(d)
    theta = np.arccos(np.clip(d[..., 1], -1.0, 1.0))
    phi = np.arctan2(d[..., 0], -d[..., 2])
    return phi / (2.0 * np.pi) + 0.5, theta / np.pi


def uv_to_dir(u, v):
    """Inverse of dir_to_uv: unit directions [...,3]."""
    phi = (np.asarray(u, np.float64) - 0.5) * 2.0 * np.pi
    theta = np.asarray(v, np.float64) * np.pi
    st = np.sin(theta)
    return np.stack([st * np.sin(phi), np.cos(theta), -st * np.cos(phi)], axis=-1)


def envmap_lookup(values, d):
    u, v = dir_to_uv(d)
    return bilinear(values, u, v, wrap_v=False)


# ----------------------------------------------------------------------------------------------
# BSDF reference (float64)
# ----------------------------------------------------------------------------------------------
def ggx_brdf(kd, ks, roughness, wo, wi):
    """api.md BSDF in float64: kd/pi + D F G1(wo) G1(wi) / (4 cos_o cos_i), F Schlick(F0 = ks).

    ks = 0 (the default) means no specular lobe at all: a purely Lambertian material. (A literal
    Schlick term with F0 = 0 would still reflect (1 - cos)^5 at grazing angles; the white
    furnace tests rely on the default material being exactly Lambertian.)
    """
    kd, ks = np.asarray(kd, np.float64), np.asarray(ks, np.float64)
    wo, wi = np.asarray(wo, np.float64), np.asarray(wi, np.float64)
    a = max(float(roughness), 1e-3)
    co, ci = wo[:, 2], wi[:, 2]
    h = wo + wi
    h /= np.linalg.norm(h, axis=-1, keepdims=True)
    ch = h[:, 2]
    d = a * a / (np.pi * (ch * ch * (a * a - 1.0) + 1.0) ** 2)

    def g1(c):
        return 2.0 * c / (c + np.sqrt(a * a + (1.0 - a * a) * c * c))

    cos_ih = np.sum(wi * h, -1)
    f90 = min(1.0, 50.0 * float(np.dot([0.212671, 0.715160, 0.072169], ks)))  # F90 fades with ks
    f = ks + (f90 - ks) * (1.0 - cos_ih[:, None]) ** 5
    spec = (d * g1(co) * g1(ci) / (4.0 * co * ci))[:, None] * f
    if np.all(ks == 0):
        spec[:] = 0.0
    # The diffuse lobe needs only wi above the shading normal (wo may fall below it with
    # interpolated normals); the specular lobe needs both.
    spec[co <= 0] = 0.0
    out = kd / np.pi + spec
    out[ci <= 0] = 0.0
    return out


# ----------------------------------------------------------------------------------------------
# Statistics
# ----------------------------------------------------------------------------------------------
def chi2_pvalue(observed, expected, min_expected=5.0):
    """Pearson chi-square p-value; bins with expected < min_expected are pooled into one bin.

    `expected` is rescaled to the observed total (the tests add an explicit bin for the
    probability mass outside the binned domain, so the rescaling is tiny).
    """
    from scipy import stats

    observed = np.asarray(observed, np.float64).reshape(-1)
    expected = np.asarray(expected, np.float64).reshape(-1)
    small = expected < min_expected
    obs = np.append(observed[~small], observed[small].sum())
    exp = np.append(expected[~small], expected[small].sum())
    if exp[-1] < min_expected:
        # pool the remainder into the smallest remaining bin
        if exp[-1] == 0.0 and obs[-1] > 0:
            return 0.0  # samples where the pdf says there is no mass
        j = np.argmin(exp[:-1])
        exp[j] += exp[-1]
        obs[j] += obs[-1]
        obs, exp = obs[:-1], exp[:-1]
    exp = exp * (obs.sum() / exp.sum())
    return stats.chisquare(obs, exp).pvalue


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def project(points, position, look_at, up, fov, H, W, orthographic=False):
    """Continuous pixel coordinates [N, 2] (x right, y down) of world points, in torch
    (differentiable w.r.t. every argument; independent of the C++ code)."""
    fwd = look_at - position
    dist = fwd.norm()
    fwd = fwd / dist
    right = torch.linalg.cross(fwd, up)
    right = right / right.norm()
    upp = torch.linalg.cross(right, fwd)
    d = points - position
    xc, yc, zc = d @ right, d @ upp, d @ fwd
    tan = torch.tan(fov * math.pi / 360)
    scale = tan * dist if orthographic else zc * tan
    sx, sy = xc / scale, yc / (scale * H / W)
    return torch.stack([(sx + 1) / 2 * W, (1 - sy) / 2 * H], -1)


# ----------------------------------------------------------------------------------------------
# Running the suite's renders on a GPU
# ----------------------------------------------------------------------------------------------
# RT_TEST_DEVICE=cuda runs every rt.render of the tests on that device: the scene is moved there
# with Scene.to (which keeps the autograd graph, so the gradients of the tests' CPU tensors come
# from the GPU's reverse pass) and the image comes back to the CPU. benchmarks/gpu_check.sh runs
# the closed-form and finite-difference gradient tests so (issue 12); tests of CPU-side machinery
# (BVH statistics, threads, the core's own objects) are not meant to run this way.
_TEST_DEVICE = os.environ.get("RT_TEST_DEVICE", "cpu")


@pytest.fixture(autouse=True, scope="session")
def _render_on_test_device():
    if _TEST_DEVICE == "cpu":
        yield
        return
    from raytrace import _core
    if not (_core.has_cuda and torch.cuda.is_available()):
        pytest.exit(f"RT_TEST_DEVICE={_TEST_DEVICE} needs a GPU and raytrace built with RT_CUDA=1", returncode=2)
    original = rt.render

    def render_on_device(scene, *args, **kwargs):
        moved = scene.to(_TEST_DEVICE)
        moved._stats = scene._stats  # (the edge-sample counts of the backward, read by some tests)
        return original(moved, *args, **kwargs).cpu()

    rt.render = render_on_device
    try:
        yield
    finally:
        rt.render = original
