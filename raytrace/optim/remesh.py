"""Isotropic remeshing: Botsch and Kobbelt, "A Remeshing Approach to Multiresolution Modeling"
(SGP 2004), vectorised with numpy.

Each iteration, for a target edge length t:

1. split every edge longer than 4/3 t at its midpoint;
2. collapse edges shorter than 4/5 t to their midpoint, unless the collapse would make an edge
   longer than 4/3 t, flip (or nearly flip) a triangle, or break the manifold (the link
   condition: the two end points share exactly two neighbours);
3. flip edges when that brings the valences of the four vertices involved closer to 6 (4 on a
   boundary);
4. move each vertex to the centroid of its neighbours within its tangent plane, then project it
   back onto the input surface.

Operations run in rounds on sets of edges that do not interact (no shared triangles for
collapses, no shared vertex for flips), chosen as local minima of a priority, so each round is a
few numpy calls. Boundary vertices stay fixed (boundary edges are still split). Triangles keep
their orientation throughout.
"""
from __future__ import annotations

import math
import numbers
from typing import Tuple

import numpy as np
import torch
from scipy.spatial import cKDTree

from .laplacian import check_faces, check_vertices
from .topology import adjacency, cross, edges, face_normals, halfedge_vertices, vertex_faces

# A collapse or flip is refused if a triangle's normal would turn by more than this (cosine).
_MIN_NORMAL_COS = math.cos(math.radians(60.0))
# Edges are flipped only where their two triangles are within this angle of coplanar (cosine of
# the angle between their normals), so flips do not cut across creases.
_FLIP_MAX_DIHEDRAL_COS = math.cos(math.radians(30.0))
_MAX_ROUNDS = 12


# ------------------------------------------------------------------------------------------------
# Closest points on the input surface
# ------------------------------------------------------------------------------------------------
def _closest_point_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Closest points of triangles (a, b, c) to p, all [..., 3] (Ericson, Real-Time Collision
    Detection, 5.1.5: the Voronoi region of a vertex, an edge or the face)."""
    dot = lambda x, y: np.einsum("...i,...i->...", x, y)
    ab, ac, ap, bp, cp = b - a, c - a, p - a, p - b, p - c
    d1, d2, d3, d4, d5, d6 = dot(ab, ap), dot(ac, ap), dot(ab, bp), dot(ac, bp), dot(ab, cp), dot(ac, cp)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        # Face region, then the regions that take precedence, least first (the last one wins).
        denom = va + vb + vc
        v = np.where(denom != 0, vb / denom, 0.0)
        w = np.where(denom != 0, vc / denom, 0.0)
        out = a + ab * v[..., None] + ac * w[..., None]
        t = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        out = np.where(((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0))[..., None], b + (c - b) * t[..., None], out)
        t = d2 / (d2 - d6)
        out = np.where(((vb <= 0) & (d2 >= 0) & (d6 <= 0))[..., None], a + ac * t[..., None], out)
        out = np.where(((d6 >= 0) & (d5 <= d6))[..., None], c, out)
        t = d1 / (d1 - d3)
        out = np.where(((vc <= 0) & (d1 >= 0) & (d3 <= 0))[..., None], a + ab * t[..., None], out)
        out = np.where(((d3 >= 0) & (d4 <= d3))[..., None], b, out)
        out = np.where(((d1 <= 0) & (d2 <= 0))[..., None], a, out)
    return out


def _radius(tri: np.ndarray) -> np.ndarray:
    """Largest centroid-to-corner distance of each triangle [M, 3, 3] -> [M]."""
    return np.linalg.norm(tri - tri.mean(axis=1, keepdims=True), axis=2).max(axis=1)


class _Surface:
    """The input mesh as a projection target: exact closest points, through a k-d tree of
    triangle centroids. A triangle whose centroid is at distance D is at least D - r away, r
    the largest centroid-to-corner distance, so k grows until that bound proves the answer.
    Triangles larger than the typical one or than half the target edge length are split four
    ways (the same surface; at most 500k pieces) so that r stays small and k = 8 nearly always
    suffices."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, target: float):
        tri = vertices[faces]  # [M, 3, 3]
        limit = min(2.0 * float(np.median(_radius(tri))), 0.5 * target)
        for _ in range(12):
            big = _radius(tri) > limit
            if not big.any() or len(tri) + 3 * int(big.sum()) > 500_000:
                break
            t = tri[big]
            m01, m12, m20 = 0.5 * (t[:, 0] + t[:, 1]), 0.5 * (t[:, 1] + t[:, 2]), 0.5 * (t[:, 2] + t[:, 0])
            tri = np.concatenate([tri[~big], np.stack([t[:, 0], m01, m20], 1), np.stack([m01, t[:, 1], m12], 1),
                                  np.stack([m20, m12, t[:, 2]], 1), np.stack([m01, m12, m20], 1)])
        self.tri = tri
        self.r = float(_radius(tri).max())
        self.tree = cKDTree(tri.mean(axis=1))

    def project(self, p: np.ndarray) -> np.ndarray:
        """[n, 3] points -> [n, 3] closest points on the surface."""
        out = np.empty_like(p)
        todo = np.arange(len(p))
        m = len(self.tri)
        k = min(8, m)
        while len(todo):
            dist, idx = self.tree.query(p[todo], k=k)
            dist, idx = dist.reshape(len(todo), -1), idx.reshape(len(todo), -1)
            tri = self.tri[idx]  # [n, k, 3, 3]
            q = _closest_point_on_triangles(p[todo, None], tri[:, :, 0], tri[:, :, 1], tri[:, :, 2])
            d = np.linalg.norm(q - p[todo, None], axis=2)
            best = d.argmin(axis=1)
            rows = np.arange(len(todo))
            out[todo] = q[rows, best]
            proven = (d[rows, best] <= dist[:, -1] - self.r) | (k >= m)
            todo = todo[~proven]
            k = min(2 * k, m)
        return out


# ------------------------------------------------------------------------------------------------
# Shared helpers
# ------------------------------------------------------------------------------------------------
def _unit_rows(n: np.ndarray) -> np.ndarray:
    length = np.linalg.norm(n, axis=-1, keepdims=True)
    return n / np.where(length > 0, length, 1.0)


def _boundary_vertices(e, num_vertices: int) -> np.ndarray:
    on = np.zeros(num_vertices, dtype=bool)
    on[e.vertices[e.count == 1].reshape(-1)] = True
    return on


def _local_minima(keys: np.ndarray, groups: np.ndarray, num_vertices: int) -> np.ndarray:
    """Candidates that win against every candidate they share a vertex with.

    keys: [K] distinct priorities (smaller first); groups: [K, g] the vertices of each
    candidate. Returns a [K] bool mask: no two winners share a vertex, and the smallest key
    always wins, so rounds make progress.
    """
    best = np.full(num_vertices, np.inf)
    np.minimum.at(best, groups.reshape(-1), np.repeat(keys, groups.shape[1]))
    return best[groups].min(axis=1) == keys


def _independent_collapses(keys: np.ndarray, a: np.ndarray, b: np.ndarray, F: np.ndarray, num_vertices: int) -> np.ndarray:
    """Candidate collapses (a, b) [K] that win against every candidate whose star (the
    triangles around its end points) shares a triangle with theirs; keys [K] distinct, smaller
    first. Returns a [K] bool mask."""
    at_vertex = np.full(num_vertices, np.inf)  # smallest key of a candidate ending there
    np.minimum.at(at_vertex, a, keys)
    np.minimum.at(at_vertex, b, keys)
    at_face = at_vertex[F].min(axis=1)  # smallest key of a candidate whose star holds the face
    around = np.full(num_vertices, np.inf)  # smallest such key over the triangles around a vertex
    np.minimum.at(around, F.reshape(-1), np.repeat(at_face, 3))
    return np.minimum(around[a], around[b]) == keys


# ------------------------------------------------------------------------------------------------
# 1. Split long edges
# ------------------------------------------------------------------------------------------------
def _split_faces(V: np.ndarray, F: np.ndarray, mid: np.ndarray) -> np.ndarray:
    """Re-triangulates faces whose edges got a midpoint. mid [M, 3]: the new vertex on edge
    (c, c+1) of each face, or -1. Orientation is kept."""
    s = mid >= 0
    ns = s.sum(axis=1)
    out = [F[ns == 0]]
    # Three midpoints: four triangles.
    r = ns == 3
    f, m = F[r], mid[r]
    out += [np.stack([f[:, 0], m[:, 0], m[:, 2]], 1), np.stack([m[:, 0], f[:, 1], m[:, 1]], 1),
            np.stack([m[:, 2], m[:, 1], f[:, 2]], 1), m]
    # One midpoint on edge (a, b) of (a, b, c): (a, m, c) and (m, b, c).
    r = np.nonzero(ns == 1)[0]
    k = s[r].argmax(axis=1)
    a, b, c, m = F[r, k], F[r, (k + 1) % 3], F[r, (k + 2) % 3], mid[r, k]
    out += [np.stack([a, m, c], 1), np.stack([m, b, c], 1)]
    # Two midpoints: m1 on (a, b), m2 on (b, c), (c, a) whole. (m1, b, m2), then the quad
    # (a, m1, m2, c) cut along its shorter diagonal.
    r = np.nonzero(ns == 2)[0]
    u = (~s[r]).argmax(axis=1)
    a, b, c = F[r, (u + 1) % 3], F[r, (u + 2) % 3], F[r, u]
    m1, m2 = mid[r, (u + 1) % 3], mid[r, (u + 2) % 3]
    out.append(np.stack([m1, b, m2], 1))
    diag_a_m2 = np.linalg.norm(V[a] - V[m2], axis=1) <= np.linalg.norm(V[m1] - V[c], axis=1)
    d, nd = diag_a_m2, ~diag_a_m2
    out += [np.stack([a[d], m1[d], m2[d]], 1), np.stack([a[d], m2[d], c[d]], 1),
            np.stack([a[nd], m1[nd], c[nd]], 1), np.stack([m1[nd], m2[nd], c[nd]], 1)]
    return np.concatenate(out).astype(np.int64)


def _split(V: np.ndarray, F: np.ndarray, hi: float) -> Tuple[np.ndarray, np.ndarray]:
    for _ in range(_MAX_ROUNDS):
        e = edges(F, len(V))
        ev = e.vertices
        long = np.linalg.norm(V[ev[:, 0]] - V[ev[:, 1]], axis=1) > hi
        if not long.any():
            break
        new_id = np.full(len(ev), -1, dtype=np.int64)
        new_id[long] = len(V) + np.arange(int(long.sum()))
        V = np.concatenate([V, 0.5 * (V[ev[long, 0]] + V[ev[long, 1]])])
        F = _split_faces(V, F, new_id[e.edge_of_halfedge.reshape(-1, 3)])
    return V, F


# ------------------------------------------------------------------------------------------------
# 2. Collapse short edges
# ------------------------------------------------------------------------------------------------
def _collapse_round(V: np.ndarray, F: np.ndarray, lo: float, hi: float) -> Tuple[np.ndarray, np.ndarray, int]:
    n = len(V)
    e = edges(F, n)
    ev = e.vertices
    length = np.linalg.norm(V[ev[:, 0]] - V[ev[:, 1]], axis=1)
    boundary = _boundary_vertices(e, n)
    cand = np.nonzero((length < lo) & (e.count == 2) & ~boundary[ev[:, 0]] & ~boundary[ev[:, 1]])[0]
    alive = np.count_nonzero(np.bincount(F.reshape(-1), minlength=n))
    if len(cand) == 0 or alive <= 6:
        return V, F, 0
    a, b = ev[cand, 0], ev[cand, 1]
    # Link condition: exactly two common neighbours (the corners opposite the edge); valences
    # stay >= 3 at the merged vertex and at the two opposite corners.
    A = adjacency(n, ev)
    valence = np.asarray(A.sum(axis=1)).ravel()
    common = np.asarray(A[a].multiply(A[b]).sum(axis=1)).ravel()
    _, _, opp = halfedge_vertices(F)
    h = e.halfedges[cand]
    ok = (common == 2) & (valence[a] + valence[b] - 4 >= 3) & (valence[opp[h[:, 0]]] > 3) & (valence[opp[h[:, 1]]] > 3)
    cand, a, b = cand[ok], a[ok], b[ok]
    # Geometry: every triangle around a or b (except the two that vanish) with the end point
    # moved to the midpoint p keeps its orientation and gets no edge longer than hi.
    ok = np.ones(len(cand), dtype=bool)
    p = 0.5 * (V[a] + V[b])
    offsets, vf = vertex_faces(F, n)
    normals = face_normals(V, F)
    for end, other in ((a, b), (b, a)):
        count = offsets[end + 1] - offsets[end]
        k = np.repeat(np.arange(len(cand)), count)
        first = np.repeat(offsets[end], count)
        f = vf[first + np.arange(len(k)) - np.repeat(np.cumsum(count) - count, count)]
        corners = F[f]  # [pairs, 3]
        keep = ~(corners == other[k, None]).any(axis=1)
        moved = corners == end[k, None]
        P = V[corners]
        P[moved] = p[k]
        n_new = cross(P[:, 1] - P[:, 0], P[:, 2] - P[:, 0])
        n_old = normals[f]
        cos = np.einsum("ij,ij->i", n_new, n_old) / np.maximum(
            np.linalg.norm(n_new, axis=1) * np.linalg.norm(n_old, axis=1), 1e-300)
        too_long = (np.linalg.norm(P - p[k, None], axis=2) > hi).any(axis=1)
        bad = keep & ((cos < _MIN_NORMAL_COS) | too_long)
        ok &= np.bincount(k[bad], minlength=len(cand)) == 0
    cand, a, b, p = cand[ok], a[ok], b[ok], p[ok]
    if len(cand) == 0:
        return V, F, 0
    # Non-interacting collapses: no triangle in two stars. Random priorities (seeded by the
    # round's size, so results are reproducible) make large independent sets; ordering by
    # length would chain neighbours on a regular mesh and take many rounds.
    keys = np.random.default_rng(len(cand)).permutation(len(cand)).astype(np.float64)
    win = _independent_collapses(keys, a, b, F, n)
    a, b, p = a[win], b[win], p[win]
    win_count = min(len(a), alive - 6)
    a, b, p = a[:win_count], b[:win_count], p[:win_count]
    V = V.copy()
    V[a] = p
    remap = np.arange(n)
    remap[b] = a
    F = remap[F]
    degenerate = (F[:, 0] == F[:, 1]) | (F[:, 1] == F[:, 2]) | (F[:, 2] == F[:, 0])
    return V, F[~degenerate], len(a)


def _collapse(V: np.ndarray, F: np.ndarray, lo: float, hi: float) -> Tuple[np.ndarray, np.ndarray]:
    for _ in range(_MAX_ROUNDS):
        V, F, done = _collapse_round(V, F, lo, hi)
        if done == 0:
            break
    return V, F


# ------------------------------------------------------------------------------------------------
# 3. Flip edges toward valence 6
# ------------------------------------------------------------------------------------------------
def _flip_round(V: np.ndarray, F: np.ndarray) -> Tuple[np.ndarray, int]:
    n = len(V)
    e = edges(F, n)
    src, dst, opp = halfedge_vertices(F)
    interior = np.nonzero(e.count == 2)[0]
    h0, h1 = e.halfedges[interior, 0], e.halfedges[interior, 1]
    # Triangle h0 is (a, b, c), triangle h1 is (b, a, d); after the flip: (c, a, d), (d, b, c).
    a, b, c, d = src[h0], dst[h0], opp[h0], opp[h1]
    valence = np.bincount(e.vertices.reshape(-1), minlength=n)
    target = np.where(_boundary_vertices(e, n), 4, 6)
    dev = lambda x, delta: (valence[x] + delta - target[x]) ** 2
    before = dev(a, 0) + dev(b, 0) + dev(c, 0) + dev(d, 0)
    after = dev(a, -1) + dev(b, -1) + dev(c, 1) + dev(d, 1)
    ok = (after < before) & (c != d) & (valence[a] > 3) & (valence[b] > 3)
    # The new edge (c, d) must not exist already.
    keys = np.sort(e.vertices[:, 0] * np.int64(n) + e.vertices[:, 1])
    cd = np.minimum(c, d) * np.int64(n) + np.maximum(c, d)
    pos = np.minimum(np.searchsorted(keys, cd), len(keys) - 1)
    ok &= keys[pos] != cd
    # Geometry: nearly flat, and the new triangles face the way the old ones did.
    n0, n1 = _unit_rows(face_normals(V, F[h0 // 3])), _unit_rows(face_normals(V, F[h1 // 3]))
    mean = _unit_rows(n0 + n1)
    t2 = np.stack([c, a, d], 1)
    t3 = np.stack([d, b, c], 1)
    n2, n3 = _unit_rows(face_normals(V, t2)), _unit_rows(face_normals(V, t3))
    ok &= (np.einsum("ij,ij->i", n0, n1) >= _FLIP_MAX_DIHEDRAL_COS)
    ok &= (np.einsum("ij,ij->i", n2, mean) >= _MIN_NORMAL_COS) & (np.einsum("ij,ij->i", n3, mean) >= _MIN_NORMAL_COS)
    idx = np.nonzero(ok)[0]
    if len(idx) == 0:
        return F, 0
    gain = (before - after)[idx]
    # Largest gain first, ties in random (seeded) order.
    tie = np.random.default_rng(len(idx)).permutation(len(idx))
    keys = np.empty(len(idx))
    keys[np.lexsort((tie, -gain))] = np.arange(len(idx))
    win = idx[_local_minima(keys, np.stack([a, b, c, d], 1)[idx], n)]
    F = F.copy()
    F[h0[win] // 3] = t2[win]
    F[h1[win] // 3] = t3[win]
    return F, len(win)


def _flip(V: np.ndarray, F: np.ndarray) -> np.ndarray:
    for _ in range(_MAX_ROUNDS):
        F, done = _flip_round(V, F)
        if done == 0:
            break
    return F


# ------------------------------------------------------------------------------------------------
# 4. Tangential relaxation and projection
# ------------------------------------------------------------------------------------------------
def _relax(V: np.ndarray, F: np.ndarray, surface: _Surface) -> np.ndarray:
    n = len(V)
    e = edges(F, n)
    A = adjacency(n, e.vertices).astype(np.float64)
    degree = np.asarray(A.sum(axis=1)).ravel()
    movable = (degree > 0) & ~_boundary_vertices(e, n)
    centroid = (A @ V) / np.maximum(degree, 1)[:, None]
    # Area-weighted vertex normals
    fn = face_normals(V, F)
    vn = np.zeros_like(V)
    for c in range(3):
        np.add.at(vn, F[:, c], fn)
    vn = _unit_rows(vn)
    step = centroid - V
    step -= np.einsum("ij,ij->i", step, vn)[:, None] * vn
    new = V.copy()
    new[movable] = surface.project(V[movable] + step[movable])
    # Undo the moves of vertices whose triangles would turn over.
    old = _unit_rows(fn)
    for _ in range(_MAX_ROUNDS):
        bad = np.einsum("ij,ij->i", _unit_rows(face_normals(new, F)), old) < _MIN_NORMAL_COS
        if not bad.any():
            break
        back = np.unique(F[bad].reshape(-1))
        new[back] = V[back]
    return new


# ------------------------------------------------------------------------------------------------
# Public API
# ------------------------------------------------------------------------------------------------
def _check_manifold(F: np.ndarray, n: int) -> None:
    e = edges(F, n)
    if (e.count > 2).any():
        bad = e.vertices[np.argmax(e.count > 2)].tolist()
        raise ValueError(f"faces must form a manifold mesh: edge {bad} has {int(e.count.max())} triangles")
    src, _, _ = halfedge_vertices(F)
    two = e.count == 2
    h = e.halfedges[two]
    same = src[h[:, 0]] == src[h[:, 1]]
    if same.any():
        bad = e.vertices[two][np.argmax(same)].tolist()
        raise ValueError(f"faces must be consistently oriented: edge {bad} is traversed the same way by both its "
                         "triangles")


def remesh(vertices: torch.Tensor, faces: torch.Tensor, target_edge_length: float,
           iterations: int = 5) -> Tuple[torch.Tensor, torch.Tensor]:
    """Isotropic remeshing toward edges of length ``target_edge_length`` (Botsch & Kobbelt 2004).

    Args:
        vertices: [N, 3] float positions.
        faces: [M, 3] integer triangles: an oriented manifold (every edge in one or two
            triangles, traversed in opposite directions by the two).
        target_edge_length: > 0, in the units of ``vertices``.
        iterations: >= 1 rounds of split, collapse, flip and relax.

    Returns:
        (vertices [N', 3] with the dtype and device of ``vertices``, faces [M', 3] int64). A
        closed mesh stays closed and manifold with the same Euler characteristic; triangles keep
        their orientation; vertices lie on the input surface (boundary vertices do not move).
    """
    V = check_vertices(vertices)
    F = check_faces(faces, len(V))
    if isinstance(target_edge_length, bool) or not isinstance(target_edge_length, numbers.Real) \
            or not math.isfinite(target_edge_length) or target_edge_length <= 0:
        raise ValueError(f"target_edge_length must be a finite number > 0 (got {target_edge_length!r})")
    if isinstance(iterations, bool) or not isinstance(iterations, numbers.Integral) or iterations < 1:
        raise ValueError(f"iterations must be an integer >= 1 (got {iterations!r})")
    _check_manifold(F, len(V))
    t = float(target_edge_length)
    lo, hi = 4.0 / 5.0 * t, 4.0 / 3.0 * t
    surface = _Surface(V, F, t)
    for _ in range(int(iterations)):
        V, F = _split(V, F, hi)
        V, F = _collapse(V, F, lo, hi)
        F = _flip(V, F)
        V = _relax(V, F, surface)
    # Drop the vertices that collapses left unused.
    used = np.zeros(len(V), dtype=bool)
    used[F.reshape(-1)] = True
    index = np.cumsum(used) - 1
    return (torch.from_numpy(V[used]).to(dtype=vertices.dtype, device=vertices.device),
            torch.from_numpy(index[F]).to(dtype=torch.int64, device=vertices.device))
