"""Measure instead of predict: run the engine's STE-gradient method on the rows of the data
itself (E4 on this dataset), with random binary teachers, and count exact recoveries.

The problem is built by :func:`stelab.engine.problem.build_problem` from the given rows (the
same builder as every run): teacher and initialization of trial k from its own streams, labels
y = sign(x . w*) with every sign decided exactly, as the engine decides the student's, so that
the student at q = w* reproduces them bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch

from stelab.config import parse_config
from stelab.diagnosis.features import constant_features, unit_scale
from stelab.diagnosis.loading import validate_data
from stelab.engine.dense import run_dense
from stelab.engine.problem import build_problem

__all__ = ["simulate"]


def simulate(
    X: np.ndarray,
    normalization: str = "none",
    teacher_balance: float = 0.5,
    trials: int = 16,
    steps: int = 500,
    seed: int = 0,
) -> float:
    """Run the engine's STE-gradient method (m = 1, sign, identity STE, default step size and
    small init) on the rows of ``X`` (constant features left out), with ``trials`` random
    teachers of balance ``teacher_balance`` under ``normalization``; return the share of trials
    whose last iterate equals w*."""
    X = validate_data(X)
    X = unit_scale(X[:, ~constant_features(X)])[0]  # float32 holds any scale of data
    n, d = X.shape
    cfg = parse_config(
        {
            "model": {"d": d, "teacher_balance": teacher_balance},
            "data": {"normalization": normalization},
            "train": {"n": n, "steps": steps},
            "run": {"trials": trials, "seed": seed, "device": "cpu", "dtype": "float32"},
        }
    )
    # every trial gets its own copy of the rows (build_problem normalizes them in place)
    rows = torch.from_numpy(X).to(torch.float32)[None, :, None, :]
    inputs = rows.expand(trials, n, 1, d).contiguous()
    problem = build_problem(cfg, list(range(trials)), torch.device("cpu"), inputs=inputs)
    out = run_dense(problem, cfg)
    return float((out.hamming[:, -1] == 0).mean())
