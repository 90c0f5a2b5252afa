"""Factor and solve times of the Large Steps system M = I + lambda L, per sparse solver.

Chooses the backend of raytrace.optim (issue 5). For each mesh it builds the combinatorial
Laplacian's M (lambda = 19), then times, median of --repeats:
- factor: the factorisation (done once per mesh topology in an optimisation);
- solve: one solve with 3 right-hand sides ([N, 3] float64, the x, y, z of every vertex), done
  twice per iteration (from_differential forward and backward).
and checks the residual |M x - b| / |b|.

Solvers: cholespy (CholeskySolverD / CholeskySolverF, CHOLMOD inside), SciPy's SuperLU
(splu) with its default COLAMD ordering and with MMD on A^T + A in symmetric mode, and
scipy.sparse.linalg.factorized (UMFPACK when scikit-umfpack is installed, else SuperLU).
scikit-sparse is tried and reported as missing when it cannot be imported.

Meshes: icospheres (rt.sphere, watertight) of 10,242 and 163,842 vertices, and a torus grid of
exactly 100,000 vertices (250 x 400).

    python benchmarks/bench_solve.py
    python benchmarks/bench_solve.py --repeats 5 --meshes ico5,torus100k
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)),
                os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
from common import load_line, machine_info, markdown_table, median, time_calls  # noqa: E402


def torus(rows: int, cols: int):
    """A closed torus grid: rows * cols vertices, 2 * rows * cols triangles."""
    i, j = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    a, b = 2 * np.pi * i / rows, 2 * np.pi * j / cols
    verts = np.stack([(1 + 0.3 * np.cos(a)) * np.cos(b), 0.3 * np.sin(a), (1 + 0.3 * np.cos(a)) * np.sin(b)], -1)
    idx = lambda r, c: (r % rows) * cols + (c % cols)
    v00, v01, v10, v11 = idx(i, j), idx(i, j + 1), idx(i + 1, j), idx(i + 1, j + 1)
    faces = np.concatenate([np.stack([v00, v10, v11], -1).reshape(-1, 3), np.stack([v00, v11, v01], -1).reshape(-1, 3)])
    return verts.reshape(-1, 3), faces


def meshes(names):
    import raytrace as rt

    for name in names:
        if name.startswith("ico"):
            m = rt.sphere(subdivisions=int(name[3:]))
            yield f"icosphere {len(m.vertices):,}", m.vertices.double().numpy(), m.indices.numpy()
        elif name == "torus100k":
            v, f = torus(250, 400)
            yield f"torus {len(v):,}", v, f
        else:
            raise SystemExit(f"unknown mesh {name!r}")


def solvers():
    """(name, factor(A) -> solve(b) -> x) for each solver installed here."""
    import scipy.sparse.linalg as spla

    out = []
    try:
        import cholespy

        def cholespy_factor(cls, dtype):
            def factor(A):
                s = cls(A.shape[0], A.indptr.astype(np.int32), A.indices.astype(np.int32), A.data, cholespy.MatrixType.CSC)

                def solve(b):
                    b = np.ascontiguousarray(b, dtype=dtype)
                    x = np.empty_like(b)
                    s.solve(b, x)
                    return x
                return solve
            return factor
        out.append(("cholespy D (float64)", cholespy_factor(cholespy.CholeskySolverD, np.float64)))
        out.append(("cholespy F (float32)", cholespy_factor(cholespy.CholeskySolverF, np.float32)))
    except ImportError:
        print("cholespy: not installed")
    try:
        from sksparse.cholmod import cholesky

        out.append(("scikit-sparse cholmod", lambda A: cholesky(A)))
    except ImportError as e:
        print(f"scikit-sparse: not importable ({e}); pip install scikit-sparse fails here: "
              "cholmod.h: No such file or directory (no SuiteSparse headers)")
    out.append(("scipy splu COLAMD", lambda A: spla.splu(A).solve))
    out.append(("scipy splu MMD_AT_PLUS_A sym", lambda A: spla.splu(
        A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True}).solve))
    out.append(("scipy factorized", lambda A: spla.factorized(A)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meshes", default="ico5,torus100k,ico7")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lambda", dest="lam", type=float, default=19.0)
    args = parser.parse_args()

    import scipy.sparse as sp
    import torch

    from raytrace.optim.laplacian import combinatorial_laplacian

    print("# bench_solve")
    print(machine_info())
    print(f"torch threads: {torch.get_num_threads()}")
    rows = []
    for label, verts, faces in meshes(args.meshes.split(",")):
        n = len(verts)
        build = time_calls(lambda: combinatorial_laplacian(n, faces), args.repeats)
        A = (sp.identity(n, format="csc") + args.lam * combinatorial_laplacian(n, faces)).tocsc()
        A.sort_indices()
        b = np.random.default_rng(0).standard_normal((n, 3))
        print(f"{label}: nnz {A.nnz:,}, Laplacian build {median(build) * 1e3:.1f} ms")
        for name, factor in solvers():
            if n > 120_000 and ("MMD" in name or "factorized" in name):
                continue  # MMD took 170 s to factor the 163,842-vertex icosphere; factorized = COLAMD
            solves = []
            ft = time_calls(lambda: solves.append(factor(A)), args.repeats)
            solve = solves[-1]
            st = time_calls(lambda: solve(b), max(args.repeats, 5))
            x = np.asarray(solve(b), dtype=np.float64)
            res = np.linalg.norm(A @ x - b) / np.linalg.norm(b)
            rows.append([label, name, f"{median(ft) * 1e3:.1f}", f"{median(st) * 1e3:.2f}", f"{res:.1e}"])
            print("  " + " | ".join(rows[-1][1:]), flush=True)
    print()
    print(markdown_table(["mesh (vertices)", "solver", "factor ms", "solve ms (3 rhs)", "residual"], rows))
    print(load_line("at end"))


if __name__ == "__main__":
    main()
