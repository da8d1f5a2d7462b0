"""The first dense engine (float32 forward and backward through stelab.model), kept as a test
oracle: the optimized engines must reproduce its per-trial outcomes."""

from __future__ import annotations

import numpy as np
import torch

from stelab.config import Config
from stelab.engine.problem import Problem
from stelab.model import step_size_eta
from stelab.quantizers import sign


def run_legacy(problem: Problem, cfg: Config) -> np.ndarray:
    """Hamming trajectories (t, T+1) of the full-batch STE-gradient method, step by step."""
    Z, y, w_star, model = problem.Z, problem.y, problem.teacher, problem.model
    t, n, m, d = Z.shape
    eta = step_size_eta(cfg.train.step_size, d, m, cfg.model.activation)
    u = problem.u0.clone()
    q = sign(u)
    hamming = [(q != w_star).sum(dim=1)]
    for _ in range(cfg.train.steps):
        h = model.preactivations(Z, q)
        residual = model.outputs(h) - y
        u -= eta * model.coarse_gradient(Z, h, residual, u, q)
        q = sign(u)
        hamming.append((q != w_star).sum(dim=1))
    return torch.stack(hamming, dim=1).numpy()


def run_legacy_outputs(problem: Problem, cfg: Config) -> dict[str, np.ndarray]:
    """Every outcome the engines return (recorder.ChunkOutput), from the same plain loop:
    Hamming H_0..H_T, losses L(q_0)..L(q_T) on the full sample, the ergodic Hamming of
    sign(q_1 + ... + q_T') at the checkpoints T' and at T, and u_T. Also ``u_mass``: the sum over
    the steps of eta |Z|^T |coeff| / n per coordinate, the scale of the float32 rounding of u_T
    (the summation order of the gradient differs between this loop and the engines)."""
    Z, y, w_star, model = problem.Z, problem.y, problem.teacher, problem.model
    t, n, m, d = Z.shape
    eta = step_size_eta(cfg.train.step_size, d, m, cfg.model.activation)
    checkpoints = sorted(set(cfg.record.checkpoints))
    u = problem.u0.clone()
    q = sign(u)
    q_sum = torch.zeros((t, d), dtype=torch.int64)
    hamming, losses, ergodic_at = [(q != w_star).sum(dim=1)], [model.loss(Z, q, y)], []
    u_mass = torch.zeros((t, d), dtype=torch.float64)
    for step in range(1, cfg.train.steps + 1):
        h = model.preactivations(Z, q)
        residual = model.outputs(h) - y
        u -= eta * model.coarse_gradient(Z, h, residual, u, q)
        coeff = (residual.unsqueeze(-1).abs() * 2.0 / m).double()  # |res| sigma~' / m, sigma~' <= 2
        u_mass += eta * torch.einsum("tnm,tnmd->td", coeff, Z.abs().double()) / n
        q = sign(u)
        q_sum += q.long()
        hamming.append((q != w_star).sum(dim=1))
        losses.append(model.loss(Z, q, y))
        if step in checkpoints:
            ergodic_at.append((sign(q_sum.to(Z.dtype)) != w_star).sum(dim=1))
    return {
        "hamming": torch.stack(hamming, dim=1).numpy(),
        "ergodic_hamming": (sign(q_sum.to(Z.dtype)) != w_star).sum(dim=1).numpy(),
        "final_loss": losses[-1].double().numpy(),
        "loss": torch.stack(losses, dim=1).double().numpy(),
        "final_u": u.numpy(),
        "ergodic_at": torch.stack(ergodic_at, dim=1).numpy() if ergodic_at
        else np.zeros((t, 0), dtype=np.int64),
        "u_mass": u_mass.numpy(),
    }
