"""The Large Steps parameterisation: vertex positions x through a latent u = (I + lambda L) x.

Nicolet, Jacobson and Jakob, "Large Steps in Inverse Rendering of Geometry" (SIGGRAPH Asia 2021).
With ``M = I + lambda L`` (L a mesh Laplacian, symmetric positive semi-definite, so M is
symmetric positive definite), the optimiser updates ``u`` and the scene uses

    x = M^-1 u.

A gradient step on u, ``u <- u - eta M^-1 dPhi/dx``, moves x by ``-eta M^-2 dPhi/dx``: sparse,
spiky gradients (silhouettes) are spread smoothly over the surface instead of tangling it.

    M = compute_matrix(vertices, faces, lambda_=19.0)     # factorised once
    u = to_differential(M, vertices).requires_grad_()     # [N, 3]
    x = from_differential(M, u)                           # [N, 3], differentiable in u

M depends on connectivity only (combinatorial Laplacian), so it is computed once per topology:
again after remeshing, never per iteration.
"""
from __future__ import annotations

import numbers
from typing import Optional

import numpy as np
import scipy.sparse as sp
import torch

from .laplacian import LAPLACIANS, check_faces, check_vertices, combinatorial_laplacian, cotangent_laplacian
from .solvers import Factorization, factorize


class SystemMatrix:
    """``M = I + lambda L`` ([N, N], float64) with its factorisation, computed once.

    Build with :func:`compute_matrix`. Attributes: ``matrix`` (SciPy CSC), ``n`` (N),
    ``lambda_``, ``laplacian`` (its kind), ``backend`` (the solver: ``"cholespy"`` or
    ``"scipy"``).
    """

    def __init__(self, matrix: sp.spmatrix, lambda_: float, laplacian: str, backend: Optional[str] = None):
        self.matrix: sp.csc_matrix = matrix.tocsc()
        self.n: int = matrix.shape[0]
        self.lambda_ = lambda_
        self.laplacian = laplacian
        self._factor: Factorization = factorize(self.matrix, backend)
        self.backend: str = self._factor.backend

    def __repr__(self) -> str:
        return (f"SystemMatrix(n={self.n}, lambda_={self.lambda_:g}, laplacian={self.laplacian!r}, "
                f"backend={self.backend!r}, nnz={self.matrix.nnz})")

    def _check(self, t: torch.Tensor, name: str) -> None:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor (got {type(t).__name__})")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor (got dtype {t.dtype})")
        if t.dim() not in (1, 2) or t.shape[0] != self.n:
            raise ValueError(f"{name} must have shape [{self.n}] or [{self.n}, K] to match M (got {list(t.shape)})")

    def solve(self, b: torch.Tensor) -> torch.Tensor:
        """``M^-1 b`` with the cached factorisation (not differentiable; see from_differential).

        Args:
            b: [N] or [N, K] float tensor, any device (solved on the CPU in float64).

        Returns:
            Same shape, dtype and device as ``b``.
        """
        self._check(b, "b")
        x = self._factor.solve(b.detach().cpu().to(torch.float64).numpy())
        return torch.from_numpy(np.asarray(x).reshape(b.shape)).to(dtype=b.dtype, device=b.device)

    def multiply(self, x: torch.Tensor) -> torch.Tensor:
        """``M x`` (not differentiable; see to_differential).

        Args:
            x: [N] or [N, K] float tensor.

        Returns:
            Same shape, dtype and device as ``x``.
        """
        self._check(x, "x")
        y = self.matrix @ x.detach().cpu().to(torch.float64).numpy()
        return torch.from_numpy(np.asarray(y).reshape(x.shape)).to(dtype=x.dtype, device=x.device)


def compute_matrix(vertices: torch.Tensor, faces: torch.Tensor, lambda_: float = 19.0,
                   laplacian: str = "combinatorial", backend: Optional[str] = None) -> SystemMatrix:
    """Builds and factorises ``M = I + lambda_ L``.

    Args:
        vertices: [N, 3] float positions (for ``"combinatorial"`` only N is read, and [N, D]
            points of any dimension D are accepted).
        faces: [M, 3] integer triangles (``"combinatorial"`` also accepts [M, 2] edges, e.g. a
            polyline).
        lambda_: >= 0, the smoothing strength. 19 matches the paper's other form
            ``(1 - alpha) I + alpha L`` at ``alpha = 0.95``, which is ``0.05 (I + 19 L)``.
        laplacian: ``"combinatorial"`` (``D - A``, connectivity only: keep M when vertices move)
            or ``"cotangent"`` (cot weights of the given vertices; rebuild when they change).
        backend: the sparse solver, ``"cholespy"`` or ``"scipy"``; None picks the fastest
            installed (cholespy, else SciPy).

    Returns:
        :class:`SystemMatrix` holding M ([N, N] float64) and its factorisation.
    """
    if laplacian not in LAPLACIANS:
        raise ValueError(f"laplacian must be one of {LAPLACIANS} (got {laplacian!r})")
    if isinstance(lambda_, bool) or not isinstance(lambda_, numbers.Real) or not np.isfinite(lambda_) or lambda_ < 0:
        raise ValueError(f"lambda_ must be a finite number >= 0 (got {lambda_!r})")
    if laplacian == "combinatorial":
        v = check_vertices(vertices, dims=())
        f = check_faces(faces, len(v), corners=(2, 3))
        L = combinatorial_laplacian(len(v), f)
    else:
        v = check_vertices(vertices)
        f = check_faces(faces, len(v))
        L = cotangent_laplacian(v, f)
    M = sp.identity(len(v), format="csc", dtype=np.float64) + float(lambda_) * L
    return SystemMatrix(M, float(lambda_), laplacian, backend)


class _FromDifferential(torch.autograd.Function):
    """x = M^-1 u; M symmetric, so the backward is grad_u = M^-1 grad_x (one more solve),
    written with the Function itself so that it is differentiable again."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, M: SystemMatrix) -> torch.Tensor:
        ctx.M = M
        return M.solve(u)

    @staticmethod
    def backward(ctx, grad_x: torch.Tensor):
        return _FromDifferential.apply(grad_x, ctx.M), None


class _ToDifferential(torch.autograd.Function):
    """u = M x; backward grad_x = M^T grad_u = M grad_u."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, M: SystemMatrix) -> torch.Tensor:
        ctx.M = M
        return M.multiply(x)

    @staticmethod
    def backward(ctx, grad_u: torch.Tensor):
        return _ToDifferential.apply(grad_u, ctx.M), None


def _check_system(M) -> None:
    if not isinstance(M, SystemMatrix):
        raise TypeError(f"M must be a SystemMatrix from compute_matrix (got {type(M).__name__})")


def to_differential(M: SystemMatrix, vertices: torch.Tensor) -> torch.Tensor:
    """The latent variable ``u = M x`` of vertex positions x (differentiable in x).

    Args:
        M: from :func:`compute_matrix`.
        vertices: [N, 3] (or [N, K]) float positions x.

    Returns:
        u, same shape, dtype and device as ``vertices``. To optimise it, detach it and set
        ``requires_grad``: ``u = to_differential(M, v).detach().requires_grad_()``.
    """
    _check_system(M)
    M._check(vertices, "vertices")
    return _ToDifferential.apply(vertices, M)


def from_differential(M: SystemMatrix, u: torch.Tensor) -> torch.Tensor:
    """Vertex positions ``x = M^-1 u`` from the latent u (differentiable in u).

    Forward and backward each cost one solve with M's cached factorisation.

    Args:
        M: from :func:`compute_matrix`.
        u: [N, 3] (or [N, K]) float latent variable.

    Returns:
        x, same shape, dtype and device as ``u``.
    """
    _check_system(M)
    M._check(u, "u")
    return _FromDifferential.apply(u, M)
