"""scene.intersect against a brute-force float64 Moller-Trumbore reference.

Every ray is intersected with every triangle in float64 (from exactly the float32 values that
the renderer receives). Rays that pass within a hair of a triangle edge (reference barycentric
within EDGE_EPS of 0) are "ambiguous": a float32 watertight test may legitimately pick the
neighbouring triangle or, on an open soup, miss. Those are excluded from the exact identity
checks, but on closed meshes they must still report a hit at the right distance.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import raytrace as rt
from conftest import make_cube, make_sphere, rt_diffuse, rt_shape, default_camera

EDGE_EPS = 1e-5        # barycentric distance to an edge below which a ray is "ambiguous"
NEAR_DIST = 1e-3       # hits closer than this (world units) to the origin are ambiguous too
T_RTOL = 1e-4          # relative tolerance on t
TIE_RTOL = 1e-5        # two triangles whose t differ by less than this are a tie


# ----------------------------------------------------------------------------------------------
# Reference
# ----------------------------------------------------------------------------------------------
def ray_triangle(o, d, v0, v1, v2):
    """Moller-Trumbore in float64, broadcasting over leading axes.

    Returns (t, u, v, valid): the ray-plane parameter t, barycentrics (u, v) of v1, v2 of the
    point where the ray meets the triangle's plane, and valid = the triangle has non-zero area
    and the ray is not parallel to its plane.
    """
    e1 = v1 - v0
    e2 = v2 - v0
    p = np.cross(d, e2)
    det = np.sum(e1 * p, axis=-1)
    area2 = np.linalg.norm(np.cross(e1, e2), axis=-1)
    valid = (area2 > 0) & (det != 0)
    inv = 1.0 / np.where(det != 0, det, 1.0)
    s = o - v0
    u = np.sum(s * p, axis=-1) * inv
    q = np.cross(s, e1)
    v = np.sum(d * q, axis=-1) * inv
    t = np.sum(e2 * q, axis=-1) * inv
    return t, u, v, valid


def reference(o, d, tri_verts, chunk=256):
    """Closest hits of rays (o, d) [N,3] against triangles tri_verts [M,3,3] (all float64).

    Returns dict: t [N] (inf on miss), tri [N] (-1), u, v [N], ambiguous [N] bool, and
    t_loose [N]: the closest hit when triangles are grown by EDGE_EPS in barycentric terms (a
    ray through a shared edge or vertex may miss every triangle in float64 by 1e-17; t_loose
    still finds the surface point it passes through).
    """
    n = len(o)
    out = {"t": np.full(n, np.inf), "tri": np.full(n, -1, np.int64), "u": np.zeros(n),
           "v": np.zeros(n), "ambiguous": np.zeros(n, bool), "t_loose": np.full(n, np.inf)}
    v0, v1, v2 = (tri_verts[None, :, k] for k in range(3))
    dlen = np.linalg.norm(d, axis=-1)
    for s in range(0, n, chunk):
        sl = slice(s, min(n, s + chunk))
        oo, dd = o[sl, None, :], d[sl, None, :]
        t, u, v, valid = ray_triangle(oo, dd, v0, v1, v2)
        w = 1.0 - u - v
        bmin = np.minimum(np.minimum(u, v), w)
        inside = valid & (bmin >= 0) & (t > 0)
        tt = np.where(inside, t, np.inf)
        best = np.argmin(tt, axis=1)
        rows = np.arange(len(best))
        tbest = tt[rows, best]
        hit = np.isfinite(tbest)
        out["t"][sl] = tbest
        out["tri"][sl] = np.where(hit, best, -1)
        out["u"][sl] = np.where(hit, u[rows, best], 0.0)
        out["v"][sl] = np.where(hit, v[rows, best], 0.0)
        dist = t * dlen[sl, None]
        near_edge = valid & (t > 0) & (np.abs(bmin) < EDGE_EPS)
        # a near-edge triangle only matters if it is not behind the closest clean hit
        tlim = np.where(hit, tbest * (1 + 1e-3), np.inf)[:, None]
        amb = np.any(near_edge & (t <= tlim), axis=1)
        amb |= np.any(valid & (bmin >= -EDGE_EPS) & (t > 0) & (dist < NEAR_DIST), axis=1)
        out["ambiguous"][sl] = amb
        loose = valid & (bmin >= -EDGE_EPS) & (t > 0)
        out["t_loose"][sl] = np.min(np.where(loose, t, np.inf), axis=1)
    return out


def concat_shapes(meshes):
    """[(verts, idx)] -> (tri_verts [M,3,3] float64, shape_of [M], local_of [M])."""
    tris, shape_of, local_of = [], [], []
    for k, (v, i) in enumerate(meshes):
        tris.append(np.asarray(v, np.float64)[np.asarray(i)])
        shape_of.append(np.full(len(i), k))
        local_of.append(np.arange(len(i)))
    return np.concatenate(tris), np.concatenate(shape_of), np.concatenate(local_of)


def run_intersect(scene, o, d):
    """Calls scene.intersect with float32 tensors; returns numpy results and the float64 copies
    of exactly the float32 rays that were traced."""
    o32 = np.ascontiguousarray(o, dtype=np.float32)
    d32 = np.ascontiguousarray(d, dtype=np.float32)
    hits = scene.intersect(torch.from_numpy(o32), torch.from_numpy(d32))
    n = len(o32)
    assert set(hits) >= {"t", "shape_id", "triangle_id", "uv"}
    assert hits["t"].dtype == torch.float32 and tuple(hits["t"].shape) == (n,)
    assert hits["shape_id"].dtype == torch.int64 and tuple(hits["shape_id"].shape) == (n,)
    assert hits["triangle_id"].dtype == torch.int64 and tuple(hits["triangle_id"].shape) == (n,)
    assert hits["uv"].dtype == torch.float32 and tuple(hits["uv"].shape) == (n, 2)
    res = {k: hits[k].detach().cpu().numpy() for k in ("t", "shape_id", "triangle_id", "uv")}
    return res, o32.astype(np.float64), d32.astype(np.float64)


def check_against_reference(scene, meshes, o, d, closed=False, min_checked=0.9):
    """Compares scene.intersect with the reference; returns (res, ref) for extra checks.

    closed: every shape is a closed mesh, so ambiguous rays that the reference reports as
    hits must hit (watertightness) at the same distance.
    """
    res, o, d = run_intersect(scene, o, d)
    tri_verts, shape_of, local_of = concat_shapes(meshes)
    ref = reference(o, d, tri_verts)
    n = len(o)
    dlen = np.linalg.norm(d, axis=-1)
    amb = ref["ambiguous"]
    clean = ~amb
    assert clean.mean() >= min_checked, "test setup: too many ambiguous rays"
    ref_hit = np.isfinite(ref["t"])
    hit = res["shape_id"] >= 0
    # the distance to compare with: on ambiguous rays, the first surface point within the slack
    t_ref = np.where(amb, ref["t_loose"], ref["t"])
    scale = 1.0 + np.linalg.norm(o, axis=-1) + np.where(np.isfinite(t_ref), t_ref, 0) * dlen

    # misses are reported consistently
    assert np.all(np.isinf(res["t"][~hit]) & (res["t"][~hit] > 0)), "miss must have t = +inf"
    assert np.all(res["triangle_id"][~hit] == -1)
    assert np.all(res["uv"][~hit] == 0)
    assert np.all(np.isfinite(res["t"][hit]))
    assert np.all(res["triangle_id"][hit] >= 0)

    # hit / miss agree on clean rays
    bad = clean & (hit != ref_hit)
    assert not bad.any(), (
        f"{bad.sum()} of {clean.sum()} clean rays disagree on hit/miss with the reference "
        f"(e.g. ray {np.flatnonzero(bad)[:5]}: ref t {ref['t'][bad][:5]}, got {res['t'][bad][:5]})")

    # t agrees wherever both hit (including ambiguous rays: the hit point is the same point)
    both = hit & np.isfinite(t_ref)
    tri_normal = np.cross(tri_verts[:, 1] - tri_verts[:, 0], tri_verts[:, 2] - tri_verts[:, 0])
    tri_normal /= np.linalg.norm(tri_normal, axis=-1, keepdims=True) + 1e-300
    ref_tri = np.maximum(ref["tri"], 0)
    cos = np.abs(np.sum(tri_normal[ref_tri] * d, axis=-1)) / dlen
    tol = T_RTOL * t_ref + 2e-6 * scale / (dlen * np.maximum(cos, 1e-3))
    terr = np.abs(np.where(both, res["t"], 0.0) - np.where(both, t_ref, 0.0))
    check_t = both & (clean | closed)
    bad = check_t & ~(terr <= tol)
    assert not bad.any(), (
        f"{bad.sum()} rays with wrong t: got {res['t'][bad][:5]}, ref {t_ref[bad][:5]}")

    # closed meshes: ambiguous rays that the reference says hit must hit (watertight)
    if closed:
        bad = amb & ref_hit & ~hit
        assert not bad.any(), f"{bad.sum()} edge/vertex rays leaked through a closed mesh"

    # triangle identity on clean hits (ties allowed), and uv reconstructs the hit point
    # (on ambiguous rays of open soups the hit may legitimately be a different surface)
    k = np.flatnonzero(check_t)
    offsets = np.zeros(len(meshes) + 1, np.int64)
    offsets[1:] = np.cumsum([len(i) for _, i in meshes])
    sid = res["shape_id"][k]
    assert np.all(sid < len(meshes))
    lid = res["triangle_id"][k]
    assert np.all(lid < np.array([len(i) for _, i in meshes])[sid]), "triangle_id out of range"
    gid = offsets[sid] + lid
    same = gid == ref["tri"][k]
    tv = tri_verts[gid]
    t_rep, u_rep, v_rep, valid_rep = ray_triangle(o[k], d[k], tv[:, 0], tv[:, 1], tv[:, 2])
    bmin_rep = np.minimum(np.minimum(u_rep, v_rep), 1 - u_rep - v_rep)
    tie = valid_rep & (bmin_rep >= -EDGE_EPS) & (
        np.abs(t_rep - t_ref[k]) <= TIE_RTOL * t_ref[k] + tol[k])
    bad = clean[k] & ~(same | tie)
    assert not bad.any(), (
        f"{bad.sum()} rays report the wrong triangle: got global {gid[bad][:5]}, "
        f"ref {ref['tri'][k][bad][:5]}")
    # even on ambiguous rays the reported triangle must contain the hit (up to the edge slack)
    assert np.all(valid_rep & (bmin_rep >= -1e-3)), "reported triangle does not contain the hit"

    uv = res["uv"][k].astype(np.float64)
    assert np.all(uv >= -1e-5) and np.all(uv.sum(-1) <= 1 + 1e-5), "uv outside the triangle"
    p_uv = (1 - uv[:, :1] - uv[:, 1:]) * tv[:, 0] + uv[:, :1] * tv[:, 1] + uv[:, 1:] * tv[:, 2]
    p_ref = o[k] + t_ref[k, None] * d[k]
    err = np.linalg.norm(p_uv - p_ref, axis=-1)
    bad = err > 5e-5 * scale[k] + 2e-6 * scale[k] / np.maximum(cos[k], 1e-3)
    assert not bad.any(), f"uv does not reconstruct the hit point (max err {err.max():.3g})"
    # on clean, same-triangle hits uv equals the reference barycentrics
    sel = clean[k] & same
    uv_ref = np.stack([ref["u"][k], ref["v"][k]], -1)
    edge_len = np.linalg.norm(tv[:, 1] - tv[:, 0], axis=-1) + np.linalg.norm(tv[:, 2] - tv[:, 0],
                                                                             axis=-1)
    area = np.linalg.norm(np.cross(tv[:, 1] - tv[:, 0], tv[:, 2] - tv[:, 0]), axis=-1)
    uv_tol = 1e-4 + 1e-5 * scale[k] * edge_len / area  # barycentrics are ill-conditioned on slivers
    assert np.all(np.abs(uv - uv_ref)[sel].max(-1) <= uv_tol[sel])
    return res, ref


# ----------------------------------------------------------------------------------------------
# Scenes and rays
# ----------------------------------------------------------------------------------------------
def random_soup(rng, m, size=0.4, box=1.0):
    centers = rng.uniform(-box, box, (m, 1, 3))
    verts = (centers + rng.normal(0, size, (m, 3, 3))).reshape(-1, 3).astype(np.float32)
    idx = np.arange(3 * m, dtype=np.int64).reshape(m, 3)
    return verts, idx


def random_rays(rng, n, box=1.5, lo=0.2, hi=5.0):
    """Origins uniform in [-box, box]^3; directions random with random lengths in [lo, hi]."""
    o = rng.uniform(-box, box, (n, 3))
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    d *= rng.uniform(lo, hi, (n, 1))
    return o, d


def rays_at_points(rng, targets, dist=4.0, jitter=0.0):
    """Rays from random far origins aimed at target points (hit near t = 1)."""
    n = len(targets)
    dirs = rng.normal(size=(n, 3))
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    o = targets + dist * dirs
    d = targets - o + jitter * rng.normal(size=(n, 3))
    return o, d


def make_scene(meshes):
    shapes = [rt_shape(v, i, material_id=k % 2) for k, (v, i) in enumerate(meshes)]
    return rt.Scene(camera=default_camera(), shapes=shapes,
                    materials=[rt_diffuse(0.5), rt_diffuse(0.3, two_sided=True)],
                    area_lights=[], envmap=None)


# ----------------------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed,num_tris", [(0, 1), (1, 37), (2, 300), (3, 1200)])
def test_random_soup(seed, num_tris):
    rng = np.random.default_rng(seed)
    v, i = random_soup(rng, num_tris)
    scene = make_scene([(v, i)])
    o1, d1 = random_rays(rng, 3000)
    centroids = v[i].astype(np.float64).mean(axis=1)
    o2, d2 = rays_at_points(rng, centroids[rng.integers(0, num_tris, 1000)], jitter=0.05)
    o = np.concatenate([o1, o2])
    d = np.concatenate([d1, d2])
    res, ref = check_against_reference(scene, [(v, i)], o, d)
    assert np.isfinite(ref["t"]).sum() > 500  # the test exercises hits


def test_random_soup_float64_rays_equivalent():
    """The same rays as float64 tensors give the same answer as float32 tensors."""
    rng = np.random.default_rng(7)
    v, i = random_soup(rng, 100)
    scene = make_scene([(v, i)])
    o, d = random_rays(rng, 500)
    o32, d32 = torch.tensor(o, dtype=torch.float32), torch.tensor(d, dtype=torch.float32)
    h32 = scene.intersect(o32, d32)
    h64 = scene.intersect(o32.double(), d32.double())
    for k in ("t", "shape_id", "triangle_id", "uv"):
        assert torch.equal(h32[k], h64[k]), k


@pytest.mark.parametrize("kind", ["sphere", "cube"])
def test_closed_mesh_random_rays(kind):
    rng = np.random.default_rng(11)
    if kind == "sphere":
        v, i, _ = make_sphere(12, 24)
    else:
        v, i = make_cube(4)
    scene = make_scene([(v, i)])
    o, d = random_rays(rng, 4000, box=1.8)
    res, ref = check_against_reference(scene, [(v, i)], o, d, closed=True)
    # sanity: origins inside hit, always
    inside = np.all(np.abs(o) < 0.55, axis=-1) if kind == "cube" else \
        np.linalg.norm(o, axis=-1) < 0.9
    assert inside.sum() > 20
    assert np.all(res["shape_id"][inside] == 0)


@pytest.mark.parametrize("kind", ["sphere", "cube"])
def test_closed_mesh_rays_through_vertices_and_edges(kind):
    """Rays aimed exactly at vertices and edge points: a watertight test never lets one leak."""
    rng = np.random.default_rng(12)
    if kind == "sphere":
        v, i, _ = make_sphere(8, 16)
    else:
        v, i = make_cube(3)
    scene = make_scene([(v, i)])
    v64 = v.astype(np.float64)
    edges = np.concatenate([i[:, [0, 1]], i[:, [1, 2]], i[:, [2, 0]]])
    mids = v64[edges].mean(axis=1)
    thirds = (2 * v64[edges[:, 0]] + v64[edges[:, 1]]) / 3
    targets = np.concatenate([v64, mids, thirds])

    # (1) from inside: the centre and random interior points, toward the targets
    o_in = np.concatenate([np.zeros((len(targets), 3)),
                           rng.uniform(-0.4, 0.4, (len(targets), 3))])
    t_in = np.concatenate([targets, targets])
    d_in = t_in - o_in
    # (2) from outside, entering through the target: origin along the outward direction
    outward = targets / np.linalg.norm(targets, axis=-1, keepdims=True)
    o_out = targets + 2.5 * (outward + 0.05 * rng.normal(size=targets.shape))
    d_out = targets - o_out
    o = np.concatenate([o_in, o_out])
    d = np.concatenate([d_in, d_out])
    res, ref = check_against_reference(scene, [(v, i)], o, d, closed=True, min_checked=0.0)
    # every one of these rays hits the mesh at t ~ 1 (the target point)
    assert np.all(res["shape_id"] == 0), f"{np.sum(res['shape_id'] != 0)} rays leaked"
    np.testing.assert_allclose(res["t"], 1.0, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ref["t_loose"], 1.0, rtol=1e-5)


def test_degenerate_triangles_never_hit():
    rng = np.random.default_rng(21)
    good_v, good_i = random_soup(rng, 40, size=0.3)
    good_v[:, 2] -= 2.0  # good triangles behind the degenerate ones (z < -1)
    deg_v = np.array([
        [0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [2.0, 4.0, 6.0],        # collinear (exact)
        [-0.5, -0.5, -0.5], [0.5, 0.5, 0.5], [1.0, 1.0, 1.0],    # collinear (exact)
        [0.3, -0.3, 0.2], [0.3, -0.3, 0.2], [-0.4, 0.6, 0.1],     # two coincident vertices
        [0.7, 0.1, -0.3],                                         # used twice in one triangle
    ], dtype=np.float32)
    base = len(good_v)
    deg_i = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 9, 0], [1, 1, 1], [5, 4, 3]]) + base
    verts = np.concatenate([good_v, deg_v])
    idx = np.concatenate([good_i, deg_i, good_i[:5]])  # degenerate ones in the middle
    deg_ids = np.arange(len(good_i), len(good_i) + len(deg_i))
    scene = make_scene([(verts, idx)])

    # rays aimed at points on the degenerate segments, plus random rays
    segs = deg_v.astype(np.float64)
    s = rng.uniform(0, 1, (600, 1))
    a = rng.integers(0, len(segs), 600)
    b = rng.integers(0, len(segs), 600)
    pts = segs[a] + s * (segs[b] - segs[a])
    o1, d1 = rays_at_points(rng, pts)
    o2, d2 = random_rays(rng, 2000, box=2.5)
    # rays lying exactly along the collinear segments
    o3 = np.array([[-1.0, -2.0, -3.0], [-2.0, -1.5, -1.0], [0.3, -0.3, 5.0]])
    d3 = np.array([[1.0, 2.0, 3.0], [1.5, 1.25, 1.0], [0.0, 0.0, -1.0]])
    o = np.concatenate([o1, o2, o3])
    d = np.concatenate([d1, d2, d3])
    res, ref = check_against_reference(scene, [(verts, idx)], o, d, min_checked=0.8)
    hit = res["shape_id"] >= 0
    assert not np.isin(res["triangle_id"][hit], deg_ids).any(), "a degenerate triangle was hit"
    # a shape made of degenerate triangles only is never hit at all
    scene2 = make_scene([(deg_v, deg_i - base)])
    res2, _, _ = run_intersect(scene2, o, d)
    assert np.all(res2["shape_id"] == -1) and np.all(np.isinf(res2["t"]))


def test_multiple_shapes_ids():
    rng = np.random.default_rng(31)
    soup = random_soup(rng, 150, size=0.25)
    sv, si, _ = make_sphere(10, 20, radius=0.6, center=(2.0, 0.5, -1.0))
    cv, ci = make_cube(2, half=0.5, center=(-2.0, -0.5, 1.0))
    tiny = (np.array([[0, 0, 3.0], [0.5, 0, 3.0], [0, 0.5, 3.0]], np.float32),
            np.array([[0, 1, 2]]))
    meshes = [(sv, si), soup, (cv, ci), tiny]
    scene = make_scene(meshes)
    o, d = random_rays(rng, 3000, box=3.0)
    targets = np.concatenate([sv, cv, soup[0][:200], tiny[0].mean(0, keepdims=True)]).astype(
        np.float64)
    o2, d2 = rays_at_points(rng, targets, jitter=0.02)
    res, ref = check_against_reference(scene, meshes, np.concatenate([o, o2]),
                                       np.concatenate([d, d2]))
    for k in range(len(meshes)):
        assert np.sum(res["shape_id"] == k) > 0, f"shape {k} never hit"


# ----------------------------------------------------------------------------------------------
# Refit and rebuild
# ----------------------------------------------------------------------------------------------
def current_meshes(scene_shapes):
    return [(s.vertices.detach().cpu().numpy().astype(np.float32),
             s.indices.detach().cpu().numpy().astype(np.int64)) for s in scene_shapes]


def stats(scene):
    st = dict(scene._stats)
    assert isinstance(st["bvh_builds"], int) and isinstance(st["bvh_refits"], int)
    return st


def test_refit_after_moving_vertices_in_place():
    rng = np.random.default_rng(41)
    soup_v, soup_i = random_soup(rng, 200, size=0.3)
    sv, si, _ = make_sphere(8, 16, radius=0.7, center=(1.5, 0.0, 0.0))
    shapes = [rt_shape(soup_v, soup_i, 0), rt_shape(sv, si, 1)]
    scene = rt.Scene(camera=default_camera(), shapes=shapes,
                     materials=[rt_diffuse(0.5), rt_diffuse(0.2)], area_lights=[])
    o, d = random_rays(rng, 2000, box=2.5)
    check_against_reference(scene, current_meshes(shapes), o, d)
    st0 = stats(scene)
    assert st0["bvh_builds"] >= 1

    # move vertices in place: translate the soup, scale and jitter the sphere
    with torch.no_grad():
        shapes[0].vertices.add_(torch.tensor([0.4, -0.3, 0.2]))
        shapes[1].vertices.mul_(1.3)
        shapes[1].vertices[:5] += 0.2
    res, _ = check_against_reference(scene, current_meshes(shapes), o, d)
    st1 = stats(scene)
    assert st1["bvh_builds"] == st0["bvh_builds"], "moving vertices must not rebuild the BVH"
    assert st1["bvh_refits"] > st0["bvh_refits"], "moving vertices must refit the BVH"

    # large moves (scrambling the old hierarchy's spatial coherence) are still exact
    with torch.no_grad():
        perm = torch.from_numpy(rng.permutation(len(soup_v)))
        shapes[0].vertices.copy_(shapes[0].vertices[perm] * -1.0)
    check_against_reference(scene, current_meshes(shapes), o, d)
    st2 = stats(scene)
    assert st2["bvh_builds"] == st0["bvh_builds"]
    assert st2["bvh_refits"] > st1["bvh_refits"]


def test_refit_after_assigning_new_vertex_tensors():
    rng = np.random.default_rng(42)
    soup_v, soup_i = random_soup(rng, 200, size=0.3)
    cv, ci = make_cube(3, half=0.6, center=(0.0, 2.0, 0.0))
    shapes = [rt_shape(soup_v, soup_i, 0), rt_shape(cv, ci, 0)]
    scene = rt.Scene(camera=default_camera(), shapes=shapes, materials=[rt_diffuse(0.5)],
                     area_lights=[])
    o, d = random_rays(rng, 2000, box=2.5)
    check_against_reference(scene, current_meshes(shapes), o, d)
    st0 = stats(scene)

    new_soup, _ = random_soup(rng, 200, size=0.5)
    shapes[0].vertices = torch.from_numpy(new_soup)
    shapes[1].vertices = torch.from_numpy(cv * np.float32(1.5))
    check_against_reference(scene, current_meshes(shapes), o, d)
    st1 = stats(scene)
    assert st1["bvh_builds"] == st0["bvh_builds"], "same connectivity must not rebuild"
    assert st1["bvh_refits"] > st0["bvh_refits"]


def test_rebuild_after_changing_connectivity():
    rng = np.random.default_rng(43)
    soup_v, soup_i = random_soup(rng, 200, size=0.3)
    sv, si, _ = make_sphere(6, 12, radius=0.7, center=(0.0, -1.5, 0.0))
    shapes = [rt_shape(soup_v, soup_i, 0), rt_shape(sv, si, 0)]
    scene = rt.Scene(camera=default_camera(), shapes=shapes, materials=[rt_diffuse(0.5)],
                     area_lights=[])
    o, d = random_rays(rng, 2000, box=2.5)
    check_against_reference(scene, current_meshes(shapes), o, d)
    st0 = stats(scene)

    # same vertices, different triangles (a subset, re-combined)
    new_i = rng.permutation(soup_i.reshape(-1)).reshape(-1, 3)[:150]
    new_i = new_i[np.array([len(set(t)) == 3 for t in new_i])]
    shapes[0].indices = torch.from_numpy(np.ascontiguousarray(new_i))
    res, _ = check_against_reference(scene, current_meshes(shapes), o, d)
    st1 = stats(scene)
    assert st1["bvh_builds"] > st0["bvh_builds"], "changed connectivity must rebuild"
    assert np.all(res["triangle_id"][res["shape_id"] == 0] < len(new_i))

    # a different mesh altogether (new vertex count and triangles)
    sv2, si2, _ = make_sphere(9, 18, radius=0.9, center=(0.0, -1.5, 0.0))
    shapes[1].vertices = torch.from_numpy(sv2)
    shapes[1].indices = torch.from_numpy(si2)
    check_against_reference(scene, current_meshes(shapes), o, d)
    st2 = stats(scene)
    assert st2["bvh_builds"] > st1["bvh_builds"]
