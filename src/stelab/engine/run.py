"""Run an experiment: choose the engine, chunk the trials to fit the memory budget, run, make rows
(the orchestration of the engine package; :mod:`stelab.engine` re-exports its public names).

``run_experiment(cfg)`` is a pure function of (config, trial ids): the rows do not depend on the
chunking, the device count, the process or the engine (every engine gives identical
outcomes), except the timing column ``wall_seconds`` and the ``engine`` column that names the
engine that ran.

Engines (``run.engine``): every engine of the registry (:mod:`stelab.engine_registry`: the
built-in ``dense``, ``incremental`` and ``trialwise``, identical outputs bit for bit) and
``auto``, the supported engine with the lowest cost estimate
(:func:`stelab.engine.budget.select_engine`). This module knows none by name: it runs a chunk
with the planned engine's :meth:`~stelab.engine_registry.Engine.run`.

Memory: chunks and their layout are planned to the budget before anything is built
(:mod:`stelab.engine.budget`, the one planner of runs and sweeps); a run whose single trial
does not fit is refused with :class:`~stelab.errors.MemoryBudgetError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from stelab.config import Config
from stelab.devices import device_type
from stelab.engine.budget import UNBOUNDED, ChunkPlan, plan_chunks, run_budget
from stelab.engine.host_problem import HostProblem, build_host_problem, builds_on_host
from stelab.engine.output import ChunkOutput
from stelab.engine.traffic import Traffic
from stelab.engine_registry import Engine, get_engine
from stelab.errors import NumericalError
from stelab.outcomes import trajectory_outcomes

if TYPE_CHECKING:
    import torch

    from stelab.engine.problem import Problem

ProgressCallback = Callable[[int, int], None]


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available else cpu; ``cuda`` without a GPU is a ConfigError
    (:func:`stelab.devices.device_type`, as a torch.device)."""
    import torch

    return torch.device(device_type(name))


def plan_run(cfg: Config, device: torch.device | str, engine: str | None = None) -> ChunkPlan:
    """The chunk plan of ``cfg`` on ``device`` within its memory budget."""
    budget, source = run_budget(cfg, device)
    return plan_chunks(cfg, budget, source, engine=engine)


def plan_chunk_size(cfg: Config, device: torch.device | str, engine: str | None = None) -> int:
    """How many trials fit the memory budget at once (at least 1, else MemoryBudgetError)."""
    return plan_run(cfg, device, engine).size


def estimate_peak_bytes(cfg: Config, trials: int, engine: str | None = None) -> int:
    """Estimated peak bytes of building and running a chunk of ``trials`` trials of ``cfg`` in
    the layout the planner takes for chunks of that size (:mod:`stelab.engine.budget`)."""
    return plan_chunks(cfg, UNBOUNDED, trials=trials, engine=engine).peak_bytes(trials)


def run_chunk(cfg: Config, problem: Problem, engine: str, layout: str | None = None,
              traffic: Traffic | None = None) -> ChunkOutput:
    """Run one chunk's problem on the registered ``engine`` in ``layout`` (default: the
    engine's last layout, the one that needs the least memory; :mod:`stelab.engine.budget`);
    ``traffic`` counts what the engine read (:mod:`stelab.engine.traffic`)."""
    chosen = get_engine(engine)
    names = [option.name for option in chosen.layouts(cfg)]
    if layout is None:
        layout = names[-1]
    elif layout not in names:
        raise ValueError(f"layout {layout!r} is not one of the {engine} engine's: {names}")
    return chosen.run(cfg, problem, layout, traffic)


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
    if isinstance(values, np.ndarray):
        finite = np.isfinite(values)
        if bool(finite.all()):
            return
        bad = (~finite).reshape(len(trials), -1).any(axis=1)
    else:
        import torch  # a torch engine's tensor: torch is loaded already

        finite = torch.isfinite(values)
        if bool(finite.all()):
            return
        bad = (~finite).reshape(len(trials), -1).any(dim=1).cpu().numpy()
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


def _input_witness(problem: Problem | HostProblem) -> torch.Tensor | np.ndarray:
    """Values that are all finite exactly when the chunk's inputs are: for float32 data the
    error bounds (per trial, the largest row sum of |Z| in float64: a NaN or inf entry makes it
    NaN or inf, and float32 values cannot overflow a float64 sum), which are already computed,
    so the check costs no pass over the data (a full isfinite pass took 0.57 s a trial at
    d = 1024, n = 128 d, more than drawing the inputs); else the inputs themselves."""
    if isinstance(problem, HostProblem):
        return problem.bound  # float32 data only
    if str(problem.Z.dtype) == "torch.float32" and problem.bound is not None:
        return problem.bound
    return problem.Z


def build_chunk(cfg: Config, trials: list[int], device: str, engine: Engine
                ) -> Problem | HostProblem:
    """The problem of a chunk: in numpy for an engine that runs on host arrays
    (:attr:`stelab.engine_registry.Engine.host_arrays`) where the host builder covers the config
    (:func:`stelab.engine.host_problem.builds_on_host`), else in torch on ``device``; the two
    give the same rows."""
    if engine.host_arrays and device == "cpu" and builds_on_host(cfg):
        return build_host_problem(cfg, trials)
    import torch

    from stelab.engine.problem import build_problem

    return build_problem(cfg, trials, torch.device(device))


def run_experiment(
    cfg: Config,
    trials: Sequence[int] | None = None,
    progress: ProgressCallback | None = None,
    chunk_size: int | None = None,
    plan: ChunkPlan | None = None,
) -> pd.DataFrame:
    """Run the trials of ``cfg``: one row per trial.

    Each trial is a pure function of (config, ``run.seed``, trial index): the rows do not
    depend on the chunking, the engine or the process, except ``wall_seconds`` and ``engine``.

    Parameters
    ----------
    cfg : Config
        The experiment (:func:`stelab.parse_config`).
    trials : sequence of int, optional
        Trial indices to run (default ``range(cfg.run.trials)``).
    progress : callable, optional
        Called as ``progress(done, total)`` (trials) after each chunk.
    chunk_size : int, optional
        Trials per chunk, replacing the planned size (results unchanged).
    plan : ChunkPlan, optional
        A plan made elsewhere (a sweep's, for its worker's memory budget), replacing the run's
        own (:func:`stelab.engine.budget.plan_chunks`).

    Returns
    -------
    pandas.DataFrame
        One row per trial: the config's flat fields (``d``, ``n``, ``m``, ``steps``, ...),
        ``trial`` (int64), ``engine`` (str, the engine that ran), the outcomes of the Hamming
        trajectory (``success_last``, ``success_ergodic``, ``success_best``, ``absorbed``:
        bool; ``final_hamming``, ``first_hit``, ... : int64), ``final_loss`` (float64, the
        loss (1/2n) sum_i res_i^2 at q_T) and ``wall_seconds`` (float64, seconds of the
        trial's share of its chunk); ``hamming_trajectory`` (int32 array, T + 1),
        ``checkpoint_steps`` / ``ergodic_hamming_at`` (int64 arrays) and ``loss_trajectory``
        (float32 array) when recorded.

    Raises
    ------
    ConfigError
        The forced engine cannot run ``cfg``, or no CUDA device for ``run.device = "cuda"``.
    MemoryBudgetError
        One trial does not fit ``run.memory_budget_mb``.
    NumericalError
        Inputs or latent weights hold inf or NaN (never turned into a sign).

    Examples
    --------
    >>> import stelab
    >>> cfg = stelab.parse_config({"model": {"d": 16}, "train": {"n": 128, "steps": 40},
    ...                            "run": {"trials": 3, "device": "cpu"}})
    >>> rows = stelab.run_experiment(cfg)
    >>> len(rows), rows["engine"].iloc[0], rows["success_last"].dtype
    (3, 'trialwise', dtype('bool'))
    """
    trial_ids = list(range(cfg.run.trials)) if trials is None else [int(k) for k in trials]
    device = device_type(cfg.run.device)
    plan = plan or plan_run(cfg, device)
    engine = get_engine(plan.engine)
    size = chunk_size or plan.size
    rows: list[dict] = []
    for start in range(0, len(trial_ids), size):
        chunk = trial_ids[start : start + size]
        began = time.perf_counter()
        problem = build_chunk(cfg, chunk, device, engine)
        _refuse_non_finite(cfg, chunk, _input_witness(problem), "inputs")
        _refuse_non_finite(cfg, chunk, problem.u0, "initial weights u_0")
        out = engine.run(cfg, problem, plan.layout)
        del problem
        _refuse_non_finite(cfg, chunk, out.final_u, "latent weights u_T")
        rows.extend(_rows(cfg, chunk, out, time.perf_counter() - began, engine.name))
        if progress is not None:
            progress(len(rows), len(trial_ids))
    return pd.DataFrame(rows)
