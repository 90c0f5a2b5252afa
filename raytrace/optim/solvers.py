"""Sparse symmetric positive definite solves with a factorisation computed once.

Two backends, chosen by measurement (``benchmarks/bench_solve.py``, ``benchmarks/RESULTS.md``,
section "Large Steps solve"):

- ``"cholespy"``: the supernodal sparse Cholesky of the ``cholespy`` package (CHOLMOD inside),
  the fastest to factor and to solve on the CPU. Used when the package is installed.
- ``"scipy"``: SciPy's SuperLU (``scipy.sparse.linalg.splu``) with a symmetric ordering: an LU
  factorisation, not a Cholesky, slower but always available (SciPy is a dependency).

scikit-sparse (CHOLMOD) is not a backend: it has no wheel and does not build without the
SuiteSparse headers (``cholmod.h``), which the machines we run on do not have.
"""
from __future__ import annotations

import atexit
import importlib.util
import weakref
from typing import Optional

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

BACKENDS = ("cholespy", "scipy")


def available_backends() -> tuple:
    """The backends that can run here, fastest first."""
    have = []
    if importlib.util.find_spec("cholespy") is not None:
        have.append("cholespy")
    have.append("scipy")
    return tuple(have)


class Factorization:
    """A factorised [N, N] sparse SPD matrix ``A``; ``solve(b)`` returns ``A^-1 b``."""

    backend: str = ""

    def __init__(self, matrix: sp.csc_matrix):
        self.n = matrix.shape[0]

    def solve(self, b: np.ndarray) -> np.ndarray:
        """``A^-1 b`` for b [N] or [N, K] float64; same shape, float64."""
        raise NotImplementedError


_live_cholespy = weakref.WeakSet()


@atexit.register
def _release_cholespy() -> None:
    # Free the solvers still referenced at exit (e.g. a script's global M) before the interpreter
    # unloads cholespy, whose nanobind module otherwise reports them as leaked instances.
    for f in list(_live_cholespy):
        f._solver = None


class CholespyFactorization(Factorization):
    """Sparse Cholesky ``A = L L^T`` from ``cholespy`` (float64 factor and solves)."""

    backend = "cholespy"

    def __init__(self, matrix: sp.csc_matrix):
        super().__init__(matrix)
        import cholespy

        m = matrix.tocsc()
        m.sort_indices()
        self._solver = cholespy.CholeskySolverD(
            self.n, m.indptr.astype(np.int32), m.indices.astype(np.int32), m.data.astype(np.float64),
            cholespy.MatrixType.CSC)
        _live_cholespy.add(self)

    def solve(self, b: np.ndarray) -> np.ndarray:
        b = np.ascontiguousarray(b, dtype=np.float64)
        x = np.empty_like(b)
        self._solver.solve(b, x)
        return x


class ScipyFactorization(Factorization):
    """SuperLU ``P A Q = L U`` (``scipy.sparse.linalg.splu``) with its default COLAMD ordering."""

    backend = "scipy"

    def __init__(self, matrix: sp.csc_matrix):
        super().__init__(matrix)
        # COLAMD, not the symmetric MMD_AT_PLUS_A ordering: MMD was faster on a 100k torus grid
        # but took 170 s to factor a 164k-vertex icosphere (COLAMD: 17 s); see RESULTS.md.
        self._lu = spla.splu(matrix.tocsc())

    def solve(self, b: np.ndarray) -> np.ndarray:
        return self._lu.solve(np.asarray(b, dtype=np.float64))


def factorize(matrix: sp.spmatrix, backend: Optional[str] = None) -> Factorization:
    """Factorises a sparse SPD matrix once for repeated solves.

    Args:
        matrix: [N, N] symmetric positive definite SciPy sparse matrix.
        backend: ``"cholespy"``, ``"scipy"``, or None for the fastest available.

    Returns:
        A :class:`Factorization`; its ``backend`` names the one used.
    """
    if backend is None:
        backend = available_backends()[0]
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} or None (got {backend!r})")
    if backend not in available_backends():
        raise ValueError(f"backend {backend!r} is not installed here (pip install cholespy)")
    return CholespyFactorization(matrix) if backend == "cholespy" else ScipyFactorization(matrix)
