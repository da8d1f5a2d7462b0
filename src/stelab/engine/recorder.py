"""The recorder of the batched engines (what they record along the iterates, and the chunk's
output), and the latent-weight update they share.

The update is one function so that the dense and incremental engines apply the same float
operations to the same gradient sums G (bit-identical between them, see
:mod:`stelab.engine.passes`):

    g = G * (Q~'(u) / n)   [/ s(q) with batch-norm statistics],    u <- u - eta * g
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from stelab.config import Config
from stelab.engine import compiled
from stelab.engine.output import ChunkOutput

Tensor = torch.Tensor


def binary(u: Tensor) -> Tensor:
    """q = sign(u) with sign(0) = +1, as :func:`stelab.quantizers.sign` (same values), computed
    as 2 [u >= 0] - 1, which is several times faster than ``torch.where`` on the CPU."""
    return (u >= 0).to(u.dtype).mul_(2).sub_(1)


def latent_step(
    u: Tensor,
    G: Tensor,
    n: int,
    scale: Tensor | None,
    eta: float,
    weight_derivative: Callable[[Tensor], Tensor],
) -> None:
    """u <- u - eta * G * (Q~'(u) / n) [/ s], in place (the module docstring's update)."""
    g = G * (weight_derivative(u) / n)
    if scale is not None:
        g = g / scale[:, None]
    u -= eta * g


def loss_of(residual: Tensor) -> Tensor:
    """L = (1/2n) sum_i res_i^2 per trial, from the residuals (t, n)."""
    return 0.5 * residual.square().mean(dim=1)


class Recorder:
    """Records Hamming distances H_0..H_T, optional losses, the ergodic sum and its checkpoints."""

    def __init__(self, cfg: Config, q0: Tensor, w_star: Tensor) -> None:
        t, d = q0.shape
        T = cfg.train.steps
        device = q0.device
        self.T = T
        self.w_star = w_star
        self.hamming = torch.zeros((t, T + 1), dtype=torch.int32, device=device)
        self.hamming[:, 0] = (q0 != w_star).sum(dim=1)
        self.loss = (
            torch.zeros((t, T + 1), dtype=q0.dtype, device=device)
            if cfg.record.loss_trajectory
            else None
        )
        self.q_sum = torch.zeros((t, d), dtype=torch.int64, device=device)
        self.checkpoints = sorted(set(cfg.record.checkpoints))
        self.ergodic_at = torch.zeros(
            (t, len(self.checkpoints)), dtype=torch.int64, device=device
        )

    def _ergodic(self, q_total: Tensor) -> Tensor:
        return (binary(q_total.to(self.w_star.dtype)) != self.w_star).sum(dim=1)

    def record(self, step: int, q: Tensor) -> bool:
        """Record iterate q_{step+1}; True when every trial sits at w* after it."""
        if q.device.type == "cpu":  # one compiled pass instead of four operations
            away = compiled.count_step(q.numpy(), self.w_star.numpy(),
                                    self.hamming[:, step + 1].numpy(), self.q_sum.numpy())
        else:
            self.hamming[:, step + 1] = (q != self.w_star).sum(dim=1)
            self.q_sum += q.to(torch.int64)
            away = int(self.hamming[:, step + 1].count_nonzero())
        for i, horizon in enumerate(self.checkpoints):
            if horizon == step + 1:
                self.ergodic_at[:, i] = self._ergodic(self.q_sum)
        return away == 0

    def freeze(self, step: int, q: Tensor) -> None:
        """Fill in the iterates after ``step`` when all trials sit at w* forever (no noise, full
        batch: g = 0 there): H stays 0, the loss stays 0, q_sum grows by q per step."""
        for i, horizon in enumerate(self.checkpoints):
            if horizon > step + 1:
                extra = (horizon - step - 1) * q.long()
                self.ergodic_at[:, i] = self._ergodic(self.q_sum + extra)
        self.q_sum += (self.T - step - 1) * q.to(torch.int64)

    def output(self, final_loss: Tensor, u: Tensor) -> ChunkOutput:
        if self.loss is not None:
            self.loss[:, self.T] = final_loss
        return ChunkOutput(
            hamming=self.hamming.cpu().numpy(),
            ergodic_hamming=self._ergodic(self.q_sum).cpu().numpy(),
            final_loss=final_loss.cpu().numpy().astype(np.float64),
            loss=None if self.loss is None else self.loss.cpu().numpy().astype(np.float64),
            final_u=u.cpu().numpy(),
            ergodic_at=self.ergodic_at.cpu().numpy(),
        )
