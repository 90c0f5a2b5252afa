"""raytrace.optim: Laplacians, the Large Steps parameterisation and UniformAdam (issue 5).

Expected matrices are written out by hand from the definitions (L = D - W, combinatorial
w_ij = 1, cotangent w_ij = (cot alpha + cot beta) / 2), not computed with the code under test.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import raytrace as rt
from raytrace.optim import parameterize, solvers

BACKENDS = solvers.available_backends()


def dense(M) -> np.ndarray:
    return M.matrix.toarray() if hasattr(M, "matrix") else M.toarray()


def regular_tetrahedron(dtype=torch.float64):
    v = torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=dtype)
    f = torch.tensor([[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]])
    return v, f


# ------------------------------------------------------------------------------------------------
# Laplacians against hand-computed matrices
# ------------------------------------------------------------------------------------------------
def test_combinatorial_tetrahedron():
    v, f = regular_tetrahedron()
    # Every vertex has 3 neighbours: L = 3 I - (J - I) = 4 I - J.
    expected = 4 * np.eye(4) - np.ones((4, 4))
    np.testing.assert_array_equal(rt.optim.laplacian(v, f).toarray(), expected)
    M = rt.optim.compute_matrix(v, f, lambda_=2.0)
    np.testing.assert_array_equal(dense(M), np.eye(4) + 2.0 * expected)


def test_combinatorial_two_triangle_square():
    v = torch.tensor([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=torch.float32)
    f = torch.tensor([[0, 1, 2], [0, 2, 3]])
    # Edges 01, 12, 20, 23, 30: vertices 0 and 2 have degree 3, vertices 1 and 3 degree 2.
    expected = np.array([[3, -1, -1, -1],
                         [-1, 2, -1, 0],
                         [-1, -1, 3, -1],
                         [-1, 0, -1, 2]], dtype=np.float64)
    np.testing.assert_array_equal(rt.optim.laplacian(v, f, "combinatorial").toarray(), expected)


def test_combinatorial_polyline_edges():
    x = torch.linspace(-1, 1, 4)[:, None]
    edges = torch.tensor([[0, 1], [1, 2], [2, 3]])
    expected = np.array([[1, -1, 0, 0], [-1, 2, -1, 0], [0, -1, 2, -1], [0, 0, -1, 1]], dtype=np.float64)
    np.testing.assert_array_equal(rt.optim.laplacian(x, edges).toarray(), expected)


def test_cotangent_single_right_triangle():
    # Right angle at vertex 0 (cot 0, opposite edge 12); at vertex 1, tan = 1/2 so cot = 2
    # (opposite edge 02); at vertex 2, tan = 2 so cot = 1/2 (opposite edge 01).
    v = torch.tensor([[0, 0, 0], [2, 0, 0], [0, 1, 0]], dtype=torch.float64)
    f = torch.tensor([[0, 1, 2]])
    w01, w02, w12 = 0.5 * 0.5, 0.5 * 2.0, 0.0
    expected = np.array([[w01 + w02, -w01, -w02],
                         [-w01, w01 + w12, -w12],
                         [-w02, -w12, w02 + w12]])
    np.testing.assert_allclose(rt.optim.laplacian(v, f, "cotangent").toarray(), expected, atol=1e-14)


def test_cotangent_two_triangle_rectangle():
    # 2 x 1 rectangle cut along 0-2. Triangle (0,1,2): right angle at 1 (opposite 02), cot 2 at
    # 0 (opposite 12), cot 1/2 at 2 (opposite 01). Triangle (0,2,3): right angle at 3 (opposite
    # 02), cot 1/2 at 0 (opposite 23), cot 2 at 2 (opposite 03).
    v = torch.tensor([[0, 0, 0], [2, 0, 0], [2, 1, 0], [0, 1, 0]], dtype=torch.float64)
    f = torch.tensor([[0, 1, 2], [0, 2, 3]])
    w = {(0, 1): 0.25, (1, 2): 1.0, (0, 2): 0.0, (2, 3): 0.25, (0, 3): 1.0}
    expected = np.zeros((4, 4))
    for (i, j), wij in w.items():
        expected[i, j] = expected[j, i] = -wij
        expected[i, i] += wij
        expected[j, j] += wij
    np.testing.assert_allclose(rt.optim.laplacian(v, f, "cotangent").toarray(), expected, atol=1e-14)
    M = rt.optim.compute_matrix(v, f, lambda_=3.0, laplacian="cotangent")
    np.testing.assert_allclose(dense(M), np.eye(4) + 3.0 * expected, atol=1e-14)


def test_cotangent_regular_tetrahedron():
    # All angles 60 degrees: each edge has two opposite angles with cot 1/sqrt(3), so
    # w = 1/sqrt(3) and L = (4 I - J) / sqrt(3).
    v, f = regular_tetrahedron()
    expected = (4 * np.eye(4) - np.ones((4, 4))) / math.sqrt(3.0)
    np.testing.assert_allclose(rt.optim.laplacian(v, f, "cotangent").toarray(), expected, atol=1e-14)


def test_laplacian_rejects_bad_input():
    v, f = regular_tetrahedron()
    with pytest.raises(ValueError, match="laplacian"):
        rt.optim.compute_matrix(v, f, laplacian="uniform")
    with pytest.raises(ValueError, match="lambda_"):
        rt.optim.compute_matrix(v, f, lambda_=-1.0)
    with pytest.raises(ValueError, match="faces"):
        rt.optim.compute_matrix(v, f + 1)
    with pytest.raises(TypeError, match="faces"):
        rt.optim.compute_matrix(v, f.float())
    with pytest.raises(ValueError, match="vertices"):
        rt.optim.compute_matrix(v[:, :2], f, laplacian="cotangent")
    with pytest.raises(ValueError, match="zero area"):
        rt.optim.compute_matrix(torch.zeros(4, 3), f, laplacian="cotangent")


# ------------------------------------------------------------------------------------------------
# The parameterisation
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["combinatorial", "cotangent"])
def test_roundtrip(backend, kind):
    mesh = rt.sphere(subdivisions=2)
    x = mesh.vertices.double() + 0.01 * torch.randn(len(mesh.vertices), 3, generator=torch.Generator().manual_seed(0),
                                                    dtype=torch.float64)
    M = rt.optim.compute_matrix(x, mesh.indices, lambda_=19.0, laplacian=kind, backend=backend)
    assert M.backend == backend
    u = rt.optim.to_differential(M, x)
    # u = M x, checked against a dense product
    np.testing.assert_allclose(u.numpy(), dense(M) @ x.numpy(), rtol=1e-13, atol=1e-13)
    back = rt.optim.from_differential(M, u)
    assert back.dtype == torch.float64 and back.shape == x.shape
    assert torch.allclose(back, x, rtol=0, atol=1e-12)
    # float32 in, float32 out
    back32 = rt.optim.from_differential(M, rt.optim.to_differential(M, x.float()))
    assert back32.dtype == torch.float32
    assert torch.allclose(back32, x.float(), atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["combinatorial", "cotangent"])
def test_from_differential_gradcheck(backend, kind):
    mesh = rt.sphere(subdivisions=1)
    M = rt.optim.compute_matrix(mesh.vertices, mesh.indices, lambda_=5.0, laplacian=kind, backend=backend)
    u = torch.randn(len(mesh.vertices), 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1),
                    requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: rt.optim.from_differential(M, t), (u,), eps=1e-6, atol=1e-8)
    assert torch.autograd.gradcheck(lambda t: rt.optim.to_differential(M, t), (u,), eps=1e-6, atol=1e-8)
    assert torch.autograd.gradgradcheck(lambda t: rt.optim.from_differential(M, t).square(), (u,), eps=1e-6, atol=1e-8)


def test_factorisation_computed_once(monkeypatch):
    calls = []
    real = parameterize.factorize
    monkeypatch.setattr(parameterize, "factorize", lambda *a, **k: calls.append(1) or real(*a, **k))
    mesh = rt.sphere(subdivisions=1)
    M = rt.optim.compute_matrix(mesh.vertices, mesh.indices)
    u = rt.optim.to_differential(M, mesh.vertices).detach().requires_grad_()
    for _ in range(3):
        rt.optim.from_differential(M, u).square().sum().backward()
    assert len(calls) == 1


def test_scipy_fallback_without_cholespy(monkeypatch):
    real = solvers.importlib.util.find_spec
    monkeypatch.setattr(solvers.importlib.util, "find_spec", lambda name, *a: None if name == "cholespy" else real(name, *a))
    assert solvers.available_backends() == ("scipy",)
    mesh = rt.sphere(subdivisions=1)
    M = rt.optim.compute_matrix(mesh.vertices, mesh.indices)
    assert M.backend == "scipy"
    with pytest.raises(ValueError, match="not installed"):
        rt.optim.compute_matrix(mesh.vertices, mesh.indices, backend="cholespy")


def test_parameterisation_rejects_bad_input():
    mesh = rt.sphere(subdivisions=1)
    M = rt.optim.compute_matrix(mesh.vertices, mesh.indices)
    with pytest.raises(ValueError, match="u must have shape"):
        rt.optim.from_differential(M, torch.zeros(5, 3))
    with pytest.raises(TypeError, match="M must be a SystemMatrix"):
        rt.optim.from_differential(np.eye(3), torch.zeros(3, 3))
    with pytest.raises(TypeError, match="vertices must be a floating-point"):
        rt.optim.to_differential(M, torch.zeros(len(mesh.vertices), 3, dtype=torch.int64))


# ------------------------------------------------------------------------------------------------
# UniformAdam
# ------------------------------------------------------------------------------------------------
def test_uniform_adam_two_steps_by_hand():
    p = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    opt = rt.optim.UniformAdam([p], lr=0.1, betas=(0.9, 0.99), eps=1e-8)
    g1, g2 = [1.0, -2.0], [3.0, 0.5]
    # Step 1: m_hat = g1, v_hat = g1^2, max sqrt(v_hat) = 2, so p -= 0.1 * g1 / 2.
    p.grad = torch.tensor(g1, dtype=torch.float64)
    opt.step()
    expected1 = [1.0 - 0.1 * 1.0 / (2.0 + 1e-8), 2.0 - 0.1 * -2.0 / (2.0 + 1e-8)]
    assert p.detach().tolist() == pytest.approx(expected1, rel=1e-14)
    # Step 2: m = 0.9 * 0.1 g1 + 0.1 g2 = [0.39, -0.13], m_hat = m / 0.19;
    # v = 0.99 * 0.01 g1^2 + 0.01 g2^2 = [0.0999, 0.0421], v_hat = v / 0.0199;
    # the max of sqrt(v_hat) is at entry 0: sqrt(0.0999 / 0.0199).
    p.grad = torch.tensor(g2, dtype=torch.float64)
    opt.step()
    norm = math.sqrt(0.0999 / 0.0199) + 1e-8
    expected2 = [expected1[0] - 0.1 * (0.39 / 0.19) / norm, expected1[1] - 0.1 * (-0.13 / 0.19) / norm]
    assert p.detach().tolist() == pytest.approx(expected2, rel=1e-12)


def test_uniform_adam_differs_from_adam_and_validates():
    # Plain Adam moves both entries by lr at step 1; UniformAdam scales them together.
    p = torch.tensor([0.0, 0.0], requires_grad=True)
    opt = rt.optim.UniformAdam([p], lr=1.0)
    p.grad = torch.tensor([4.0, 1.0])
    opt.step()
    assert p.detach().tolist() == pytest.approx([-1.0, -0.25], rel=1e-6)
    with pytest.raises(ValueError, match="lr"):
        rt.optim.UniformAdam([p], lr=0.0)
    with pytest.raises(ValueError, match="betas"):
        rt.optim.UniformAdam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="eps"):
        rt.optim.UniformAdam([p], eps=0.0)


# ------------------------------------------------------------------------------------------------
# The 1D toy of the Large Steps talk
# ------------------------------------------------------------------------------------------------
def _toy(n: int = 21):
    x0 = torch.linspace(-1.0, 1.0, n, dtype=torch.float64)[:, None]
    edges = torch.stack([torch.arange(n - 1), torch.arange(1, n)], dim=1)
    return x0, edges


def _toy_loss(x: torch.Tensor) -> torch.Tensor:
    # Gradients on the two end points only (like sparse silhouette gradients).
    return (x[0, 0] + 0.5) ** 2 + (x[-1, 0] - 0.5) ** 2


def _inverted(x: torch.Tensor) -> bool:
    return bool(((x[1:, 0] - x[:-1, 0]) <= 0).any())


def test_1d_toy_plain_gradient_descent_tangles():
    x, _ = _toy()
    x = x.clone().requires_grad_()
    first_inversion = None
    for it in range(5):
        loss = _toy_loss(x)
        (g,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            x -= 0.2 * g
        if _inverted(x):
            first_inversion = it
            break
    assert first_inversion is not None and first_inversion < 5


def test_1d_toy_large_steps_stays_ordered_and_converges():
    x0, edges = _toy()
    M = rt.optim.compute_matrix(x0, edges, lambda_=19.0)
    u = rt.optim.to_differential(M, x0).detach().requires_grad_()
    for _ in range(100):
        x = rt.optim.from_differential(M, u)
        (g,) = torch.autograd.grad(_toy_loss(x), u)
        with torch.no_grad():
            u -= 1.0 * g  # x moves by -(I + lambda L)^-2 dPhi/dx
        assert not _inverted(rt.optim.from_differential(M, u.detach()))
    x = rt.optim.from_differential(M, u.detach())
    assert float(_toy_loss(x)) < 1e-10
    assert x[0, 0].item() == pytest.approx(-0.5, abs=1e-5) and x[-1, 0].item() == pytest.approx(0.5, abs=1e-5)
