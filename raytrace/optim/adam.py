"""UniformAdam: Adam with one step size per parameter tensor (Nicolet et al. 2021).

Adam divides each entry's step by its own running RMS gradient, which undoes the smoothing of
the Large Steps parameterisation (it rescales entries independently). UniformAdam divides the
whole tensor by the largest RMS instead, the infinity norm of ``sqrt(v_hat)``:

    m <- beta1 m + (1 - beta1) g          m_hat = m / (1 - beta1^t)
    v <- beta2 v + (1 - beta2) g^2        v_hat = v / (1 - beta2^t)
    p <- p - lr * m_hat / (max(sqrt(v_hat)) + eps)

so the step keeps the direction of the (preconditioned) gradient's running mean.
"""
from __future__ import annotations

import math
import numbers
from typing import Iterable, Tuple, Union

import torch


class UniformAdam(torch.optim.Optimizer):
    """Adam whose update is normalised by ``max(sqrt(v_hat))`` over each parameter tensor.

    Args:
        params: tensors (or parameter-group dicts) to optimise, e.g. ``[u]``.
        lr: step size (> 0), in the units of the parameters.
        betas: (beta1, beta2) in [0, 1), decay of the first and second moments.
        eps: > 0, added to the norm (guards a zero gradient).

    The max is taken over all entries of one tensor (all vertices and coordinates of ``u``),
    separately for each tensor.
    """

    def __init__(self, params: Iterable[Union[torch.Tensor, dict]], lr: float = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"lr must be a finite number > 0 (got {lr!r})")
        if len(tuple(betas)) != 2 or not all(isinstance(b, numbers.Real) and 0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1) (got {betas!r})")
        if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps > 0:
            raise ValueError(f"eps must be a number > 0 (got {eps!r})")
        super().__init__(params, dict(lr=float(lr), betas=tuple(float(b) for b in betas), eps=float(eps)))

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a ``.grad``; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if g.is_sparse:
                    raise RuntimeError("UniformAdam does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                m, v = state["exp_avg"], state["exp_avg_sq"]
                # Moments and their bias correction
                m.mul_(beta1).add_(g, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                # One normaliser for the whole tensor: the infinity norm of sqrt(v_hat), that is
                # sqrt(max(v) / (1 - beta2^t)) (sqrt is monotone); m_hat = m / (1 - beta1^t).
                # Scalars only, so no [N, 3] temporaries.
                norm = math.sqrt(float(v.max()) / (1 - beta2 ** t))
                p.add_(m, alpha=-group["lr"] / ((1 - beta1 ** t) * (norm + group["eps"])))
        return loss
