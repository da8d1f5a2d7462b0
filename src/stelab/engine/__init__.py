"""Run an experiment: chunk the trials to fit the memory budget, run the engine, make rows.

``run_experiment(cfg)`` is a pure function of (config, trial ids): the rows do not depend on the
chunking, the device count or the process, except the timing column ``wall_seconds``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from stelab.config import Config
from stelab.engine.dense import ChunkOutput, run_dense
from stelab.engine.problem import build_problem, bytes_per_trial
from stelab.engine.recorder import trajectory_outcomes
from stelab.errors import ConfigError, MemoryBudgetError

__all__ = ["run_experiment", "resolve_device", "plan_chunk_size", "default_memory_budget"]

ProgressCallback = Callable[[int, int], None]


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available else cpu; ``cuda`` without a GPU is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "run.device: 'cuda' requested but no CUDA device is available; allowed: auto, cpu"
        )
    return torch.device(name)


def default_memory_budget(device: torch.device) -> int:
    """A quarter of the free memory of ``device`` in bytes."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return free // 4
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        free = 4 << 30
    return free // 4


def plan_chunk_size(cfg: Config, device: torch.device) -> int:
    """How many trials fit the memory budget at once (at least 1, else MemoryBudgetError)."""
    budget_mb = cfg.run.memory_budget_mb
    budget = int(budget_mb * 2**20) if budget_mb is not None else default_memory_budget(device)
    per_trial = bytes_per_trial(cfg)
    if per_trial > budget:
        raise MemoryBudgetError(
            f"run.memory_budget_mb: one trial needs {per_trial / 2**20:.1f} MB "
            f"(n={cfg.train.n}, m={cfg.model.m}, d={cfg.model.d}, {cfg.run.dtype}) "
            f"but the budget is {budget / 2**20:.1f} MB; "
            "raise run.memory_budget_mb or lower train.n / model.d"
        )
    return max(1, min(cfg.run.trials, budget // per_trial))


def _rows(
    cfg: Config, trials: Sequence[int], out: ChunkOutput, seconds: float, engine: str
) -> list[dict]:
    outcomes = trajectory_outcomes(out.hamming, out.ergodic_hamming, cfg.absorb_window)
    base = cfg.flat()
    rows = []
    for i, trial in enumerate(trials):
        row = {**base, "trial": int(trial), "engine": engine}
        row.update({key: value[i].item() for key, value in outcomes.items()})
        row["final_loss"] = float(out.final_loss[i])
        row["wall_seconds"] = seconds / len(trials)
        if cfg.record.trajectory:
            row["hamming_trajectory"] = out.hamming[i].astype(np.int32)
        if cfg.record.checkpoints:
            row["checkpoint_steps"] = np.array(sorted(set(cfg.record.checkpoints)), dtype=np.int64)
            row["ergodic_hamming_at"] = out.ergodic_at[i].astype(np.int64)
        if cfg.record.loss_trajectory and out.loss is not None:
            row["loss_trajectory"] = out.loss[i].astype(np.float32)
        rows.append(row)
    return rows


def run_experiment(
    cfg: Config,
    trials: Sequence[int] | None = None,
    progress: ProgressCallback | None = None,
    chunk_size: int | None = None,
) -> pd.DataFrame:
    """Run the trials of ``cfg`` (default ``range(cfg.run.trials)``); one row per trial.

    ``chunk_size`` overrides the memory-based plan (it never changes the results).
    """
    trial_ids = list(range(cfg.run.trials)) if trials is None else [int(k) for k in trials]
    device = resolve_device(cfg.run.device)
    size = chunk_size or plan_chunk_size(cfg, device)
    rows: list[dict] = []
    for start in range(0, len(trial_ids), size):
        chunk = trial_ids[start : start + size]
        began = time.perf_counter()
        problem = build_problem(cfg, chunk, device)
        out = run_dense(problem, cfg)
        del problem
        rows.extend(_rows(cfg, chunk, out, time.perf_counter() - began, "dense"))
        if progress is not None:
            progress(len(rows), len(trial_ids))
    return pd.DataFrame(rows)
