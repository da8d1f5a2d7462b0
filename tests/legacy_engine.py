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
