"""Run an experiment: choose the engine, chunk the trials to fit the memory budget, run, make rows.

``run_experiment(cfg)`` is a pure function of (config, trial ids): the rows do not depend on the
chunking, the device count, the process or the engine (dense and incremental give identical
outcomes), except the timing column ``wall_seconds`` and the ``engine`` column that names the
engine that ran.

Engines (``run.engine``): ``dense`` (:mod:`stelab.engine.dense`), ``incremental``
(:mod:`stelab.engine.incremental`; full batch, {0, 1}-valued surrogates, float32, CPU) and
``auto``: the incremental engine, adapting step by step
(:class:`~stelab.engine.incremental._StepChooser`), where it is supported and a trial's data is
at least INCREMENTAL_MIN_BYTES (below that, per-step overheads dominate and the dense engine is
as fast), else the dense engine.

Memory: the peak of a chunk of k trials is estimated before it is built
(:func:`estimate_peak_bytes`); chunks are sized to the budget (``run.memory_budget_mb``, default
a quarter of the available memory), and a run whose single trial does not fit is refused with
:class:`~stelab.errors.MemoryBudgetError`.
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
from stelab.engine.incremental import incremental_unsupported, run_incremental
from stelab.engine.problem import Problem, build_peak_extra, build_problem, bytes_per_trial
from stelab.engine.recorder import trajectory_outcomes
from stelab.errors import ConfigError, MemoryBudgetError, NumericalError

__all__ = [
    "run_experiment",
    "resolve_device",
    "plan_chunk_size",
    "default_memory_budget",
    "select_engine",
    "estimate_peak_bytes",
    "run_chunk",
]

#: per-trial data (bytes) from which ``auto`` prefers the incremental engine
INCREMENTAL_MIN_BYTES = 1 << 20
#: share of a chunk's data the incremental engine may add as its column cache
CACHE_FRACTION = 0.25

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
    """A quarter of the available memory of ``device`` in bytes (MemAvailable on Linux)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return free // 4
    available = _mem_available()
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            available = 4 << 30
    return available // 4


def _mem_available() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def select_engine(cfg: Config) -> str:
    """The engine that runs ``cfg``: ``dense`` or ``incremental`` (see the module docstring).

    Forcing ``run.engine = "incremental"`` on a config it does not support is a ConfigError.
    """
    choice = cfg.run.engine
    reason = incremental_unsupported(cfg)
    if choice == "incremental":
        if reason is not None:
            raise ConfigError(f"run.engine: 'incremental' cannot run this config ({reason}); "
                              "allowed here: auto, dense")
        return "incremental"
    if choice == "dense" or reason is not None:
        return "dense"
    item = 4 if cfg.run.dtype == "float32" else 8
    data = item * cfg.train.n * cfg.model.m * cfg.model.d
    return "incremental" if data >= INCREMENTAL_MIN_BYTES else "dense"


def _budget(cfg: Config, device: torch.device) -> int:
    budget_mb = cfg.run.memory_budget_mb
    return int(budget_mb * 2**20) if budget_mb is not None else default_memory_budget(device)


def cache_bytes_per_trial(cfg: Config) -> int:
    """Column-cache share of one trial for the incremental engine: what is left of half a data
    tensor after the per-trial state (batch-norm covariance, per-row state and temporaries),
    at most CACHE_FRACTION of the data, so that the run stays within 1.5 data tensors."""
    item = 4 if cfg.run.dtype == "float32" else 8
    rows = cfg.train.n * cfg.model.m
    data = item * rows * cfg.model.d
    # per-trial state, twice (its temporaries are about as large), and 40 B per row of
    # decision temporaries; 5% of the data is left for allocator slack
    state = 2 * (bytes_per_trial(cfg) - data) + 40 * rows
    return max(0, min(int(CACHE_FRACTION * data), int(0.45 * data) - state))


def _per_trial(cfg: Config, engine: str) -> int:
    """Bytes per trial of a chunk, with the incremental engine's column cache share."""
    per_trial = bytes_per_trial(cfg)
    # the recorded trajectories, (T + 1) values per trial: the Hamming distances (int32) and,
    # when recorded, the losses; without them a huge train.steps passes the plan and then fails
    item = 4 if cfg.run.dtype == "float32" else 8
    per_trial += (cfg.train.steps + 1) * (4 + (item if cfg.record.loss_trajectory else 0))
    if engine == "incremental":
        per_trial += cache_bytes_per_trial(cfg) + 24 * cfg.model.d
    return per_trial


def estimate_peak_bytes(cfg: Config, trials: int, engine: str | None = None) -> int:
    """Estimated peak bytes of building and running a chunk of ``trials`` trials of ``cfg``:
    trials x (data, per-row state, statistics, column cache) + the one-off build temporaries."""
    engine = engine or select_engine(cfg)
    return trials * _per_trial(cfg, engine) + build_peak_extra(cfg)


def plan_chunk_size(cfg: Config, device: torch.device, engine: str | None = None) -> int:
    """How many trials fit the memory budget at once (at least 1, else MemoryBudgetError)."""
    engine = engine or select_engine(cfg)
    budget = _budget(cfg, device)
    per_trial = _per_trial(cfg, engine)
    fixed = build_peak_extra(cfg)
    need = per_trial + fixed
    if need > budget:
        source = "run.memory_budget_mb" if cfg.run.memory_budget_mb is not None else (
            "the default budget (a quarter of the available memory)"
        )
        raise MemoryBudgetError(
            f"run.memory_budget_mb: one trial needs about {need / 2**20:.1f} MB "
            f"(n={cfg.train.n}, m={cfg.model.m}, d={cfg.model.d}, T={cfg.train.steps}, "
            f"{cfg.run.dtype}, {engine} engine) but {source} is {budget / 2**20:.1f} MB; "
            "raise run.memory_budget_mb or lower train.n / model.d / train.steps"
        )
    return max(1, min(cfg.run.trials, (budget - fixed) // per_trial))


def run_chunk(cfg: Config, problem: Problem, engine: str) -> ChunkOutput:
    """Run one chunk's problem on ``engine`` (``auto`` runs the incremental engine adaptively)."""
    if engine == "incremental":
        t, n, m, d = problem.Z.shape
        column = n * m * problem.Z.element_size()
        return run_incremental(
            problem, cfg, cache_columns=t * cache_bytes_per_trial(cfg) // column,
            adaptive=cfg.run.engine == "auto",
        )
    return run_dense(problem, cfg)


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


def _refuse_non_finite(
    cfg: Config, trials: Sequence[int], values: torch.Tensor | np.ndarray, what: str
) -> None:
    """NaN never becomes a sign: the engine's sign maps NaN to -1, so inputs that hold inf or
    NaN, or latent weights that overflowed, are refused (NumericalError) instead of reported.
    u stays non-finite once it is (inf - inf = NaN, NaN - x = NaN), so checking u_T suffices."""
    finite = torch.isfinite(values) if isinstance(values, torch.Tensor) else np.isfinite(values)
    if bool(finite.all()):
        return
    bad = (~finite).reshape(len(trials), -1).any(axis=1) if isinstance(finite, np.ndarray) else (
        ~finite).reshape(len(trials), -1).any(dim=1).cpu().numpy()
    trial = trials[int(np.argmax(bad))]
    if what == "inputs":
        raise NumericalError(
            f"data.params: the inputs of trial {trial} hold inf or NaN (distribution "
            f"{cfg.data.distribution!r}, params {cfg.data.params}, normalization "
            f"{cfg.data.normalization!r}, {cfg.run.dtype}); choose parameters whose draws fit "
            f"in {cfg.run.dtype}"
        )
    if what.startswith("initial"):
        raise NumericalError(
            f"train.init_scale: the {what} of trial {trial} overflow {cfg.run.dtype} "
            f"(init_scale = {cfg.train.init_scale}); lower train.init_scale"
        )
    raise NumericalError(
        f"train.step_size: the {what} of trial {trial} overflowed to inf or NaN "
        f"(step_size = {cfg.train.step_size}, init_scale = {cfg.train.init_scale}, "
        f"{cfg.run.dtype}"
        + (f", train.ste_params = {cfg.train.ste_params}" if cfg.train.ste_params else "")
        + "); lower train.step_size"
        + (" or change train.ste_params" if cfg.train.ste_params else "")
        + ", or use run.dtype = 'float64'"
    )


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
    engine = select_engine(cfg)
    size = chunk_size or plan_chunk_size(cfg, device, engine)
    rows: list[dict] = []
    for start in range(0, len(trial_ids), size):
        chunk = trial_ids[start : start + size]
        began = time.perf_counter()
        problem = build_problem(cfg, chunk, device)
        _refuse_non_finite(cfg, chunk, problem.Z, "inputs")
        _refuse_non_finite(cfg, chunk, problem.u0, "initial weights u_0")
        out = run_chunk(cfg, problem, engine)
        del problem
        _refuse_non_finite(cfg, chunk, out.final_u, "latent weights u_T")
        rows.extend(_rows(cfg, chunk, out, time.perf_counter() - began, engine))
        if progress is not None:
            progress(len(rows), len(trial_ids))
    return pd.DataFrame(rows)
