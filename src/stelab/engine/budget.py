"""The memory plan of a run: how many trials a chunk holds, and in which layout.

One planner serves ``stelab run`` (:func:`stelab.engine.run_experiment`) and ``stelab sweep``
(:func:`stelab.sweep.runner.plan_cells`): both call :func:`plan_chunks` with the budget they
have, and get the same chunks and the same peak estimate.

Budget: ``run.memory_budget_mb`` when set, else a quarter of the available memory of the device
(MemAvailable on Linux; a sweep worker is given its share by the sweep).

Bytes per trial, by engine and layout (data = 4 n m d bytes in float32):

* ``rows`` (dense engine): the data, the per-row state and statistics
  (:func:`stelab.engine.problem.bytes_per_trial`);
* ``cache`` (incremental engine): ``rows`` + a column cache of at most CACHE_FRACTION of the
  data (:func:`cache_bytes_per_trial`), so the run stays within 1.5 data tensors;
* ``columns`` (incremental engine): ``rows`` + a second, column-major copy of the data, made
  trial by trial when a trial first needs it (its flipped columns are then read as contiguous
  streams, however many flip): about 2.05 data tensors;
* ``trialwise`` (incremental engine, trial-wise form :mod:`stelab.engine.trialwise`): ``rows``,
  plus once per chunk one column-major copy of a trial per worker thread.

The incremental engine takes the first of ``trialwise`` (where that form supports the config),
``columns`` and ``cache`` with which a chunk of at least min(trials, MIN_COLUMNS_CHUNK) trials
fits the budget (``cache`` otherwise).

Each chunk also needs, once, the raw draw of one trial and whitening's d x d work
(:func:`stelab.engine.problem.build_peak_extra`). A run whose single trial does not fit the
budget in the smallest layout is refused with :class:`~stelab.errors.MemoryBudgetError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from stelab.config import Config
from stelab.engine.incremental import incremental_unsupported
from stelab.engine.problem import build_peak_extra, bytes_per_trial
from stelab.engine.trialwise import trialwise_unsupported
from stelab.errors import ConfigError, MemoryBudgetError

__all__ = [
    "ChunkPlan", "plan_chunks", "select_engine", "default_memory_budget", "run_budget",
    "cache_bytes_per_trial", "cache_columns", "INCREMENTAL_MIN_BYTES", "UNBOUNDED",
]

#: per-trial data (bytes) from which ``auto`` prefers the incremental engine
INCREMENTAL_MIN_BYTES = 1 << 20
#: share of a chunk's data the incremental engine may add as its column cache
CACHE_FRACTION = 0.25
#: a budget no chunk reaches: the plan (layout, peak) of a chunk whose memory is not limited
UNBOUNDED = 1 << 62
#: the column-major layout is taken when a chunk of this many trials (or all of them) fits:
#: enough for both threads to have work, and chunks of this size are as fast per trial
MIN_COLUMNS_CHUNK = 4


def select_engine(cfg: Config) -> str:
    """The engine that runs ``cfg``: ``dense`` or ``incremental``.

    ``run.engine = "auto"`` takes the incremental engine where it is supported, in its
    trial-wise form (no per-step overhead: the fastest at every size measured), or in its
    batched form when a trial's data is at least INCREMENTAL_MIN_BYTES (below that, the batched
    form's per-step overheads make it no faster than the dense engine). Forcing
    ``incremental`` on a config it does not support is a ConfigError.
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
    if trialwise_unsupported(cfg) is None:
        return "incremental"
    return "incremental" if _data_bytes(cfg) >= INCREMENTAL_MIN_BYTES else "dense"


def _data_bytes(cfg: Config) -> int:
    item = 4 if cfg.run.dtype == "float32" else 8
    return item * cfg.train.n * cfg.model.m * cfg.model.d


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


def run_budget(cfg: Config, device: torch.device) -> tuple[int, str]:
    """The budget of a run in bytes, and where it comes from (for messages)."""
    if cfg.run.memory_budget_mb is not None:
        return int(cfg.run.memory_budget_mb * 2**20), "run.memory_budget_mb"
    return default_memory_budget(device), "the default budget (a quarter of the available memory)"


def cache_bytes_per_trial(cfg: Config) -> int:
    """Column-cache share of one trial for the incremental engine's ``cache`` layout: what is
    left of half a data tensor after the per-trial state (batch-norm covariance, per-row state
    and temporaries), at most CACHE_FRACTION of the data, so that the run stays within 1.5 data
    tensors."""
    rows = cfg.train.n * cfg.model.m
    data = _data_bytes(cfg)
    # per-trial state, twice (its temporaries are about as large), and 40 B per row of
    # decision temporaries; 5% of the data is left for allocator slack
    state = 2 * (bytes_per_trial(cfg) - data) + 40 * rows
    return max(0, min(int(CACHE_FRACTION * data), int(0.45 * data) - state))


def _layout_bytes(cfg: Config, layout: str) -> int:
    """Bytes per trial of a chunk in ``layout`` (module docstring), with the recorded
    trajectories: (T + 1) Hamming distances (int32) and, when recorded, losses (without them a
    huge train.steps would pass the plan and then fail)."""
    d = cfg.model.d
    item = 4 if cfg.run.dtype == "float32" else 8
    trajectory = (cfg.train.steps + 1) * (4 + (item if cfg.record.loss_trajectory else 0))
    if layout in ("rows", "trialwise"):
        return bytes_per_trial(cfg) + trajectory + (24 * d if layout == "trialwise" else 0)
    # the incremental engine's per-column table (int64) and flags, and its extra state
    extra = _data_bytes(cfg) if layout == "columns" else cache_bytes_per_trial(cfg)
    return bytes_per_trial(cfg) + trajectory + extra + 24 * d


@dataclass(frozen=True)
class ChunkPlan:
    """How a run is cut into chunks: ``size`` trials at once, on ``engine``, in ``layout``."""

    engine: str  # "dense" | "incremental"
    layout: str  # "rows" | "cache" | "columns" | "trialwise"
    size: int  # trials per chunk
    per_trial: int  # bytes per trial of a chunk
    fixed: int  # bytes once per chunk (build temporaries)

    def peak_bytes(self, trials: int | None = None) -> int:
        """Estimated peak bytes of a chunk of ``trials`` (default: a full chunk)."""
        return (self.size if trials is None else trials) * self.per_trial + self.fixed


def cache_columns(cfg: Config, layout: str, trials: int) -> int:
    """Column-cache capacity of the batched incremental engine for a chunk of ``trials`` trials
    in ``layout``, in columns of n*m numbers (``columns``: every column of every trial)."""
    if layout == "columns":
        return trials * cfg.model.d
    column = (4 if cfg.run.dtype == "float32" else 8) * cfg.train.n * cfg.model.m
    return trials * cache_bytes_per_trial(cfg) // column


def plan_chunks(cfg: Config, budget: int, source: str = "run.memory_budget_mb",
                trials: int | None = None, engine: str | None = None) -> ChunkPlan:
    """The chunk plan of ``trials`` trials (default ``run.trials``) of ``cfg`` in ``budget``
    bytes (module docstring). ``source`` names the budget in the refusal."""
    engine = engine or select_engine(cfg)
    wanted = cfg.run.trials if trials is None else trials
    layouts = ["rows"]
    if engine == "incremental":
        trialwise = trialwise_unsupported(cfg) is None
        layouts = ["trialwise", "columns", "cache"] if trialwise else ["columns", "cache"]
    for layout in layouts:
        fixed = build_peak_extra(cfg)
        if layout == "trialwise":  # a column-major copy of one trial per worker thread
            fixed += torch.get_num_threads() * _data_bytes(cfg)
        per_trial = _layout_bytes(cfg, layout)
        size = min(wanted, max(0, (budget - fixed) // per_trial))
        if size >= min(wanted, MIN_COLUMNS_CHUNK) or layout == layouts[-1]:
            break
    if per_trial + fixed > budget:
        raise MemoryBudgetError(
            f"run.memory_budget_mb: one trial needs about {(per_trial + fixed) / 2**20:.1f} MB "
            f"(n={cfg.train.n}, m={cfg.model.m}, d={cfg.model.d}, T={cfg.train.steps}, "
            f"{cfg.run.dtype}, {engine} engine) but {source} is {budget / 2**20:.1f} MB; "
            "raise run.memory_budget_mb or lower train.n / model.d / train.steps"
        )
    return ChunkPlan(engine=engine, layout=layout, size=max(1, size), per_trial=per_trial,
                     fixed=fixed)
