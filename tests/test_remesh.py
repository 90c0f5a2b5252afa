"""rt.optim.remesh: isotropic remeshing keeps closed meshes closed, manifold and outward-facing,
and brings edge lengths to the target (issue 5).

Topology and orientation are checked here with plain numpy/Python, not with raytrace.optim's
own topology helpers.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

import raytrace as rt


# ------------------------------------------------------------------------------------------------
# Independent checks
# ------------------------------------------------------------------------------------------------
def directed_edges(f: np.ndarray) -> np.ndarray:
    return np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])


def assert_closed_oriented_manifold(v: np.ndarray, f: np.ndarray) -> None:
    """Every directed edge appears once and its reverse once (so every edge has exactly two
    triangles, traversed in opposite directions), no triangle repeats a vertex, and the
    triangles around each vertex form a single fan (one cycle)."""
    assert f.ndim == 2 and f.shape[1] == 3 and f.min() >= 0 and f.max() < len(v)
    assert np.all((f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 2] != f[:, 0]))
    d = directed_edges(f)
    n = len(v)
    keys = d[:, 0] * n + d[:, 1]
    assert len(np.unique(keys)) == len(keys), "a directed edge is used twice"
    reverse = d[:, 1] * n + d[:, 0]
    assert np.isin(reverse, keys).all(), "an edge has only one triangle (boundary) or mismatched orientation"
    # Each vertex: the map a -> b over its triangles (v, a, b) is one cycle through all of them.
    nxt = {}
    for tri in f:
        for c in range(3):
            nxt.setdefault(int(tri[c]), {})[int(tri[(c + 1) % 3])] = int(tri[(c + 2) % 3])
    assert len(nxt) == n, "unused vertices in the output"
    for vert, ring in nxt.items():
        start = next(iter(ring))
        cur, steps = ring[start], 1
        while cur != start:
            cur, steps = ring[cur], steps + 1
            assert steps <= len(ring)
        assert steps == len(ring), f"vertex {vert} has a non-manifold fan"


def euler(v: np.ndarray, f: np.ndarray) -> int:
    d = np.sort(directed_edges(f), axis=1)
    n_edges = len({(int(a), int(b)) for a, b in d})
    return len(np.unique(f)) - n_edges + len(f)


def edge_lengths(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    d = np.unique(np.sort(directed_edges(f), axis=1), axis=0)
    return np.linalg.norm(v[d[:, 0]] - v[d[:, 1]], axis=1)


def normals_and_centroids(v: np.ndarray, f: np.ndarray):
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return np.cross(b - a, c - a), (a + b + c) / 3


def in_band(lengths: np.ndarray, t: float) -> float:
    return float(np.mean((lengths > 0.8 * t) & (lengths < 4 / 3 * t)))


def torus(rows: int, cols: int, R: float = 1.0, r: float = 0.35):
    """Closed torus grid around the y axis, triangles wound outwards: rows around the tube,
    cols around the axis."""
    i, j = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    a, b = 2 * np.pi * i / rows, 2 * np.pi * j / cols
    v = np.stack([(R + r * np.cos(a)) * np.cos(b), r * np.sin(a), (R + r * np.cos(a)) * np.sin(b)], -1).reshape(-1, 3)
    idx = lambda p, q: (p % rows) * cols + (q % cols)
    v00, v01, v10, v11 = idx(i, j), idx(i, j + 1), idx(i + 1, j), idx(i + 1, j + 1)
    f = np.concatenate([np.stack([v00, v11, v10], -1).reshape(-1, 3), np.stack([v00, v01, v11], -1).reshape(-1, 3)])
    # Wind outwards (checked against the analytic normal, so the test does not depend on a sign
    # convention worked out by hand).
    n, c = normals_and_centroids(v, f)
    out = torus_normal(c, R)
    flip = np.einsum("ij,ij->i", n, out) < 0
    f[flip] = f[flip][:, ::-1]
    return v, f


def torus_normal(p: np.ndarray, R: float = 1.0) -> np.ndarray:
    """Outward normal of the torus at (or near) p: away from the nearest point of the core circle."""
    ring = np.stack([p[:, 0], np.zeros(len(p)), p[:, 2]], 1)
    ring = R * ring / np.linalg.norm(ring, axis=1, keepdims=True)
    return p - ring


def run(v: np.ndarray, f: np.ndarray, t: float, **kw):
    out_v, out_f = rt.optim.remesh(torch.tensor(v, dtype=torch.float32), torch.tensor(f), t, **kw)
    assert out_v.dtype == torch.float32 and out_f.dtype == torch.int64
    assert out_v.shape[1] == 3 and out_f.shape[1] == 3
    return out_v.double().numpy(), out_f.numpy()


# ------------------------------------------------------------------------------------------------
# Tests
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("subdivisions, target", [(2, 0.1), (4, 0.15)])
def test_sphere_refine_and_coarsen(subdivisions, target):
    mesh = rt.sphere(subdivisions=subdivisions)
    v0, f0 = mesh.vertices.double().numpy(), mesh.indices.numpy()
    before = edge_lengths(v0, f0)
    v, f = run(v0, f0, target)
    assert_closed_oriented_manifold(v, f)
    assert euler(v, f) == euler(v0, f0) == 2
    after = edge_lengths(v, f)
    # Edge lengths move to the target: the mean within 10%, nearly all in [4/5, 4/3] t.
    assert abs(after.mean() / target - 1) < 0.1
    assert in_band(after, target) > 0.9 > in_band(before, target) + 0.5
    assert abs(after.mean() - target) < abs(before.mean() - target)
    # Outward normals everywhere (convex, centred at the origin); vertices on the input surface,
    # which lies between the inscribed polyhedron and the unit sphere.
    n, c = normals_and_centroids(v, f)
    assert (np.einsum("ij,ij->i", n, c) > 0).all()
    r = np.linalg.norm(v, axis=1)
    inner = np.linalg.norm(normals_and_centroids(v0, f0)[1], axis=1).min()
    assert r.max() < 1 + 1e-6 and r.min() > inner - 1e-6


def test_torus_anisotropic_input_keeps_genus_and_orientation():
    v0, f0 = torus(10, 60)  # long thin triangles: ~0.22 around the tube, 0.07-0.14 around the axis
    t = 0.08
    before = edge_lengths(v0, f0)
    v, f = run(v0, f0, t)
    assert_closed_oriented_manifold(v, f)
    assert euler(v, f) == euler(v0, f0) == 0
    after = edge_lengths(v, f)
    assert in_band(after, t) > 0.85 and in_band(before, t) < 0.5
    assert after.std() / after.mean() < 0.5 * before.std() / before.mean()
    n, c = normals_and_centroids(v, f)
    cos = np.einsum("ij,ij->i", n, torus_normal(c)) / (np.linalg.norm(n, axis=1) * np.linalg.norm(torus_normal(c), axis=1))
    assert cos.min() > 0.5, f"a triangle turned away from the surface normal (min cos {cos.min():.3f})"


@pytest.mark.parametrize("target", [0.5, 0.8])
def test_heavy_coarsening_keeps_the_torus_a_torus(target):
    # Collapsing down to a few dozen vertices: without the link condition, collapses across the
    # tube pinch the torus (an edge gets three triangles).
    v0, f0 = torus(24, 80)
    v, f = run(v0, f0, target)
    assert len(v) < 100
    assert_closed_oriented_manifold(v, f)
    assert euler(v, f) == 0


def test_box_from_twelve_triangles():
    mesh = rt.box(size=1.0)
    v0, f0 = mesh.vertices.double().numpy(), mesh.indices.numpy()
    v, f = run(v0, f0, 0.15)
    assert_closed_oriented_manifold(v, f)
    assert euler(v, f) == 2
    assert len(f) > 200
    # Every vertex stays on the surface of the cube (some coordinate at +-1/2, all within).
    assert np.abs(v).max() < 0.5 + 1e-6
    assert np.allclose(np.abs(v).max(axis=1), 0.5, atol=1e-6)
    n, c = normals_and_centroids(v, f)
    assert (np.einsum("ij,ij->i", n, c) > 0).all()
    assert in_band(edge_lengths(v, f), 0.15) > 0.8


def test_open_plane_keeps_its_boundary():
    mesh = rt.plane(size=(2.0, 1.0))
    v, f = run(mesh.vertices.double().numpy(), mesh.indices.numpy(), 0.2)
    assert np.allclose(v[:, 1], 0.0, atol=1e-7)  # stays in the plane y = 0
    assert np.abs(v[:, 0]).max() <= 1.0 + 1e-6 and np.abs(v[:, 2]).max() <= 0.5 + 1e-6
    n, _ = normals_and_centroids(v, f)
    assert (n[:, 1] > 0).all()  # the input faces +y
    # The four corners are still vertices; total area unchanged.
    for corner in mesh.vertices.double().numpy():
        assert np.linalg.norm(v - corner, axis=1).min() < 1e-7
    assert 0.5 * np.linalg.norm(n, axis=1).sum() == pytest.approx(2.0, rel=1e-6)
    assert in_band(edge_lengths(v, f), 0.2) > 0.75


def test_ten_thousand_vertices_in_seconds():
    mesh = rt.sphere(subdivisions=5)  # 10,242 vertices
    start = time.perf_counter()
    v, f = rt.optim.remesh(mesh.vertices, mesh.indices, 0.04, iterations=3)
    elapsed = time.perf_counter() - start
    assert elapsed < 30.0  # a few seconds on a quiet machine; generous for shared CI cores
    assert euler(v.numpy(), f.numpy()) == 2


def test_rejects_bad_input():
    mesh = rt.sphere(subdivisions=1)
    v, f = mesh.vertices, mesh.indices
    with pytest.raises(ValueError, match="target_edge_length"):
        rt.optim.remesh(v, f, 0.0)
    with pytest.raises(ValueError, match="iterations"):
        rt.optim.remesh(v, f, 0.1, iterations=0)
    flipped = f.clone()
    flipped[0] = flipped[0].flip(0)
    with pytest.raises(ValueError, match="consistently oriented"):
        rt.optim.remesh(v, flipped, 0.1)
    fan = torch.tensor([[0, 1, 2], [0, 1, 3], [0, 1, 4]])
    with pytest.raises(ValueError, match="manifold"):
        rt.optim.remesh(torch.rand(5, 3), fan, 0.1)
    with pytest.raises(ValueError, match="faces"):
        rt.optim.remesh(v, f[:, :2], 0.1)
