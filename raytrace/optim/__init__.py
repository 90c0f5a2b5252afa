"""Mesh optimisation: the Large Steps parameterisation, UniformAdam and isotropic remeshing.

    M = rt.optim.compute_matrix(vertices, faces, lambda_=19.0)     # I + lambda L, factorised once
    u = rt.optim.to_differential(M, vertices).detach().requires_grad_()
    opt = rt.optim.UniformAdam([u], lr=3e-2)
    for it in range(n):
        x = rt.optim.from_differential(M, u)                      # [N, 3] vertex positions
        loss = ...(render with x)...
        opt.zero_grad(); loss.backward(); opt.step()
    v2, f2 = rt.optim.remesh(x.detach(), faces, target_edge_length)   # then a new M

See docs/large_steps.md.
"""
from .adam import UniformAdam
from .laplacian import laplacian
from .parameterize import SystemMatrix, compute_matrix, from_differential, to_differential
from .remesh import remesh

__all__ = ["SystemMatrix", "UniformAdam", "compute_matrix", "from_differential", "laplacian", "remesh",
           "to_differential"]
