"""Mesh Laplacians as SciPy sparse matrices: combinatorial (connectivity only) and cotangent.

Both are symmetric positive semi-definite ``L = D - W``: ``W`` holds one weight per edge
(``w_ij = w_ji``) and ``D`` is the diagonal of row sums, so ``L @ 1 = 0``.

- combinatorial: ``w_ij = 1`` for each edge ``(i, j)``, whatever the positions. This is the
  Laplacian of Nicolet et al. 2021, "Large Steps in Inverse Rendering of Geometry": it depends
  on connectivity only, so its factorisation survives any motion of the vertices.
- cotangent: ``w_ij = (cot alpha_ij + cot beta_ij) / 2``, the angles opposite edge ``(i, j)`` in
  its one or two triangles (the P1 finite-element stiffness matrix; no mass matrix). Weights can
  be negative at obtuse angles; the matrix stays positive semi-definite (it is a Dirichlet
  energy).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
import scipy.sparse as sp
import torch

from .topology import unique_sorted

LAPLACIANS = ("combinatorial", "cotangent")


# ------------------------------------------------------------------------------------------------
# Argument checks (shared by the rest of raytrace.optim)
# ------------------------------------------------------------------------------------------------
def check_vertices(vertices, name: str = "vertices", dims: Tuple[int, ...] = (3,)) -> np.ndarray:
    """[N, D] finite float tensor -> float64 numpy array; D must be one of ``dims``."""
    if not isinstance(vertices, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (got {type(vertices).__name__})")
    if not vertices.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (got dtype {vertices.dtype})")
    if vertices.dim() != 2 or (dims and vertices.shape[1] not in dims):
        want = " or ".join(f"[N, {d}]" for d in dims) if dims else "[N, D]"
        raise ValueError(f"{name} must have shape {want} (got {list(vertices.shape)})")
    v = vertices.detach().cpu().to(torch.float64).numpy()
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} contains NaN or Inf values")
    return v


def check_faces(faces, num_vertices: int, name: str = "faces", corners: Tuple[int, ...] = (3,)) -> np.ndarray:
    """[M, K] integer tensor with values in [0, num_vertices) -> int64 numpy array."""
    if not isinstance(faces, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (got {type(faces).__name__})")
    if faces.is_floating_point() or faces.is_complex() or faces.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor (int32 or int64), got dtype {faces.dtype}")
    if faces.dim() != 2 or faces.shape[1] not in corners:
        want = " or ".join(f"[M, {k}]" for k in corners)
        raise ValueError(f"{name} must have shape {want} (got {list(faces.shape)})")
    if faces.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    f = faces.detach().cpu().to(torch.int64).numpy()
    lo, hi = int(f.min()), int(f.max())
    if lo < 0:
        raise ValueError(f"{name} must be non-negative (got min {lo})")
    if hi >= num_vertices:
        raise ValueError(f"{name} must have values < {num_vertices}, the number of vertices (got max {hi})")
    repeats = (f == np.roll(f, 1, axis=1)).any(axis=1)  # compares every pair of corners
    if repeats.any():
        bad = int(np.nonzero(repeats)[0][0])
        raise ValueError(f"{name}[{bad}] = {f[bad].tolist()} repeats a vertex")
    return f


# ------------------------------------------------------------------------------------------------
# Laplacians
# ------------------------------------------------------------------------------------------------
def _from_weights(n: int, i: np.ndarray, j: np.ndarray, w: np.ndarray) -> sp.csc_matrix:
    """L = D - W from per-edge weights (each undirected pair listed once or more; sums)."""
    W = sp.coo_matrix((np.concatenate([w, w]), (np.concatenate([i, j]), np.concatenate([j, i]))),
                      shape=(n, n)).tocsc()
    W.sum_duplicates()
    D = sp.diags(np.asarray(W.sum(axis=1)).ravel())
    return (D - W).tocsc()


def combinatorial_laplacian(num_vertices: int, faces: np.ndarray) -> sp.csc_matrix:
    """``D - A`` from connectivity: [N, N] float64 CSC.

    Args:
        num_vertices: N.
        faces: [M, 3] int64 triangles, or [M, 2] edges (a polyline, or any graph).
    """
    k = faces.shape[1]
    edges = np.concatenate([faces[:, [c, (c + 1) % k]] for c in range(k if k > 2 else 1)])
    lo, hi = edges.min(axis=1), edges.max(axis=1)
    keys = unique_sorted(lo * np.int64(num_vertices) + hi)[0]  # each undirected edge once: weight 1
    return _from_weights(num_vertices, keys // num_vertices, keys % num_vertices, np.ones(len(keys)))


def cotangent_laplacian(vertices: np.ndarray, faces: np.ndarray) -> sp.csc_matrix:
    """``D - W`` with ``w_ij = (cot alpha_ij + cot beta_ij) / 2``: [N, N] float64 CSC.

    Args:
        vertices: [N, 3] float64 positions.
        faces: [M, 3] int64 triangles.

    Raises:
        ValueError: if a triangle has zero area (its cotangents are undefined).
    """
    v = vertices[faces]  # [M, 3 corners, 3]
    double_area = np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)
    if np.any(double_area <= 0):
        bad = int(np.nonzero(double_area <= 0)[0][0])
        raise ValueError(f"faces[{bad}] has zero area: the cotangent Laplacian is undefined there")
    i_list, j_list, w_list = [], [], []
    for c in range(3):
        # The angle at corner c is opposite the edge (c+1, c+2):
        # cot = dot(e1, e2) / |cross(e1, e2)| with e1, e2 the edges leaving corner c.
        e1 = v[:, (c + 1) % 3] - v[:, c]
        e2 = v[:, (c + 2) % 3] - v[:, c]
        cot = np.einsum("ij,ij->i", e1, e2) / double_area
        i_list.append(faces[:, (c + 1) % 3])
        j_list.append(faces[:, (c + 2) % 3])
        w_list.append(0.5 * cot)
    return _from_weights(len(vertices), np.concatenate(i_list), np.concatenate(j_list), np.concatenate(w_list))


def laplacian(vertices: torch.Tensor, faces: torch.Tensor, kind: str = "combinatorial") -> sp.csc_matrix:
    """The Laplacian of a mesh as a SciPy sparse matrix.

    Args:
        vertices: [N, 3] float positions ([N, D] for ``"combinatorial"``, which reads only N).
        faces: [M, 3] integer triangles (``"combinatorial"`` also takes [M, 2] edges).
        kind: ``"combinatorial"`` (``D - A``) or ``"cotangent"``; see the module docstring.

    Returns:
        [N, N] float64 ``scipy.sparse.csc_matrix``, symmetric, rows summing to zero.
    """
    if kind not in LAPLACIANS:
        raise ValueError(f"laplacian must be one of {LAPLACIANS} (got {kind!r})")
    if kind == "combinatorial":
        v = check_vertices(vertices, dims=())
        f = check_faces(faces, len(v), corners=(2, 3))
        return combinatorial_laplacian(len(v), f)
    v = check_vertices(vertices)
    f = check_faces(faces, len(v))
    return cotangent_laplacian(v, f)
