"""The baseline the engine is measured against: what a typical research script does.

One trial at a time, a ``torch.nn.Module`` holding the latent weights u as a parameter, a custom
``torch.autograd.Function`` for the straight-through sign (forward sign with sign(0) = +1,
backward identity), autograd for the coarse gradient and ``torch.optim.SGD`` with lr = eta:

    q = SignSTE(u);  h = Z q;  f = SignSTE(h) . v;  L = (1/2n) sum_i (f_i - y_i)^2
    L.backward();  u <- u - eta * dL/du

which is the STE-gradient method of docs/model.md for the sign activation with the identity
surrogate and identity weight STE (dL/du = g(u)). It runs on the same problems (data, labels,
initialization) as the engine, so per-trial Hamming trajectories can be compared.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from stelab.engine.problem import Problem
from stelab.surrogates import step_size_eta

Tensor = torch.Tensor


class SignSTE(torch.autograd.Function):
    """Forward: sign(x) with sign(0) = +1. Backward: the identity (straight-through)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad


class BinaryNet(nn.Module):
    """f(Z) = v . sign(Z sign(u)), v = ones(m) / m, with straight-through gradients."""

    def __init__(self, u0: Tensor, m: int) -> None:
        super().__init__()
        self.u = nn.Parameter(u0.clone())
        self.register_buffer("v", torch.full((m,), 1.0 / m, dtype=u0.dtype))

    def forward(self, Z: Tensor) -> Tensor:
        q = SignSTE.apply(self.u)
        h = Z @ q  # (n, m)
        return SignSTE.apply(h) @ self.v  # (n,)


def train_one(Z: Tensor, y: Tensor, u0: Tensor, w_star: Tensor, eta: float, steps: int) -> Tensor:
    """Hamming distances H_0..H_T of one trial (Z (n, m, d), y (n,), u0 and w* (d,))."""
    model = BinaryNet(u0, Z.shape[1])
    opt = torch.optim.SGD(model.parameters(), lr=eta)
    hamming = torch.zeros(steps + 1, dtype=torch.int64)
    with torch.no_grad():
        hamming[0] = (SignSTE.apply(model.u) != w_star).sum()
    for step in range(steps):
        opt.zero_grad()
        loss = 0.5 * (model(Z) - y).square().mean()
        loss.backward()
        opt.step()
        with torch.no_grad():
            hamming[step + 1] = (SignSTE.apply(model.u) != w_star).sum()
    return hamming


def run_baseline(problem: Problem, steps: int, step_size: float) -> np.ndarray:
    """Hamming trajectories (t, T+1) of every trial of ``problem``, one trial after the other.

    Valid for the configs the baseline implements: sign activation, identity surrogate and
    weight STE, full batch, no batch-norm statistics.
    """
    t, n, m, d = problem.Z.shape
    eta = step_size_eta(step_size, d, m, "sign")
    out = [
        train_one(problem.Z[k], problem.y[k], problem.u0[k], problem.teacher[k], eta, steps)
        for k in range(t)
    ]
    return torch.stack(out).numpy()
