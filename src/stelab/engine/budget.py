"""The memory plan of a run: which engine runs it, how many trials a chunk holds, in which layout.

One planner serves ``stelab run`` (:func:`stelab.engine.run_experiment`) and ``stelab sweep``
(:func:`stelab.sweep.runner.plan_cells`): both call :func:`plan_chunks` with the budget they
have, and get the same chunks and the same peak estimate. It knows no engine by name: it asks
the registry (:mod:`stelab.engine_registry`) which engines support the config, what each costs
and how many bytes a trial takes in each of its layouts.

Budget: ``run.memory_budget_mb`` when set, else a quarter of the available memory of the device
(MemAvailable on Linux; a sweep worker is given its share by the sweep).

Engine: ``run.engine`` when it names one (a ConfigError if that engine cannot run the config),
else (``auto``) the supported engine of lowest :meth:`~stelab.engine_registry.Engine.cost`
(the first in the registry's order on a tie). An engine whose declared cost floor
(:func:`stelab.engine_registry.cost_floor`) is above the best cost found is not imported: a CPU
run that the trial-wise engine takes loads neither batched engine, nor torch with them.

Layout: the first of the engine's layouts in which a chunk of at least
min(trials, MIN_COLUMNS_CHUNK) trials fits the budget; when none does, under ``auto`` the
engine's ``fallback`` engine is planned instead, else the engine's last layout is taken (with
the chunk that fits). Each chunk also needs, once, the raw draw of one trial and whitening's
d x d work (:func:`stelab.engine.problem.build_peak_extra`). A run whose single trial does not
fit the budget is refused with :class:`~stelab.errors.MemoryBudgetError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stelab.config import Config
from stelab.engine.sizes import build_peak_extra
from stelab.engine_registry import Engine, cost_floor, engine_names, engines, get_engine
from stelab.errors import ConfigError, MemoryBudgetError

if TYPE_CHECKING:
    import torch

__all__ = ["ChunkPlan", "plan_chunks", "select_engine", "default_memory_budget", "run_budget",
           "UNBOUNDED"]

#: a budget no chunk reaches: the plan (layout, peak) of a chunk whose memory is not limited
UNBOUNDED = 1 << 62
#: an engine's next layout is tried when a chunk of this many trials (or all of them) does not
#: fit: enough for both threads to have work, and chunks of this size are as fast per trial
MIN_COLUMNS_CHUNK = 4


def select_engine(cfg: Config) -> str:
    """The name of the engine that runs ``cfg`` (module docstring). Forcing an engine that
    cannot run ``cfg`` is a ConfigError naming the reason and the engines that can."""
    choice = cfg.run.engine
    if choice != "auto":
        reason = get_engine(choice).unsupported(cfg)
        if reason is not None:
            allowed = ", ".join(["auto", *(e.name for e in _supported(cfg))])
            raise ConfigError(f"run.engine: {choice!r} cannot run this config ({reason}); "
                              f"allowed here: {allowed}")
        return choice
    names = engine_names()
    best: tuple[float, int] | None = None  # (cost, place in the registry's order)
    for place in sorted(range(len(names)), key=lambda i: (cost_floor(names[i]), i)):
        floor = cost_floor(names[place])
        if best is not None and floor > best[0]:
            break  # neither this engine nor a later one can beat the best found: not imported
        engine = get_engine(names[place])
        if engine.unsupported(cfg) is not None:
            continue
        cost = engine.cost(cfg)
        if cost < floor:
            raise RuntimeError(f"engine {engine.name!r}: cost {cost} below its floor {floor}")
        best = min(best or (cost, place), (cost, place))
    if best is None:
        raise ConfigError("run.engine: no registered engine can run this config ("
                          + "; ".join(str(e.unsupported(cfg)) for e in engines()) + ")")
    return names[best[1]]


def _supported(cfg: Config) -> list[Engine]:
    return [e for e in engines() if e.unsupported(cfg) is None]


def default_memory_budget(device: torch.device | str) -> int:
    """A quarter of the available memory of ``device`` (a torch.device or a device type) in
    bytes (MemAvailable on Linux)."""
    if _device_type(device) == "cuda":
        import torch

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


def _device_type(device: Any) -> str:
    return getattr(device, "type", device)


def run_budget(cfg: Config, device: torch.device | str) -> tuple[int, str]:
    """The budget of a run in bytes, and where it comes from (for messages)."""
    if cfg.run.memory_budget_mb is not None:
        return int(cfg.run.memory_budget_mb * 2**20), "run.memory_budget_mb"
    return default_memory_budget(device), "the default budget (a quarter of the available memory)"


@dataclass(frozen=True)
class ChunkPlan:
    """How a run is cut into chunks: ``size`` trials at once, on ``engine``, in ``layout``."""

    engine: str  # a registered engine's name (:mod:`stelab.engine_registry`)
    layout: str  # one of its layouts' names
    size: int  # trials per chunk
    per_trial: int  # bytes per trial of a chunk
    fixed: int  # bytes once per chunk (build temporaries)

    def peak_bytes(self, trials: int | None = None) -> int:
        """Estimated peak bytes of a chunk of ``trials`` (default: a full chunk)."""
        return (self.size if trials is None else trials) * self.per_trial + self.fixed


def plan_chunks(cfg: Config, budget: int, source: str = "run.memory_budget_mb",
                trials: int | None = None, engine: str | None = None) -> ChunkPlan:
    """The chunk plan of ``trials`` trials (default ``run.trials``) of ``cfg`` in ``budget``
    bytes (module docstring) on ``engine`` (default: :func:`select_engine`, with its
    fallbacks). ``source`` names the budget in the refusal."""
    chosen = get_engine(engine or select_engine(cfg))
    wanted = cfg.run.trials if trials is None else trials
    fixed = build_peak_extra(cfg)
    while True:
        layouts = chosen.layouts(cfg)
        for layout in layouts:
            size = min(wanted, max(0, (budget - fixed - layout.fixed) // layout.per_trial))
            if size >= min(wanted, MIN_COLUMNS_CHUNK):
                break
        else:
            if engine is None and cfg.run.engine == "auto" and chosen.fallback is not None:
                chosen = get_engine(chosen.fallback)
                continue
            layout = layouts[-1]
        break
    chunk_fixed = fixed + layout.fixed
    if layout.per_trial + chunk_fixed > budget:
        raise MemoryBudgetError(
            f"run.memory_budget_mb: one trial needs about "
            f"{(layout.per_trial + chunk_fixed) / 2**20:.1f} MB "
            f"(n={cfg.train.n}, m={cfg.model.m}, d={cfg.model.d}, T={cfg.train.steps}, "
            f"{cfg.run.dtype}, {chosen.name} engine) but {source} is {budget / 2**20:.1f} MB; "
            "raise run.memory_budget_mb or lower train.n / model.d / train.steps"
        )
    return ChunkPlan(engine=chosen.name, layout=layout.name, size=max(1, size),
                     per_trial=layout.per_trial, fixed=chunk_fixed)
