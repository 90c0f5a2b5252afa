"""Samplers checked statistically: pdfs integrate to one, samples follow their pdf (chi-square),
sample and pdf agree, Monte Carlo estimates match quadrature, and evaluations match closed forms.

Uses the private raytrace._core functions (numpy float32 in and out) and
Scene._sample_lights / Scene._pdf_lights.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import raytrace as rt
from raytrace import _core
from conftest import (bilinear, chi2_pvalue, default_camera, dir_to_uv, ggx_brdf,
                      make_quad, rt_diffuse, rt_shape, to_torch, uv_to_dir)

P_MIN = 1e-3


def f32(a):
    return np.ascontiguousarray(np.asarray(a, np.float32))


# ----------------------------------------------------------------------------------------------
# Quadrature on the hemisphere (Gauss-Legendre panels in theta and phi)
# ----------------------------------------------------------------------------------------------
def gl_panels(edges, order):
    x, w = np.polynomial.legendre.leggauss(order)
    a, b = edges[:-1, None], edges[1:, None]
    return ((a + b) / 2 + (b - a) / 2 * x).ravel(), ((b - a) / 2 * w).ravel()


def hemisphere_rule(theta_edges, phi_edges, order=6):
    """Nodes (theta, phi) [n] and weights sin(theta) dtheta dphi [n] of a product GL rule."""
    t, wt = gl_panels(np.unique(theta_edges), order)
    p, wp = gl_panels(np.unique(phi_edges), order)
    tt, pp = np.meshgrid(t, p, indexing="ij")
    w = np.outer(wt * np.sin(t), wp)
    return tt.ravel(), pp.ravel(), w.ravel()


def spherical(theta, phi):
    st = np.sin(theta)
    return np.stack([st * np.cos(phi), st * np.sin(phi), np.cos(theta)], -1)


# ----------------------------------------------------------------------------------------------
# BSDF
# ----------------------------------------------------------------------------------------------
def random_hemisphere(rng, n, min_z=0.02):
    """n random unit vectors with z > min_z."""
    v = rng.normal(size=(2 * n + 100, 3))
    v /= np.linalg.norm(v, axis=-1, keepdims=True)
    v[:, 2] = np.abs(v[:, 2])
    v = v[v[:, 2] > min_z]
    assert len(v) >= n
    return v[:n]


@pytest.mark.parametrize("kd,ks,roughness", [
    ((0.7, 0.5, 0.2), (0.0, 0.0, 0.0), 0.5),
    ((0.0, 0.0, 0.0), (0.04, 0.5, 1.0), 0.3),
    ((0.3, 0.2, 0.1), (0.9, 0.6, 0.3), 0.05),
    ((0.5, 0.5, 0.5), (0.2, 0.2, 0.2), 1.0),
])
def test_bsdf_eval_matches_closed_form(kd, ks, roughness):
    rng = np.random.default_rng(5)
    wo = random_hemisphere(rng, 3000)
    wi = random_hemisphere(rng, len(wo))
    # include exact mirror pairs (the specular peak) and normal incidence
    wi[:300] = wo[:300] * [-1, -1, 1]
    wo[300], wi[300] = [0, 0, 1], [0, 0, 1]
    wo, wi = f32(wo), f32(wi)
    f = _core.bsdf_eval(f32(kd), f32(ks), float(roughness), wo, wi)
    assert f.shape == (len(wo), 3) and f.dtype == np.float32
    ref = ggx_brdf(kd, ks, roughness, wo.astype(np.float64), wi.astype(np.float64))
    np.testing.assert_allclose(f, ref, rtol=2e-3, atol=1e-6)
    # reciprocity
    np.testing.assert_allclose(_core.bsdf_eval(f32(kd), f32(ks), float(roughness), wi, wo), f,
                               rtol=2e-3, atol=1e-6)
    # zero with wi below the horizon; with wo below (possible with interpolated normals) only
    # the diffuse lobe remains, so shading stays continuous where wo crosses the horizon
    below = wi * np.float32([1, 1, -1])
    assert np.all(_core.bsdf_eval(f32(kd), f32(ks), float(roughness), wo, f32(below)) == 0)
    np.testing.assert_allclose(_core.bsdf_eval(f32(kd), f32(ks), float(roughness), f32(below), wo),
                               np.broadcast_to(np.float32(kd) / np.pi, wo.shape), rtol=1e-6)


def test_bsdf_lobes_add_and_roughness_is_clamped():
    rng = np.random.default_rng(6)
    wo = f32(random_hemisphere(rng, 500))
    wi = f32(random_hemisphere(rng, 500))
    kd, ks, zero = f32([0.6, 0.3, 0.1]), f32([0.5, 0.2, 0.9]), f32([0, 0, 0])
    both = _core.bsdf_eval(kd, ks, 0.4, wo, wi)
    parts = _core.bsdf_eval(kd, zero, 0.4, wo, wi) + _core.bsdf_eval(zero, ks, 0.4, wo, wi)
    np.testing.assert_allclose(both, parts, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(_core.bsdf_eval(kd, zero, 0.4, wo, wi),
                               np.broadcast_to(kd / np.pi, (500, 3)), rtol=1e-6)
    near_mirror = f32(np.concatenate([wo[:50] * [-1, -1, 1], wi[50:]]))
    np.testing.assert_allclose(_core.bsdf_eval(kd, ks, 1e-6, wo, near_mirror),
                               _core.bsdf_eval(kd, ks, 1e-3, wo, near_mirror), rtol=1e-5)


BSDF_CASES = [
    # kd, ks, roughness, theta_o (deg), phi_o (rad)
    ((0.8, 0.6, 0.4), (0.0, 0.0, 0.0), 0.5, 30.0, 0.0),
    ((0.5, 0.5, 0.5), (0.04, 0.04, 0.04), 0.3, 45.0, 0.7),
    ((0.2, 0.2, 0.2), (0.9, 0.8, 0.7), 0.2, 60.0, 2.0),
    ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 0.5, 0.0, 0.0),
    ((0.5, 0.4, 0.3), (0.5, 0.5, 0.5), 1.0, 80.0, -1.0),
    ((0.3, 0.3, 0.3), (0.5, 0.5, 0.5), 0.05, 40.0, 1.3),
    ((0.0, 0.0, 0.0), (0.8, 0.8, 0.8), 0.05, 85.0, 0.3),
    ((0.1, 0.1, 0.1), (0.3, 0.3, 0.3), 0.1, 10.0, -2.5),
    ((0.0, 0.0, 0.0), (0.9, 0.9, 0.9), 0.05, 0.5, 0.0),
]

N_COS, N_PHI = 10, 20


def bsdf_setup(case):
    kd, ks, r, th_deg, phi_o = case
    th = np.radians(th_deg)
    wo = spherical(np.array([th]), np.array([phi_o]))[0]
    phi_r = phi_o + np.pi  # azimuth of the mirror direction
    # theta edges: uniform, the chi-square bin edges, and dense panels around the mirror lobe
    cos_edges = np.linspace(0.0, 1.0, N_COS + 1)
    t_edges = [np.linspace(0, np.pi / 2, 49), np.arccos(cos_edges)]
    w = 8.0 * max(r, 0.02)
    t_edges.append(np.linspace(max(0.0, th - w), min(np.pi / 2, th + w), 65))
    t_edges.append(np.linspace(0.0, min(np.pi / 2, 2 * w), 33))
    # phi measured relative to phi_r - pi, in [0, 2 pi): the mirror lobe sits at pi
    p_edges = [np.linspace(0, 2 * np.pi, 49), np.linspace(0, 2 * np.pi, N_PHI + 1)]
    wphi = min(np.pi, w / max(np.sin(th), 1e-3))
    p_edges.append(np.linspace(np.pi - wphi, np.pi + wphi, 65))
    theta, phi_rel, weight = hemisphere_rule(np.concatenate(t_edges), np.concatenate(p_edges))
    dirs = spherical(theta, phi_rel + phi_r - np.pi)
    return dict(kd=f32(kd), ks=f32(ks), r=float(r), wo=wo, phi_r=phi_r, theta=theta,
                phi_rel=phi_rel, weight=weight, dirs=f32(dirs))


def bin_index(cos_theta, phi_rel):
    i = np.clip(np.floor(cos_theta * N_COS).astype(np.int64), 0, N_COS - 1)
    j = np.floor(np.mod(phi_rel, 2 * np.pi) / (2 * np.pi) * N_PHI).astype(np.int64) % N_PHI
    return i * N_PHI + j


def sample_bsdf(s, n, seed):
    rng = np.random.default_rng(seed)
    u = rng.random((n, 3), dtype=np.float32)
    wo = f32(np.broadcast_to(s["wo"], (n, 3)))
    wi, pdf = _core.bsdf_sample(s["kd"], s["ks"], s["r"], wo, u)
    assert wi.shape == (n, 3) and pdf.shape == (n,)
    assert wi.dtype == np.float32 and pdf.dtype == np.float32
    ok = (pdf > 0) & (wi[:, 2] > 0)
    return wi, pdf, ok


@pytest.mark.parametrize("case", BSDF_CASES, ids=[f"case{k}" for k in range(len(BSDF_CASES))])
def test_bsdf_sampling(case):
    s = bsdf_setup(case)
    wo_n = f32(np.broadcast_to(s["wo"], (len(s["dirs"]), 3)))
    pdf_q = _core.bsdf_pdf(s["kd"], s["ks"], s["r"], wo_n, s["dirs"]).astype(np.float64)
    assert np.all(np.isfinite(pdf_q)) and np.all(pdf_q >= 0)
    integral = np.sum(pdf_q * s["weight"])

    n = 400_000
    wi, pdf, ok = sample_bsdf(s, n, seed=17)
    assert np.all(np.isfinite(wi[ok])) and np.all(np.isfinite(pdf))
    np.testing.assert_allclose(np.linalg.norm(wi[ok], axis=-1), 1.0, atol=1e-5)
    success = ok.mean()

    # (1) the pdf integrates to the probability that a sample succeeds (1 for a pure diffuse
    #     lobe; a GGX lobe may lose the mass reflected below the horizon), never more than 1
    assert integral <= 1.0 + 3e-3
    assert success > 0.5
    np.testing.assert_allclose(integral, success, atol=3e-3 + 5 * np.sqrt(success * (1 - success) / n))
    if np.all(s["ks"] == 0):
        np.testing.assert_allclose(integral, 1.0, atol=2e-3)
        assert success > 1.0 - 1e-4  # a cosine-weighted sample only fails by float rounding

    # (2) bsdf_sample's pdf equals bsdf_pdf at the sampled direction
    pdf_at = _core.bsdf_pdf(s["kd"], s["ks"], s["r"], f32(np.broadcast_to(s["wo"], (n, 3)))[ok],
                            f32(wi[ok]))
    np.testing.assert_allclose(pdf[ok], pdf_at, rtol=2e-3, atol=1e-6)

    # (3) chi-square: samples binned in (cos theta, phi), expected counts from the pdf
    phi_s = np.arctan2(wi[ok, 1], wi[ok, 0]).astype(np.float64) - (s["phi_r"] - np.pi)
    obs = np.bincount(bin_index(wi[ok, 2].astype(np.float64), phi_s), minlength=N_COS * N_PHI)
    exp = np.bincount(bin_index(np.cos(s["theta"]), s["phi_rel"]), weights=pdf_q * s["weight"],
                      minlength=N_COS * N_PHI) * n
    obs = np.append(obs, n - ok.sum())
    exp = np.append(exp, max(n * (1.0 - integral), 0.0))
    p = chi2_pvalue(obs, exp)
    assert p > P_MIN, f"chi-square p-value {p:.3g}"

    # (4) energy: Monte Carlo estimate of the albedo integral f cos matches quadrature
    f_q = _core.bsdf_eval(s["kd"], s["ks"], s["r"], wo_n, s["dirs"]).astype(np.float64)
    albedo_q = np.sum(f_q * np.cos(s["theta"])[:, None] * s["weight"][:, None], axis=0)
    f_s = _core.bsdf_eval(s["kd"], s["ks"], s["r"], f32(np.broadcast_to(s["wo"], (n, 3)))[ok],
                          f32(wi[ok])).astype(np.float64)
    est = np.zeros((n, 3))
    est[ok] = f_s * wi[ok, 2:3] / pdf[ok, None]
    albedo_mc = est.mean(0)
    sigma = est.std(0) / np.sqrt(n)
    assert np.all(np.abs(albedo_mc - albedo_q) <= 5 * sigma + 5e-3 * albedo_q + 1e-6), (
        f"albedo MC {albedo_mc} vs quadrature {albedo_q}")
    if np.all(s["ks"] == 0):
        np.testing.assert_allclose(albedo_q, s["kd"], rtol=2e-3)
    # an albedo above one would mean the BSDF creates energy (the lobes are not coupled, so
    # only check the lobes separately)
    if np.all(s["kd"] == 0):
        assert np.all(albedo_q <= 1.0 + 1e-3)


def test_bsdf_pdf_zero_below_horizon_and_sample_is_deterministic():
    s = bsdf_setup(BSDF_CASES[1])
    rng = np.random.default_rng(3)
    wi = random_hemisphere(rng, 1000) * [1, 1, -1]
    wo = f32(np.broadcast_to(s["wo"], (len(wi), 3)))
    assert np.all(_core.bsdf_pdf(s["kd"], s["ks"], s["r"], wo, f32(wi)) == 0)
    a = sample_bsdf(s, 1000, seed=9)
    b = sample_bsdf(s, 1000, seed=9)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    # wo below the shading normal: only the diffuse lobe samples (the specular choice fails),
    # and the pdf of what it samples is that of the diffuse lobe alone
    wo_below = f32(np.broadcast_to(s["wo"] * [1, 1, -1], (1000, 3)))
    wi_b, pdf = _core.bsdf_sample(s["kd"], s["ks"], s["r"], wo_below, rng.random((1000, 3), dtype=np.float32))
    ok = pdf > 0
    p_spec = np.dot([0.212671, 0.715160, 0.072169], s["ks"]) / np.dot([0.212671, 0.715160, 0.072169],
                                                                       s["kd"] + s["ks"])
    assert abs(ok.mean() - (1 - p_spec)) < 0.05
    np.testing.assert_allclose(pdf[ok], (1 - p_spec) * wi_b[ok, 2] / np.pi, rtol=1e-4)


# ----------------------------------------------------------------------------------------------
# Environment map
# ----------------------------------------------------------------------------------------------
def random_envmap(seed=0, h=8, w=16, grey=False):
    rng = np.random.default_rng(seed)
    vals = rng.uniform(0.1, 1.0, (h, w, 1 if grey else 3))
    vals = np.broadcast_to(vals, (h, w, 3)).copy()
    vals[2, 11] *= 50.0  # a bright texel
    vals[h - 1, 3] *= 20.0  # a bright texel in the bottom row (near the -y pole)
    return f32(vals)


def uv_rule(h, w, sub):
    """Midpoints of a (sub*h) x (sub*w) grid in (u, v): dirs, solid-angle weights, (u, v)."""
    u = (np.arange(w * sub) + 0.5) / (w * sub)
    v = (np.arange(h * sub) + 0.5) / (h * sub)
    uu, vv = np.meshgrid(u, v, indexing="xy")
    dirs = uv_to_dir(uu, vv)
    weight = np.sin(np.pi * vv) * (np.pi / (h * sub)) * (2 * np.pi / (w * sub))
    return f32(dirs.reshape(-1, 3)), weight.reshape(-1), uu.reshape(-1), vv.reshape(-1)


def test_envmap_eval_convention():
    vals = random_envmap(1)
    h, w = vals.shape[:2]
    # texel centres return the texel value: row 0 is up (+y), u = atan2(x, -z) / 2 pi + 1/2
    i, j = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    d = uv_to_dir((j + 0.5) / w, (i + 0.5) / h).reshape(-1, 3)
    got = _core.envmap_eval(vals, f32(d))
    assert got.shape == (h * w, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, vals.reshape(-1, 3), rtol=1e-3)
    # named directions
    named = f32([[0, 1, 0], [0, 0, -1], [1, 0, 0], [0, 0, 1], [-1, 0, 0]])
    u, v = dir_to_uv(named.astype(np.float64))
    np.testing.assert_allclose(u[1:], [0.5, 0.75, 1.0, 0.25], atol=1e-12)
    np.testing.assert_allclose(v, [0.0, 0.5, 0.5, 0.5, 0.5], atol=1e-12)
    # everywhere: bilinear, wrapping in u and clamping in v
    rng = np.random.default_rng(2)
    dirs = rng.normal(size=(5000, 3))
    dirs = f32(dirs / np.linalg.norm(dirs, axis=-1, keepdims=True))
    ref = bilinear(vals, *dir_to_uv(dirs.astype(np.float64)), wrap_v=False)
    np.testing.assert_allclose(_core.envmap_eval(vals, dirs), ref, rtol=2e-3, atol=1e-4)


@pytest.mark.parametrize("grey", [False, True])
def test_envmap_sampling(grey):
    vals = random_envmap(3, grey=grey)
    h, w = vals.shape[:2]
    dirs_q, weight, uq, vq = uv_rule(h, w, sub=8)
    pdf_q = _core.envmap_pdf(vals, dirs_q).astype(np.float64)
    assert pdf_q.shape == (len(dirs_q),) and np.all(pdf_q >= 0)
    # (1) integrates to one over the sphere
    np.testing.assert_allclose(np.sum(pdf_q * weight), 1.0, rtol=2e-3)

    # (2) sample / pdf consistency
    n = 300_000
    rng = np.random.default_rng(4)
    dirs, pdf = _core.envmap_sample(vals, rng.random((n, 2), dtype=np.float32))
    assert dirs.shape == (n, 3) and pdf.shape == (n,)
    assert np.all(pdf > 0) and np.all(np.isfinite(pdf))
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=-1), 1.0, atol=1e-5)
    pdf_at = _core.envmap_pdf(vals, f32(dirs))
    close = np.isclose(pdf, pdf_at, rtol=2e-3)
    assert close.mean() > 0.999, "envmap_sample's pdf differs from envmap_pdf"

    # (3) chi-square on a (2h) x (2w) grid of (u, v) bins
    nb_v, nb_u = 2 * h, 2 * w

    def bins(u, v):
        iu = np.floor(u * nb_u).astype(np.int64) % nb_u
        iv = np.clip(np.floor(v * nb_v).astype(np.int64), 0, nb_v - 1)
        return iv * nb_u + iu

    us, vs = dir_to_uv(dirs.astype(np.float64))
    obs = np.bincount(bins(us, vs), minlength=nb_u * nb_v)
    exp = np.bincount(bins(uq, vq), weights=pdf_q * weight, minlength=nb_u * nb_v) * n
    p = chi2_pvalue(obs, exp)
    assert p > P_MIN, f"chi-square p-value {p:.3g}"

    # (4) importance: the probability of a texel is proportional to sin(theta) times the
    # largest luminance of its 3x3 neighbourhood (wrapping in u, clamped in v), since the
    # bilinear lookup spreads each texel's radiance over its neighbours' regions
    if grey:
        texel = np.floor(vq * h).astype(np.int64) * w + np.floor(uq * w).astype(np.int64)
        prob = np.bincount(texel, weights=pdf_q * weight, minlength=h * w).reshape(h, w)
        lum = vals[..., 0].astype(np.float64)
        padded = np.concatenate([lum[:1], lum, lum[-1:]], axis=0)
        neighbourhood = np.max([np.roll(padded, du, axis=1)[1 + dv:1 + dv + h]
                                for du in (-1, 0, 1) for dv in (-1, 0, 1)], axis=0)
        target = neighbourhood * np.sin(np.pi * (np.arange(h)[:, None] + 0.5) / h)
        np.testing.assert_allclose(prob, target / target.sum(), rtol=0.02)


# ----------------------------------------------------------------------------------------------
# Area-light sampling
# ----------------------------------------------------------------------------------------------
LIGHT_A = make_quad((0.0, 2.0, 0.0), (0.5, 0.0, 0.0), (0.0, 0.0, 0.5))  # area 1, faces -y
LIGHT_B = (np.array([[1.5, 0.2, -0.6], [1.5, 1.2, 0.0], [1.5, 0.2, 0.6]], np.float32),
           np.array([[0, 1, 2]]))  # area 0.6, two-sided
FLOOR = make_quad((0.0, -1.0, 0.0), (5.0, 0.0, 0.0), (0.0, 0.0, -5.0))  # faces +y, not a light
INT_A, INT_B = 3.0, 1.0


def light_scene(extra_shapes=(), extra_lights=()):
    shapes = [rt_shape(FLOOR[0], FLOOR[1], 0), rt_shape(LIGHT_A[0], LIGHT_A[1], 1),
              rt_shape(*LIGHT_B, 1)]
    shapes += [rt_shape(v, i, k) for v, i, k in extra_shapes]
    lights = [rt.AreaLight(1, to_torch([INT_A] * 3)),
              rt.AreaLight(2, to_torch([INT_B] * 3), two_sided=True)]
    lights += list(extra_lights)
    return rt.Scene(camera=default_camera(), shapes=shapes,
                    materials=[rt_diffuse(0.5), rt_diffuse(0.0)], area_lights=lights)


def light_triangles():
    """[(v0, v1, v2, light index, one_sided normal or None)] of the two lights."""
    tris = []
    for t in LIGHT_A[1]:
        v = LIGHT_A[0][t].astype(np.float64)
        tris.append((v[0], v[1], v[2], 0))
    v = LIGHT_B[0][LIGHT_B[1][0]].astype(np.float64)
    tris.append((v[0], v[1], v[2], 1))
    return tris


AREA = {0: 1.0, 1: 0.6}
POWER = {0: INT_A * 1.0, 1: INT_B * 0.6 * 2.0}
PROB = {k: POWER[k] / sum(POWER.values()) for k in POWER}
SUB = 4  # chi-square bins: each light triangle split into SUB^2 sub-triangles


def barycentric(x, v0, v1, v2):
    """(b1, b2, plane distance) of points x [n,3] w.r.t. triangle (v0, v1, v2)."""
    e1, e2 = v1 - v0, v2 - v0
    n = np.cross(e1, e2)
    n /= np.linalg.norm(n)
    r = x - v0
    dist = r @ n
    r = r - dist[:, None] * n
    g = np.array([[e1 @ e1, e1 @ e2], [e1 @ e2, e2 @ e2]])
    b = np.linalg.solve(g, np.stack([r @ e1, r @ e2]))
    return b[0], b[1], dist


def sub_triangle_bin(b1, b2, n):
    i = np.clip(np.floor(n * b1).astype(np.int64), 0, n - 1)
    j = np.clip(np.floor(n * b2).astype(np.int64), 0, n - 1)
    upper = (n * b1 - i) + (n * b2 - j) > 1.0
    return (i * n + j) * 2 + upper


def triangle_nodes(v0, v1, v2, m):
    """Centroids (and barycentrics) of the m^2 sub-triangles of the regular subdivision."""
    b = []
    for i in range(m):
        for j in range(m - i):
            b.append(((i + 1 / 3) / m, (j + 1 / 3) / m))
            if i + j <= m - 2:
                b.append(((i + 2 / 3) / m, (j + 2 / 3) / m))
    b = np.array(b)
    x = (1 - b[:, :1] - b[:, 1:]) * v0 + b[:, :1] * v1 + b[:, 1:] * v2
    area = 0.5 * np.linalg.norm(np.cross(v1 - v0, v2 - v0)) / m ** 2
    return x, b[:, 0], b[:, 1], area


POINTS = [np.array([0.0, 0.0, 0.0]), np.array([-0.3, 0.5, 0.4]), np.array([0.6, -0.5, -0.7])]


def as_np(t):
    assert isinstance(t, torch.Tensor)
    return t.detach().cpu().numpy().astype(np.float64)


@pytest.mark.parametrize("point_id", range(len(POINTS)))
def test_light_sampling(point_id):
    scene = light_scene()
    p = POINTS[point_id]
    n = 200_000
    rng = np.random.default_rng(100 + point_id)
    pts = f32(np.broadcast_to(p, (n, 3)))
    u = rng.random((n, 3), dtype=np.float32)
    dirs, dist, pdf = scene._sample_lights(torch.from_numpy(pts), torch.from_numpy(u))
    dirs, dist, pdf = as_np(dirs), as_np(dist), as_np(pdf)
    assert dirs.shape == (n, 3) and dist.shape == (n,) and pdf.shape == (n,)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=-1), 1.0, atol=1e-5)
    assert np.all(pdf > 0) and np.all(np.isfinite(pdf)) and np.all(dist > 0)

    # which light triangle each sampled point lies on
    x = p + dist[:, None] * dirs
    tris = light_triangles()
    which = np.full(n, -1)
    bins = np.zeros(n, np.int64)
    cos_l = np.zeros(n)
    for k, (v0, v1, v2, _) in enumerate(tris):
        b1, b2, pd = barycentric(x, v0, v1, v2)
        on = (np.abs(pd) < 1e-4) & (b1 >= -1e-4) & (b2 >= -1e-4) & (b1 + b2 <= 1 + 1e-4)
        on &= which < 0
        which[on] = k
        bins[on] = k * 2 * SUB * SUB + sub_triangle_bin(b1[on], b2[on], SUB)
        nrm = np.cross(v1 - v0, v2 - v0)
        cos_l[on] = np.abs(dirs[on] @ (nrm / np.linalg.norm(nrm)))
    assert np.all(which >= 0), "sampled points must lie on the lights"
    light_of = np.array([t[3] for t in tris])[which]

    # lights chosen in proportion to their power
    frac_a = np.mean(light_of == 0)
    assert abs(frac_a - PROB[0]) < 5 * np.sqrt(PROB[0] * PROB[1] / n)

    # the pdf is P(light) / area * r^2 / |cos| and _pdf_lights agrees with it
    expect = np.array([PROB[0] / AREA[0], PROB[1] / AREA[1]])[light_of] * dist ** 2 / cos_l
    np.testing.assert_allclose(pdf, expect, rtol=2e-3)
    pdf_l = as_np(scene._pdf_lights(torch.from_numpy(pts), torch.from_numpy(f32(dirs))))
    np.testing.assert_allclose(pdf_l, pdf, rtol=2e-3)

    # chi-square: sub-triangle bins, expected = n * integral of _pdf_lights over their solid angle
    exp = np.zeros(len(tris) * 2 * SUB * SUB)
    total = 0.0
    for k, (v0, v1, v2, _) in enumerate(tris):
        xs, b1, b2, da = triangle_nodes(v0, v1, v2, 8 * SUB)
        d = xs - p
        r = np.linalg.norm(d, axis=-1)
        d /= r[:, None]
        nrm = np.cross(v1 - v0, v2 - v0)
        cos = np.abs(d @ (nrm / np.linalg.norm(nrm)))
        pdf_nodes = as_np(scene._pdf_lights(torch.from_numpy(f32(np.broadcast_to(p, d.shape))),
                                            torch.from_numpy(f32(d))))
        # at every node, pdf * |cos| / r^2 is P(light) / area
        light = tris[k][3]
        np.testing.assert_allclose(pdf_nodes * cos / r ** 2, PROB[light] / AREA[light], rtol=2e-3)
        contrib = pdf_nodes * cos / r ** 2 * da
        total += contrib.sum()
        exp += np.bincount(k * 2 * SUB * SUB + sub_triangle_bin(b1, b2, SUB), weights=contrib,
                           minlength=len(exp))
    np.testing.assert_allclose(total, 1.0, rtol=2e-3)
    obs = np.bincount(bins, minlength=len(exp))
    p_value = chi2_pvalue(obs, exp * n)
    assert p_value > P_MIN, f"chi-square p-value {p_value:.3g}"


def test_light_pdf_integrates_to_one_over_the_sphere():
    scene = light_scene()
    rng = np.random.default_rng(8)
    n = 1_000_000
    d = rng.normal(size=(n, 3))
    d = f32(d / np.linalg.norm(d, axis=-1, keepdims=True))
    for p in POINTS[:2]:
        pdf = as_np(scene._pdf_lights(torch.from_numpy(f32(np.broadcast_to(p, (n, 3)))),
                                      torch.from_numpy(d)))
        assert np.all(pdf >= 0) and np.all(np.isfinite(pdf))
        est = 4 * np.pi * pdf
        np.testing.assert_allclose(est.mean(), 1.0, atol=5 * est.std() / np.sqrt(n) + 0.005)
        # directions that hit the floor or nothing have pdf 0
        hits = scene.intersect(torch.from_numpy(f32(np.broadcast_to(p, (n, 3)))),
                               torch.from_numpy(d))
        sid = hits["shape_id"].numpy()
        assert np.all(pdf[sid <= 0] == 0)
        assert np.all(pdf[sid >= 1] > 0)


def test_light_pdf_one_sided_and_occlusion():
    # above the one-sided light A: A emits away from the point, B (two-sided) still counts
    scene = light_scene()
    p = np.array([0.0, 3.0, 0.0])
    to_a = f32([[0.0, -1.0, 0.0], [0.2, -1.0, 0.1]])
    to_b = f32(LIGHT_B[0].astype(np.float64).mean(0) - p)
    pdf = as_np(scene._pdf_lights(torch.from_numpy(f32([p, p, p])),
                                  torch.from_numpy(f32(np.concatenate([to_a, to_b[None]])))))
    assert pdf[0] == 0 and pdf[1] == 0
    assert pdf[2] > 0

    # an opaque blocker between the point and light A: blocked directions have pdf 0
    blocker = make_quad((0.0, 1.0, 0.0), (0.1, 0.0, 0.0), (0.0, 0.0, 0.1))
    # a small light C in front of A (facing down): rays through C see C, not A
    lc = make_quad((0.25, 1.5, 0.0), (0.05, 0.0, 0.0), (0.0, 0.0, 0.05))
    scene = light_scene(extra_shapes=[(blocker[0], blocker[1], 0), (lc[0], lc[1], 1)],
                        extra_lights=[rt.AreaLight(4, to_torch([2.0, 2.0, 2.0]))])
    p = np.zeros(3)
    d = f32([[0.0, 1.0, 0.0], [0.05, 1.0, -0.05], [0.25, 1.5, 0.0], [0.4, 2.0, 0.3]])
    pdf = as_np(scene._pdf_lights(torch.from_numpy(f32(np.zeros((4, 3)))), torch.from_numpy(d)))
    assert pdf[0] == 0 and pdf[1] == 0, "occluded directions must have pdf 0"
    power = {0: INT_A * 1.0, 1: INT_B * 0.6 * 2, 2: 2.0 * 0.01}
    tot = sum(power.values())
    dn = d.astype(np.float64) / np.linalg.norm(d, axis=-1, keepdims=True)
    # through C at (0.25, 1.5, 0): r = |(0.25, 1.5, 0)|, cos = 1.5 / r
    r = np.linalg.norm([0.25, 1.5, 0.0])
    np.testing.assert_allclose(pdf[2], power[2] / tot / 0.01 * r ** 2 / (1.5 / r), rtol=2e-3)
    # past C, onto A at y = 2
    t = 2.0 / dn[3, 1]
    np.testing.assert_allclose(pdf[3], power[0] / tot / 1.0 * t ** 2 / dn[3, 1], rtol=2e-3)
