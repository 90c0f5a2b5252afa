"""Connectivity of triangle meshes with numpy: unique edges, edge-face incidence, adjacency.

Half-edge ``h = 3 f + c`` of face ``f`` runs from ``faces[f, c]`` to ``faces[f, (c + 1) % 3]``;
the corner ``faces[f, (c + 2) % 3]`` is opposite it. An undirected edge ``(i, j)``, ``i < j``,
is keyed ``i * N + j``.

(``np.unique`` is avoided on purpose: in numpy 2.4 it hashes and runs 50-100x slower than a sort
on a million int64 keys.)
"""
from __future__ import annotations

from typing import NamedTuple, Tuple

import numpy as np
import scipy.sparse as sp


def unique_sorted(keys: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(unique values ascending, inverse [len(keys)], counts, order) of a 1-D integer array;
    ``order`` sorts ``keys`` (equal keys in no particular order)."""
    order = np.argsort(keys)
    s = keys[order]
    first = np.ones(len(s), dtype=bool)
    first[1:] = s[1:] != s[:-1]
    group = np.cumsum(first) - 1
    inverse = np.empty(len(keys), dtype=np.int64)
    inverse[order] = group
    starts = np.nonzero(first)[0]
    counts = np.diff(np.append(starts, len(s)))
    return s[first], inverse, counts, order


class Edges(NamedTuple):
    """Undirected edges of a triangle mesh and their incidence.

    ``vertices`` [E, 2] (i < j); ``edge_of_halfedge`` [3M]; ``count`` [E] faces per edge;
    ``halfedges`` [E, 2]: the half-edges of each edge (the second is -1 on a boundary edge).
    """
    vertices: np.ndarray
    edge_of_halfedge: np.ndarray
    count: np.ndarray
    halfedges: np.ndarray


def halfedge_vertices(faces: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(origin, destination, opposite corner) of every half-edge, each [3M]."""
    src = faces.reshape(-1)
    dst = np.roll(faces, -1, axis=1).reshape(-1)
    opp = np.roll(faces, -2, axis=1).reshape(-1)
    return src, dst, opp


def edges(faces: np.ndarray, num_vertices: int) -> Edges:
    """The undirected edges of [M, 3] triangles; see :class:`Edges`."""
    src, dst, _ = halfedge_vertices(faces)
    lo, hi = np.minimum(src, dst), np.maximum(src, dst)
    keys, inverse, count, order = unique_sorted(lo * np.int64(num_vertices) + hi)
    verts = np.stack([keys // num_vertices, keys % num_vertices], axis=1)
    # The half-edges of each edge: ``order`` lists them grouped by edge.
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    he = np.full((len(keys), 2), -1, dtype=np.int64)
    he[:, 0] = order[start]
    two = count >= 2
    he[two, 1] = order[start[two] + 1]
    return Edges(verts, inverse, count, he)


def adjacency(num_vertices: int, edge_vertices: np.ndarray) -> sp.csr_matrix:
    """Symmetric [N, N] 0/1 vertex adjacency (CSR, int32) from [E, 2] edges."""
    i, j = edge_vertices[:, 0], edge_vertices[:, 1]
    data = np.ones(2 * len(i), dtype=np.int32)
    return sp.csr_matrix((data, (np.concatenate([i, j]), np.concatenate([j, i]))), shape=(num_vertices, num_vertices))


def vertex_faces(faces: np.ndarray, num_vertices: int) -> Tuple[np.ndarray, np.ndarray]:
    """CSR of the faces around each vertex: (offsets [N + 1], face ids [3M])."""
    corner_vertex = faces.reshape(-1)
    order = np.argsort(corner_vertex, kind="stable")
    counts = np.bincount(corner_vertex, minlength=num_vertices)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return offsets, order // 3


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross product of [..., 3] arrays (written out: np.cross is several times slower
    on many short rows)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unnormalised ``cross(v1 - v0, v2 - v0)`` (twice the area times the unit normal), [M, 3]."""
    v0 = vertices[faces[:, 0]]
    return cross(vertices[faces[:, 1]] - v0, vertices[faces[:, 2]] - v0)


def euler_characteristic(faces: np.ndarray, num_vertices: int) -> int:
    """V - E + F over the vertices that some face uses."""
    used = np.count_nonzero(np.bincount(faces.reshape(-1), minlength=num_vertices))
    return int(used) - len(edges(faces, num_vertices).count) + len(faces)
