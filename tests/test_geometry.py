"""Procedural meshes (raytrace.geometry) against closed forms and the teapot's known shape.

- Sphere and box: closed and manifold (every edge in exactly two triangles, each direction
  once), outward (signed volume > 0), volume equal to the box's exactly and, for the inscribed
  icosphere, between the volumes of the balls through its innermost face and its vertices.
- Teapot: the patch table's symmetries (four quadrants of each part of revolution, mirrored
  halves of handle and spout); the welded mesh is closed but for its known openings; each part,
  its openings capped, has positive volume; rays from outside hit the outside of the surface;
  y up, mirror-symmetric across z = 0, unit outward normals; it renders.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from raytrace import _teapot_data
from raytrace.geometry import box, plane, sphere, teapot, uv_sphere, vertex_normals


# ----------------------------------------------------------------------------------------------
# Mesh measurements (float64 numpy)
# ----------------------------------------------------------------------------------------------
def as_np(mesh):
    return mesh.vertices.double().numpy(), mesh.indices.numpy()


def face_cross(v, f):
    """cross(v1 - v0, v2 - v0) per triangle: [M, 3], twice the area times the unit normal."""
    return np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])


def signed_volume(v, f):
    return float(np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6)


def edge_counts(f):
    """(undirected edge -> number of triangles, directed edge -> number of triangles)."""
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    _, undirected = np.unique(np.sort(e, axis=1), axis=0, return_counts=True)
    _, directed = np.unique(e, axis=0, return_counts=True)
    return undirected, directed


def boundary_edges(f):
    """Directed edges (a, b) of triangles whose undirected edge has one triangle: [B, 2]."""
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    _, inv, counts = np.unique(np.sort(e, axis=1), axis=0, return_inverse=True, return_counts=True)
    return e[counts[inv.reshape(-1)] == 1]


def assert_closed_manifold(f):
    undirected, directed = edge_counts(f)
    assert np.all(undirected == 2), f"edges in {sorted(set(undirected.tolist()))} triangles"
    assert np.all(directed == 1), "inconsistent winding: an edge is traversed twice the same way"


def components(n, pairs):
    """Connected components of n nodes joined by pairs [K, 2]: labels [n] (union-find)."""
    parent = np.arange(n)

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i
    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    return np.array([find(i) for i in range(n)])


def triangle_components(f):
    """Labels [M] of triangles joined through shared edges (not through single vertices)."""
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    tri = np.tile(np.arange(len(f)), 3)
    _, inv = np.unique(np.sort(e, axis=1), axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    order = np.argsort(inv, kind="stable")
    same = inv[order][1:] == inv[order][:-1]
    pairs = np.stack([tri[order][:-1][same], tri[order][1:][same]], axis=1)
    return components(len(f), pairs)


def capped_volume(v, f):
    """Signed volume of an open surface with each boundary loop closed by a fan to its centroid."""
    b = boundary_edges(f)
    vol = signed_volume(v, f)
    if len(b) == 0:
        return vol
    verts, local = np.unique(b, return_inverse=True)
    loop_of_vertex = components(len(verts), local.reshape(-1, 2))
    loop = loop_of_vertex[local.reshape(-1, 2)[:, 0]]
    for lab in np.unique(loop):
        edges = b[loop == lab]
        c = v[np.unique(edges)].mean(axis=0)
        fan_v = np.concatenate([v, c[None]])
        fan = np.stack([edges[:, 1], edges[:, 0], np.full(len(edges), len(v))], axis=1)
        vol += signed_volume(fan_v, fan)
    return vol


def first_hits(v, f, origins, dirs):
    """Closest hit of each ray (Moller-Trumbore, float64): (triangle [R] or -1, t [R])."""
    v0, e1, e2 = v[f[:, 0]], v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]
    tri = np.full(len(origins), -1)
    best = np.full(len(origins), np.inf)
    for r, (o, d) in enumerate(zip(origins, dirs)):
        p = np.cross(d, e2)
        det = np.einsum("ij,ij->i", e1, p)
        ok = np.abs(det) > 1e-14
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        s = o - v0
        a = np.einsum("ij,ij->i", s, p) * inv
        q = np.cross(s, e1)
        b = (q @ d) * inv
        t = np.einsum("ij,ij->i", e2, q) * inv
        hit = ok & (a >= 0) & (b >= 0) & (a + b <= 1) & (t > 1e-9)
        if hit.any():
            k = np.argmin(np.where(hit, t, np.inf))
            tri[r], best[r] = k, t[k]
    return tri, best


def nearest(points, targets, exclude_self=False):
    """(distance [P], index [P]) of the nearest target [T, 3] to each point [P, 3]."""
    dist, index = np.empty(len(points)), np.empty(len(points), dtype=np.int64)
    for s in range(0, len(points), 256):
        d = np.linalg.norm(points[s:s + 256, None, :] - targets[None, :, :], axis=2)
        if exclude_self:
            d[np.arange(len(d)), np.arange(s, s + len(d))] = np.inf
        index[s:s + 256] = d.argmin(axis=1)
        dist[s:s + 256] = d.min(axis=1)
    return dist, index


# ----------------------------------------------------------------------------------------------
# Sphere
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("subdivisions", [0, 1, 2, 3, 4])
def test_icosphere_closed_manifold_and_volume(subdivisions):
    radius, center = 1.7, np.array([0.3, -1.0, 2.0])
    mesh = sphere(radius, center, subdivisions)
    v, f = as_np(mesh)
    assert mesh.vertices.dtype == torch.float32 and mesh.indices.dtype == torch.int64
    assert v.shape == (10 * 4**subdivisions + 2, 3) and f.shape == (20 * 4**subdivisions, 3)
    assert mesh.uvs.shape == (len(v), 2) and mesh.normals.shape == (len(v), 3)
    assert_closed_manifold(f)
    assert len(v) - 3 * len(f) // 2 + len(f) == 2  # Euler characteristic of a sphere
    np.testing.assert_allclose(np.linalg.norm(v - center, axis=1), radius, rtol=1e-6)
    # Inscribed convex polyhedron: it contains the ball touching its nearest face plane.
    c = face_cross(v, f)
    n = c / np.linalg.norm(c, axis=1, keepdims=True)
    plane_dist = np.einsum("ij,ij->i", n, v[f[:, 0]] - center)
    assert plane_dist.min() > 0, "a face points inwards"
    vol = signed_volume(v - center, f)
    assert 4 / 3 * math.pi * plane_dist.min()**3 < vol < 4 / 3 * math.pi * radius**3
    if subdivisions >= 3:
        assert vol == pytest.approx(4 / 3 * math.pi * radius**3, rel=0.01)


def test_icosphere_error_shrinks_fourfold():
    exact = 4 / 3 * math.pi
    err = [exact - signed_volume(*as_np(sphere(subdivisions=s))) for s in (2, 3, 4)]
    assert 3.5 < err[0] / err[1] < 4.5 and 3.5 < err[1] / err[2] < 4.5


def test_icosphere_normals_and_uvs():
    mesh = sphere(2.0, (1.0, 0.0, 0.0), 2)
    v, f = as_np(mesh)
    n = mesh.normals.double().numpy()
    np.testing.assert_allclose(n, (v - [1.0, 0.0, 0.0]) / 2.0, atol=1e-6)
    uv = mesh.uvs.double().numpy()
    assert uv.min() >= 0 and uv.max() <= 1
    # The lat-long convention of EnvironmentMap: v = acos(y) / pi, u = atan2(x, -z) / 2pi + 1/2.
    np.testing.assert_allclose(uv[:, 1], np.arccos(np.clip(n[:, 1], -1, 1)) / np.pi, atol=1e-6)
    away = (np.abs(n[:, 1]) < 0.99) & (np.abs(uv[:, 0] - 0.0) > 1e-3) & (np.abs(uv[:, 0] - 1.0) > 1e-3)
    np.testing.assert_allclose(uv[away, 0], np.arctan2(n[away, 0], -n[away, 2]) / (2 * np.pi) + 0.5, atol=1e-6)
    top = np.argmax(v[:, 1])
    assert uv[top, 1] == pytest.approx(0.0, abs=1e-7)


def test_icosphere_split_seams_gives_continuous_uvs():
    closed = sphere(subdivisions=3)
    split = sphere(subdivisions=3, watertight=False)
    v, f = as_np(split)
    assert f.shape == closed.indices.shape and len(v) > len(closed.vertices)
    assert signed_volume(v, f) == pytest.approx(signed_volume(*as_np(closed)), rel=1e-6)
    uv = split.uvs.double().numpy()[f]  # [M, 3, 2]
    span = uv.max(axis=1) - uv.min(axis=1)
    assert span[:, 0].max() < 0.25 and span[:, 1].max() < 0.2  # no triangle wraps
    # Same surface: the split mesh's vertices are the closed mesh's.
    assert nearest(v, closed.vertices.double().numpy())[0].max() < 1e-6
    # Every edge still has two triangles once coincident vertices are identified.
    _, ids = np.unique(np.round(v * 1e6), axis=0, return_inverse=True)
    assert_closed_manifold(ids.reshape(-1)[f])


def test_uv_sphere():
    rings, segments = 12, 24
    mesh = uv_sphere(1.5, (0.0, 1.0, 0.0), rings, segments)
    v, f = as_np(mesh)
    assert v.shape == ((rings + 1) * (segments + 1) - 2, 3) and f.shape == (2 * segments * (rings - 1), 3)
    assert np.all(np.linalg.norm(face_cross(v, f), axis=1) > 0)
    vol = signed_volume(v - [0.0, 1.0, 0.0], f)
    assert 0.97 * 4 / 3 * math.pi * 1.5**3 < vol < 4 / 3 * math.pi * 1.5**3
    uv = mesh.uvs.double().numpy()
    assert uv.min() >= 0 and uv.max() <= 1
    span = uv[f].max(axis=1) - uv[f].min(axis=1)
    assert span[:, 0].max() <= 1 / segments + 1e-6 and span[:, 1].max() <= 1 / rings + 1e-6
    assert len(np.unique(f)) == len(v)
    np.testing.assert_allclose(mesh.normals.double().numpy(), (v - [0.0, 1.0, 0.0]) / 1.5, atol=1e-6)
    # The lat-long convention of EnvironmentMap, away from the poles.
    d = mesh.normals.double().numpy()
    np.testing.assert_allclose(uv[:, 1], np.arccos(np.clip(d[:, 1], -1, 1)) / np.pi, atol=1e-6)
    mid = (np.abs(d[:, 1]) < 0.999) & (uv[:, 0] > 1e-6) & (uv[:, 0] < 1 - 1e-6)
    np.testing.assert_allclose(uv[mid, 0], np.arctan2(d[mid, 0], -d[mid, 2]) / (2 * np.pi) + 0.5, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# Plane and box
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("normal", ["+x", "-x", "+y", "-y", "+z", "-z"])
def test_plane_faces_its_normal(normal):
    mesh = plane((2.0, 3.0), (1.0, 2.0, 3.0), normal)
    v, f = as_np(mesh)
    assert v.shape == (4, 3) and f.shape == (2, 3)
    axis = "xyz".index(normal[1])
    expected = np.zeros(3)
    expected[axis] = 1.0 if normal[0] == "+" else -1.0
    c = face_cross(v, f)
    np.testing.assert_allclose(c / np.linalg.norm(c, axis=1, keepdims=True), [expected] * 2, atol=1e-7)
    np.testing.assert_allclose(mesh.normals.numpy(), np.tile(expected, (4, 1)))
    np.testing.assert_allclose(np.linalg.norm(c, axis=1).sum() / 2, 6.0, rtol=1e-6)
    np.testing.assert_allclose(v.mean(axis=0), [1.0, 2.0, 3.0], atol=1e-6)
    np.testing.assert_allclose(v[:, axis], [1.0, 2.0, 3.0][axis], atol=1e-6)
    # uv (0, 0) -> (1, 0) runs along the first size, (0, 0) -> (0, 1) along the second.
    uv = mesh.uvs.numpy()
    i00 = np.flatnonzero((uv == [0, 0]).all(1))[0]
    i10 = np.flatnonzero((uv == [1, 0]).all(1))[0]
    i01 = np.flatnonzero((uv == [0, 1]).all(1))[0]
    assert np.linalg.norm(v[i10] - v[i00]) == pytest.approx(2.0)
    assert np.linalg.norm(v[i01] - v[i00]) == pytest.approx(3.0)
    # Seen from the front with v pointing down the screen, u points right.
    tu, tv = v[i10] - v[i00], v[i01] - v[i00]
    assert np.dot(np.cross(tu, tv), expected) < 0


def test_plane_default_faces_up():
    v, f = as_np(plane())
    assert face_cross(v, f)[:, 1].min() > 0
    assert np.ptp(v[:, 0]) == pytest.approx(1.0) and np.ptp(v[:, 2]) == pytest.approx(1.0)


def test_box_closed_and_exact_volume():
    size, center = np.array([1.0, 2.0, 0.5]), np.array([0.5, -1.0, 3.0])
    mesh = box(size, center)
    v, f = as_np(mesh)
    assert v.shape == (8, 3) and f.shape == (12, 3)
    assert mesh.uvs is None and mesh.normals is None
    assert_closed_manifold(f)
    assert signed_volume(v, f) == pytest.approx(float(np.prod(size)), rel=1e-6)  # any origin
    np.testing.assert_allclose(v.min(axis=0), center - size / 2, atol=1e-6)
    np.testing.assert_allclose(v.max(axis=0), center + size / 2, atol=1e-6)
    # Each face's normal is an axis pointing away from the centre.
    c = face_cross(v, f)
    n = c / np.linalg.norm(c, axis=1, keepdims=True)
    assert np.all(np.isclose(np.abs(n).max(axis=1), 1.0))
    assert np.all(np.einsum("ij,ij->i", n, v[f].mean(axis=1) - center) > 0)


def test_box_with_face_uvs():
    size = np.array([1.0, 2.0, 3.0])
    mesh = box(size, watertight=False)
    v, f = as_np(mesh)
    assert v.shape == (24, 3) and f.shape == (12, 3) and mesh.uvs.shape == (24, 2)
    assert signed_volume(v, f) == pytest.approx(6.0, rel=1e-6)
    c = face_cross(v, f)
    n_face = c / np.linalg.norm(c, axis=1, keepdims=True)
    np.testing.assert_allclose(n_face, mesh.normals.double().numpy()[f[:, 0]], atol=1e-7)
    _, ids = np.unique(np.round(v * 1e6), axis=0, return_inverse=True)
    assert len(np.unique(ids)) == 8
    assert_closed_manifold(ids.reshape(-1)[f])


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="radius"):
        sphere(radius=-1.0)
    with pytest.raises(ValueError, match="subdivisions"):
        sphere(subdivisions=1.5)
    with pytest.raises(ValueError, match="normal"):
        plane(normal="y")
    with pytest.raises(ValueError, match="size"):
        box(size=(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="subdivisions"):
        teapot(subdivisions=0)


# ----------------------------------------------------------------------------------------------
# vertex_normals
# ----------------------------------------------------------------------------------------------
def test_vertex_normals_of_sphere_are_radial():
    mesh = sphere(subdivisions=3)
    n = vertex_normals(mesh.vertices, mesh.indices)
    assert n.shape == mesh.vertices.shape and n.dtype == torch.float32
    cos = (n * mesh.normals).sum(dim=1)
    assert float(cos.min()) > 0.999


def test_vertex_normals_are_area_weighted():
    # Vertex 0 is shared by a big triangle facing +z and a small one facing +x.
    vertices = torch.tensor([[0, 0, 0], [2, 0, 0], [0, 2, 0], [0, 0, -1], [0, 1, 0]], dtype=torch.float64)
    indices = torch.tensor([[0, 1, 2], [0, 3, 4]])
    n = vertex_normals(vertices, indices)
    expected = torch.tensor([1.0, 0.0, 4.0], dtype=torch.float64) / math.sqrt(17.0)
    torch.testing.assert_close(n[0], expected)
    torch.testing.assert_close(n[1], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))


def test_vertex_normals_unused_vertex_and_gradient():
    vertices = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 5, 5]], dtype=torch.float64,
                            requires_grad=True)
    indices = torch.tensor([[0, 1, 2]])
    n = vertex_normals(vertices, indices)
    assert torch.equal(n[3].detach(), torch.zeros(3, dtype=torch.float64))
    assert torch.all(torch.isfinite(n))
    # Lifting v1 tilts the normal towards -x: d n0.x / d v1.z = -1 here.
    (g,) = torch.autograd.grad(n[0, 0], vertices)
    assert g[1, 2].item() == pytest.approx(-1.0)
    assert torch.autograd.gradcheck(lambda x: vertex_normals(x, indices)[:3], (vertices,))


# ----------------------------------------------------------------------------------------------
# Teapot: the patch data
# ----------------------------------------------------------------------------------------------
def control_nets():
    verts = np.asarray(_teapot_data.VERTICES, dtype=np.float64)
    patches = np.asarray(_teapot_data.PATCHES, dtype=np.int64)
    return verts[patches - 1].reshape(32, 4, 4, 3)


def test_teapot_data_table():
    verts = np.asarray(_teapot_data.VERTICES)
    patches = np.asarray(_teapot_data.PATCHES)
    assert verts.shape == (306, 3) and patches.shape == (32, 16)
    assert patches.min() == 1 and patches.max() == 306
    # Every control point but the four famous unused ones is used.
    assert sorted(set(range(1, 307)) - set(patches.reshape(-1).tolist())) == [205, 206, 216, 223]
    groups = {name: (a, b) for name, a, b in _teapot_data.PATCH_GROUPS}
    assert sum(b - a for a, b in groups.values()) == 32
    # Control-net extents (z up): handle at -x, spout at +x, lid on top, bottom at z = 0.
    nets = control_nets()
    assert nets[slice(*groups["handle"])][..., 0].max() <= -1.5
    assert nets[slice(*groups["spout"])][..., 0].min() >= 1.7
    assert nets[slice(*groups["lid"])][..., 2].max() == 3.15
    assert nets[slice(*groups["bottom"])][..., 2].min() == 0.0
    assert verts[:, 2].min() == 0.0 and verts[:, 0].min() == -3.0 and verts[:, 0].max() == 3.525


def test_teapot_data_spot_values():
    # Points on the plane of symmetry, which the symmetry tests below cannot check, as printed
    # in the published table (one-based numbers).
    published = {
        121: (-1.6, 0.0, 2.025), 125: (-2.3, 0.0, 2.025), 129: (-2.7, 0.0, 2.025), 133: (-2.7, 0.0, 1.8),
        145: (-2.7, 0.0, 1.575), 148: (-3.0, 0.0, 1.35), 149: (-2.5, 0.0, 1.125), 152: (-2.65, 0.0, 0.9375),
        155: (-1.9, 0.0, 0.6), 162: (1.7, 0.0, 1.425), 166: (2.6, 0.0, 1.425), 169: (3.1, 0.0, 0.825),
        170: (2.3, 0.0, 2.1), 173: (2.4, 0.0, 2.025), 177: (3.3, 0.0, 2.4), 186: (2.8, 0.0, 2.475),
        189: (3.525, 0.0, 2.49375), 190: (2.9, 0.0, 2.475), 193: (3.45, 0.0, 2.5125), 194: (2.8, 0.0, 2.4),
        197: (3.2, 0.0, 2.4), 204: (0.0, 0.0, 3.15), 211: (0.0, 0.0, 2.85), 270: (0.0, 0.0, 0.0),
    }
    for number, point in published.items():
        assert _teapot_data.VERTICES[number - 1] == point, number


@pytest.mark.parametrize("group", ["rim", "body", "lid", "bottom"])
def test_teapot_parts_of_revolution_repeat_by_quarter_turns(group):
    nets = control_nets()
    a, b = next((a, b) for name, a, b in _teapot_data.PATCH_GROUPS if name == group)
    for ring in range(a, b, 4):
        quad = nets[ring:ring + 4]
        # Quarter turns about z (the data's up axis): clockwise for all but the bottom.
        turn = np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1]]) if group != "bottom" else \
            np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]])
        for k in range(4):
            np.testing.assert_allclose(quad[(k + 1) % 4], quad[k] @ turn.T, atol=1e-12)
        # The quadrant leaving +x mirrors (across y = 0, u reversed) the one arriving at +x.
        mirror = np.diag([1.0, -1.0, 1.0])
        first = [k for k in range(4) if np.isclose(quad[k][3, 0, 1], 0) and quad[k][3, 0, 0] > 0][0]
        last = [k for k in range(4) if np.isclose(quad[k][3, 3, 1], 0) and quad[k][3, 3, 0] > 0][0]
        np.testing.assert_allclose(quad[last][:, ::-1] @ mirror, quad[first], atol=1e-12)


@pytest.mark.parametrize("group", ["handle", "spout"])
def test_teapot_handle_and_spout_halves_mirror(group):
    nets = control_nets()
    a, _ = next((a, b) for name, a, b in _teapot_data.PATCH_GROUPS if name == group)
    mirror = np.diag([1.0, -1.0, 1.0])
    for p in (a, a + 2):
        np.testing.assert_allclose(nets[p + 1], nets[p][:, ::-1] @ mirror, atol=1e-12)
        assert np.all(nets[p][..., 1] <= 0) and np.all(nets[p + 1][..., 1] >= 0)


# ----------------------------------------------------------------------------------------------
# Teapot: the mesh
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pot():
    return teapot()


def test_teapot_counts_and_types(pot):
    v, f = as_np(pot)
    assert pot.vertices.dtype == torch.float32 and pot.indices.dtype == torch.int64
    assert pot.uvs.dtype == torch.float32 and pot.normals.dtype == torch.float32
    assert len(v) == 2082 and len(f) == 4032  # documented for the default 8 subdivisions
    assert pot.uvs.shape == (len(v), 2) and pot.normals.shape == (len(v), 3)
    assert f.min() == 0 and f.max() == len(v) - 1
    assert len(np.unique(f)) == len(v)  # no unused vertices
    assert np.all(np.linalg.norm(face_cross(v, f), axis=1) > 1e-10)  # no degenerate triangles
    for n in (2, 4, 16):
        m = teapot(n)
        # 32 patches of n x n quads, minus one triangle per quad along the 8 pole rows.
        assert len(m.indices) == 32 * 2 * n * n - 8 * n


def test_teapot_is_welded(pot):
    v, _ = as_np(pot)
    dist, _ = nearest(v, v, exclude_self=True)
    # The one coincident pair: the handle's lower end touches the body at a point, where the
    # two parts stay separate.
    close = np.flatnonzero(dist < 1e-3)
    assert len(close) == 2, "two vertices are (nearly) coincident: a seam was not welded"
    np.testing.assert_allclose(v[close], [[-2.0, 0.9, 0.0]] * 2, atol=1e-6)


@pytest.mark.parametrize("n", [3, 8])
def test_teapot_closed_but_for_its_openings(n):
    mesh = teapot(n)
    v, f = as_np(mesh)
    undirected, directed = edge_counts(f)
    assert undirected.max() == 2, "an edge is shared by more than two triangles"
    assert directed.max() == 1, "neighbouring triangles disagree on the winding"
    b = boundary_edges(f)
    x, y = v[b][..., 0], v[b][..., 1]  # [B, 2]: both ends of each boundary edge; y up
    r = np.hypot(v[b][..., 0], v[b][..., 2])

    def both(mask):
        return mask.all(axis=1)
    openings = {
        "pot rim (inner lip)": both((np.abs(y - 2.4) < 1e-4) & (np.abs(r - 1.4) < 0.01)),
        "lid rim": both((np.abs(y - 2.4) < 1e-4) & (np.abs(r - 1.3) < 0.01)),
        "handle top": both((x > -1.61) & (x < -1.49) & (y > 2.0) & (y < 2.26)),
        "handle bottom": both((x > -2.01) & (x < -1.89) & (y > 0.59) & (y < 0.91)),
        "spout base": both((np.abs(x - 1.7) < 1e-4) & (y > 0.59) & (y < 1.43)),
        "spout tip": both((x > 2.79) & (x < 3.21) & (np.abs(y - 2.4) < 1e-4)),
    }
    expected = {"pot rim (inner lip)": 4 * n, "lid rim": 4 * n, "handle top": 2 * n,
                "handle bottom": 2 * n, "spout base": 2 * n, "spout tip": 2 * n}
    for name, mask in openings.items():
        assert mask.sum() == expected[name], name
    assert len(b) == 16 * n, "boundary edges outside the known openings"


def test_teapot_parts_enclose_positive_volume(pot):
    v, f = as_np(pot)
    labels = triangle_components(f)
    parts = np.unique(labels)
    assert len(parts) == 4  # pot (rim, body, bottom), lid, handle, spout
    volumes = {}
    for lab in parts:
        sub = f[labels == lab]
        centre = v[np.unique(sub)].mean(axis=0)
        name = "handle" if centre[0] < -1.5 else "spout" if centre[0] > 1.5 else \
            "lid" if centre[1] > 2.4 else "pot"
        volumes[name] = capped_volume(v, sub)
    assert set(volumes) == {"pot", "lid", "handle", "spout"}
    assert all(vol > 0 for vol in volumes.values()), volumes
    # The pot is roughly a body of revolution of radius up to 2 and height 2.4.
    assert 15.0 < volumes["pot"] < math.pi * 2.0**2 * 2.4
    # Converged: a finer tessellation changes the volumes little.
    fine = teapot(24)
    vf, ff = as_np(fine)
    assert capped_volume(vf, ff) == pytest.approx(sum(volumes.values()), rel=0.01)


def test_teapot_rays_from_outside_hit_the_outside():
    mesh = teapot(6, normalize=True)
    v, f = as_np(mesh)
    rng = np.random.default_rng(7)
    d = rng.normal(size=(400, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    targets = rng.uniform(-0.5, 0.5, size=(400, 3)) * [1.0, 0.5, 0.6]
    origins = targets - 3.0 * d
    tri, _ = first_hits(v, f, origins, d)
    hit = tri >= 0
    assert hit.mean() > 0.5
    facing = np.einsum("ij,ij->i", face_cross(v, f)[tri[hit]], d[hit]) < 0
    # Only rays slipping into the gap around the lid or the spout's mouth see the inside.
    assert facing.mean() > 0.97, facing.mean()


def test_teapot_normals_unit_and_outward(pot):
    v, f = as_np(pot)
    n = pot.normals.double().numpy()
    assert np.all(np.isfinite(n))
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-5)
    # Shading normals agree with the winding.
    c = face_cross(v, f)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    agree = np.einsum("ij,ikj->ik", c, n[f])
    assert np.all(agree > 0.2)  # the least: where the spout's lip rolls over in one cell
    # Finer, the faces converge to the analytic normals.
    fine = teapot(32)
    vf, ff = as_np(fine)
    cf = face_cross(vf, ff)
    cf /= np.linalg.norm(cf, axis=1, keepdims=True)
    assert np.all(np.einsum("ij,ikj->ik", cf, fine.normals.double().numpy()[ff]) > 0.9)
    # On the body (away from handle and spout) normals point away from the axis.
    r = np.hypot(v[:, 0], v[:, 2])
    body = (np.abs(v[:, 0]) < 1.0) & (v[:, 1] > 0.2) & (v[:, 1] < 2.3) & (r > 1.45)
    assert body.sum() > 50
    radial = np.stack([v[:, 0], np.zeros(len(v)), v[:, 2]], axis=1) / r[:, None].clip(1e-9)
    assert np.all(np.einsum("ij,ij->i", n[body], radial[body]) > 0.3)
    # The poles: the knob's top faces up, the bottom's centre faces down.
    top, bottom = np.argmax(v[:, 1]), np.argmin(np.where(r < 1e-6, v[:, 1], np.inf))
    np.testing.assert_allclose(n[top], [0, 1, 0], atol=1e-4)
    np.testing.assert_allclose(v[bottom], [0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(n[bottom], [0, -1, 0], atol=1e-4)


def test_teapot_upright_and_mirror_symmetric(pot):
    v, _ = as_np(pot)
    n = pot.normals.double().numpy()
    lo, hi = v.min(axis=0), v.max(axis=0)
    # y up: the height (3.15 to the knob) along y; the spout (+x) and handle (-x) far apart.
    np.testing.assert_allclose([lo[1], hi[1]], [0.0, 3.15], atol=1e-6)
    np.testing.assert_allclose([lo[0], lo[2], hi[2]], [-3.0, -2.0, 2.0], atol=1e-3)
    assert 3.4 < hi[0] < 3.5  # the spout's tip
    spout, handle = v[v[:, 0] > 2.2], v[v[:, 0] < -2.2]
    assert spout[:, 1].max() > 2.4  # the spout rises to above the rim
    assert handle[:, 1].min() > 0.8 and handle[:, 1].max() < 2.3  # the handle hangs from below it
    # Mirror-symmetric across z = 0 (the plane through spout and handle), normals too.
    # (Positions with a hundredth of the normals, to tell apart the handle's end from the body's
    # vertex at the same place.)
    mirror = np.array([1.0, 1.0, -1.0])
    dist, partner = nearest(np.concatenate([v, 0.01 * n], axis=1) * np.tile(mirror, 2),
                            np.concatenate([v, 0.01 * n], axis=1))
    assert dist.max() < 1e-5
    np.testing.assert_allclose(v[partner], v * mirror, atol=1e-5)
    np.testing.assert_allclose(n[partner], n * mirror, atol=1e-3)


def test_teapot_normalize():
    m = teapot(4, normalize=True)
    v = m.vertices.double().numpy()
    assert np.linalg.norm(v, axis=1).max() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose((v.min(axis=0) + v.max(axis=0)) / 2, 0.0, atol=1e-6)
    raw = teapot(4)
    np.testing.assert_array_equal(m.indices.numpy(), raw.indices.numpy())
    np.testing.assert_allclose(m.normals.numpy(), raw.normals.numpy())


def test_teapot_split_uv_seams():
    welded, split = teapot(6), teapot(6, split_uv_seams=True)
    assert len(split.indices) == len(welded.indices) and len(split.vertices) > len(welded.vertices)
    uv = split.uvs.double().numpy()
    assert uv.min() >= -1e-6 and uv.max() <= 1 + 1e-6
    f = split.indices.numpy()
    span = uv[f].max(axis=1) - uv[f].min(axis=1)
    assert span.max() < 0.2  # no triangle interpolates across a wrap
    # The same surface: identifying coincident vertices gives back the welded mesh's vertices.
    sv, wv = split.vertices.double().numpy(), welded.vertices.double().numpy()
    assert nearest(sv, wv)[0].max() < 1e-6 and nearest(wv, sv)[0].max() < 1e-6


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------
def test_teapot_renders():
    rt = pytest.importorskip("raytrace")
    mesh = teapot(4, normalize=True)
    cam = rt.Camera(position=[0.0, 0.9, 3.0], look_at=[0.0, 0.0, 0.0], up=[0.0, 1.0, 0.0], fov=45.0,
                    resolution=(32, 32))
    scene = rt.Scene(camera=cam,
                     shapes=[rt.Shape(mesh.vertices, mesh.indices, 0, uvs=mesh.uvs, normals=mesh.normals)],
                     materials=[rt.Material(torch.tensor([0.8, 0.8, 0.8]))],
                     envmap=rt.EnvironmentMap(torch.ones(8, 16, 3)))
    img = rt.render(scene, spp=4, max_bounces=1, seed=1, channels=("radiance", "alpha"))
    assert img.shape == (32, 32, 4) and torch.all(torch.isfinite(img))
    alpha = img[..., 3]
    # The silhouette: at this distance the teapot covers about a sixth of the frame.
    assert 0.08 < float(alpha.mean()) < 0.35
    inside = alpha > 0.99
    assert int(inside.sum()) > 50
    # A diffuse 0.8 surface under a unit sky: lit (never black), at most 0.8 (self-occlusion).
    rad = img[..., :3][inside]
    assert 0.3 < float(rad.mean()) < 0.8
    # The spout side (+x, right of the image) and the handle side both show.
    cols = torch.nonzero(alpha > 0.5)[:, 1]
    assert int(cols.min()) < 8 and int(cols.max()) > 23
