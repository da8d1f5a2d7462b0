"""The dense STE-gradient engine: every step reads the whole sample of every trial.

    u_{t+1} = u_t - eta * g(u_t),   q_t = sign(u_t),   eta = c sqrt(pi d / 2) m kappa

One batched tensor op serves all trials of a chunk (two passes over Z per step: h = Z q and
g = Z^T coeff). Full batch by default; with ``train.batch_size`` B each trial walks through its
own random permutation of the sample, B rows a step, reshuffled every epoch (rows that do not
fill a last batch wait for the next epoch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from stelab.config import Config
from stelab.engine.problem import Problem
from stelab.model import step_size_eta
from stelab.quantizers import sign
from stelab.seeds import trial_rng

Tensor = torch.Tensor


@dataclass
class ChunkOutput:
    """What the engine returns for a chunk of trials (numpy, on the host)."""

    hamming: np.ndarray  # (t, T+1) int32: H_0 .. H_T
    ergodic_hamming: np.ndarray  # (t,) Hamming distance of sign(qbar_T) to w*
    final_loss: np.ndarray  # (t,) L(q_T) on the full sample
    loss: np.ndarray | None  # (t, T+1) L(q_0) .. L(q_T), when recorded
    final_u: np.ndarray  # (t, d) latent weights u_T
    ergodic_at: np.ndarray  # (t, K) Hamming of sign(qbar_T') at the checkpoints T'


class MinibatchSampler:
    """Per-trial epoch-wise random permutations of range(n), served B indices at a time."""

    def __init__(self, seed: int, trials: list[int], n: int, batch_size: int) -> None:
        self._rngs = [trial_rng(seed, k, "batches") for k in trials]
        self._n = n
        self._batch = batch_size
        self._pos = n  # forces a shuffle on the first call
        self._perm = np.empty((len(trials), n), dtype=np.int64)

    def next(self) -> np.ndarray:
        """Indices of the next minibatch, shape (t, B)."""
        if self._pos + self._batch > self._n:
            for k, rng in enumerate(self._rngs):
                self._perm[k] = rng.permutation(self._n)
            self._pos = 0
        idx = self._perm[:, self._pos : self._pos + self._batch]
        self._pos += self._batch
        return idx


def run_dense(problem: Problem, cfg: Config, freeze: bool = True) -> ChunkOutput:
    """Run ``cfg.train.steps`` STE-gradient steps on every trial of ``problem``.

    With noiseless labels and full batch, w* is an exact fixed point (g = 0 there, bit for bit),
    so once every trial sits at w* the remaining steps are filled in without computing them
    (``freeze``); the outputs are identical to computing them.
    """
    Z, y, w_star, model = problem.Z, problem.y, problem.teacher, problem.model
    t, n, m, d = Z.shape
    T = cfg.train.steps
    eta = step_size_eta(cfg.train.step_size, d, m, cfg.model.activation)
    record_loss = cfg.record.loss_trajectory
    full_batch = cfg.train.batch_size is None
    noiseless = cfg.noise.kind == "none" or cfg.noise.level == 0
    can_freeze = freeze and full_batch and noiseless

    u = problem.u0.clone()
    q = sign(u)
    hamming = torch.zeros((t, T + 1), dtype=torch.int32, device=Z.device)
    hamming[:, 0] = (q != w_star).sum(dim=1)
    loss = torch.zeros((t, T + 1), dtype=Z.dtype, device=Z.device) if record_loss else None
    q_sum = torch.zeros((t, d), dtype=torch.int64, device=Z.device)
    checkpoints = sorted(set(cfg.record.checkpoints))
    ergodic_at = torch.zeros((t, len(checkpoints)), dtype=torch.int64, device=Z.device)

    def ergodic_hamming(q_total: Tensor) -> Tensor:
        return (sign(q_total.to(Z.dtype)) != w_star).sum(dim=1)

    sampler = (
        None
        if full_batch
        else MinibatchSampler(cfg.run.seed, problem.trials, n, cfg.train.batch_size)
    )
    rows = torch.arange(t, device=Z.device)[:, None]

    for step in range(T):
        if sampler is None:
            Zb, yb = Z, y
        else:
            idx = torch.from_numpy(sampler.next()).to(Z.device)
            Zb, yb = Z[rows, idx], y[rows, idx]
        h = model.preactivations(Zb, q)
        residual = model.outputs(h) - yb
        if loss is not None:
            full_loss = 0.5 * residual.square().mean(dim=1) if full_batch else model.loss(Z, q, y)
            loss[:, step] = full_loss
        u -= eta * model.coarse_gradient(Zb, h, residual, u, q)
        q = sign(u)
        hamming[:, step + 1] = (q != w_star).sum(dim=1)
        q_sum += q.to(torch.int64)
        for i, horizon in enumerate(checkpoints):
            if horizon == step + 1:
                ergodic_at[:, i] = ergodic_hamming(q_sum)
        if can_freeze and not bool(hamming[:, step + 1].any()):
            # every later iterate is w*: H stays 0, the loss stays 0, q_sum grows by q per step
            for i, horizon in enumerate(checkpoints):
                if horizon > step + 1:
                    ergodic_at[:, i] = ergodic_hamming(q_sum + (horizon - step - 1) * q.long())
            q_sum += (T - step - 1) * q.to(torch.int64)
            break

    final_loss = model.loss(Z, q, y)
    if loss is not None:
        loss[:, T] = final_loss
    ergodic = ergodic_hamming(q_sum)
    return ChunkOutput(
        hamming=hamming.cpu().numpy(),
        ergodic_hamming=ergodic.cpu().numpy(),
        final_loss=final_loss.cpu().numpy().astype(np.float64),
        loss=None if loss is None else loss.cpu().numpy().astype(np.float64),
        final_u=u.cpu().numpy(),
        ergodic_at=ergodic_at.cpu().numpy(),
    )
