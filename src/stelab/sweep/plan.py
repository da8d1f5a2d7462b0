"""Plan a sweep before it starts: the work of every cell and the memory each needs, checked
against the budget of the worker that will run it (a cell whose single trial cannot fit is
refused before anything runs), and the plan printed as a table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.table import Table

from stelab.config import Config
from stelab.errors import MemoryBudgetError
from stelab.sweep.grid import Cell, trial_flops

if TYPE_CHECKING:  # the engine (torch, numba) is imported where a plan is made
    from stelab.engine.budget import ChunkPlan

__all__ = ["SweepPlan", "plan_cells"]


def _mb(nbytes: float) -> str:
    if nbytes >= 2**30:
        return f"{nbytes / 2**30:.2f} GB"
    if nbytes >= 2**20:
        return f"{nbytes / 2**20:.1f} MB"
    return f"{nbytes / 2**10:.1f} kB"


def _sci(x: float) -> str:
    return f"{int(x):,}" if x < 1e6 else f"{x:.3g}"


@dataclass
class SweepPlan:
    """Work and memory of a sweep before it starts (formulas in :func:`plan_cells`)."""

    cells: list[Cell]
    todo: list[int]  # indexes of cells still to compute
    chunk_plans: list[ChunkPlan | None]
    peak_bytes: list[int]
    budget_note: str
    n_configs: int
    trials: int
    trial_steps: int
    flops: float
    todo_trials: int = 0
    todo_flops: float = 0.0
    cell_flops: list[float] = field(default_factory=list)
    #: bytes the cells in flight may hold together, when a cell to run needs more than its
    #: worker's share (the executor then queues by memory); None otherwise
    capacity: int | None = None

    def table(self, executor: str) -> Table:
        """The plan as a rich table (printed before a sweep starts)."""
        table = Table(title="sweep plan", show_header=False, title_justify="left")
        table.add_column("what")
        table.add_column("value", overflow="fold")
        done = len(self.cells) - len(self.todo)
        table.add_row("cells", f"{len(self.cells)} ({self.n_configs} configs); "
                      f"{done} already stored, {len(self.todo)} to run")
        table.add_row("trials", f"{self.trials:,} ({self.todo_trials:,} to run)")
        table.add_row("trial-steps (sum of trials x T)", _sci(self.trial_steps))
        table.add_row("work (~4 B m d T flops per trial)",
                      f"{_sci(self.flops)} ({_sci(self.todo_flops)} to run)")
        if self.todo:
            peak = max(self.peak_bytes[i] for i in self.todo)
            table.add_row("peak memory per cell", f"{_mb(peak)} ({self.budget_note})")
        table.add_row("executor", executor)
        return table


#: where the budget of a cell too large for one worker's share comes from
SHARED_NOTE = "half the memory of the pool; runs beside the cells that leave it room"


def _budget(cfg: Config, per_slot: int | None) -> tuple[int | None, str]:
    """Bytes one running cell may hold, and where that number comes from."""
    if cfg.run.memory_budget_mb is not None:
        return int(cfg.run.memory_budget_mb * 2**20), "run.memory_budget_mb"
    if per_slot is not None:
        return per_slot // 2, "half the memory per worker"
    return None, "budget unknown here; each worker plans its own"


def plan_cells(cells: Sequence[Cell], done: set[str], memory_per_slot: int | None,
               memory_shared: int | None = None) -> SweepPlan:
    """Estimate the work and check the memory of every cell still to run.

    Memory: the chunks of a cell of k trials with budget M are those of a run
    (:func:`stelab.engine.budget.plan_chunks`: same engine, layout and peak estimate); M is half
    the memory per worker. Where the executor keeps its running cells under a shared limit
    (``memory_shared``: the memory of the whole pool), a cell whose single trial does not fit M
    is planned with half the pool's memory instead, and the plan's ``capacity`` (that same half)
    tells the executor to queue cells by their peaks. A cell whose single trial fits neither
    cannot run at all: :class:`MemoryBudgetError`, before anything starts. On a GPU
    (run.device auto/cuda where CUDA exists) each worker plans its chunks from the GPU memory.
    Work: flops-ish f = :func:`stelab.sweep.grid.trial_flops` (= 4 B m d T + 2 n m d) and
    trial-steps T per trial.
    """
    from stelab.devices import cuda_available
    from stelab.engine.budget import UNBOUNDED, plan_chunks

    gpu = cuda_available()
    chunks: list[ChunkPlan | None] = []
    peaks: list[int] = []
    flops: list[float] = []
    todo: list[int] = []
    notes: set[str] = set()
    too_big: list[str] = []
    shared = False  # whether a cell to run needs the pool's shared memory
    for i, cell in enumerate(cells):
        cfg = cell.config
        k = cell.stop - cell.start
        flops.append(trial_flops(cfg) * k)
        if cfg.run.device != "cpu" and gpu and cfg.run.memory_budget_mb is None:
            budget, note = None, "GPU: each worker plans from its free GPU memory"
        else:
            budget, note = _budget(cfg, memory_per_slot)
        # unknown budget: the whole cell at once, in the layout chosen for it
        unbounded = plan_chunks(cfg, UNBOUNDED, trials=k)
        try:
            plan = unbounded if budget is None else plan_chunks(cfg, budget, trials=k)
        except MemoryBudgetError:
            plan = None
        wide = plan is None and memory_shared is not None and cfg.run.memory_budget_mb is None
        if wide:  # too large for a worker's share: plan it with the pool's, queued by memory
            budget, note = memory_shared // 2, SHARED_NOTE
            try:
                plan = plan_chunks(cfg, budget, trials=k)
            except MemoryBudgetError:
                plan = None
        chunks.append(None if budget is None else plan)
        peaks.append(unbounded.peak_bytes(1) if plan is None else plan.peak_bytes())
        if cell.key in done:
            continue
        todo.append(i)
        shared = shared or wide
        notes.add(note if budget is None else f"budget {_mb(budget)}: {note}")
        if plan is None:
            too_big.append(
                f"sweep cell {cell.describe()}: one trial needs {_mb(peaks[-1])} "
                f"(n={cfg.train.n}, m={cfg.model.m}, d={cfg.model.d}, {cfg.run.dtype}) "
                f"but the memory budget is {_mb(budget)} ({note})"
            )
    if too_big:
        more = f" (and {len(too_big) - 1} more cells)" if len(too_big) > 1 else ""
        fewer = "" if memory_shared is not None else ", or use fewer --workers"
        raise MemoryBudgetError(
            f"{too_big[0]}{more}; lower train.n or model.d, or set run.memory_budget_mb{fewer}"
        )
    steps = sum((c.stop - c.start) * c.config.train.steps for c in cells)
    return SweepPlan(
        cells=list(cells),
        todo=todo,
        chunk_plans=chunks,
        peak_bytes=peaks,
        budget_note="; ".join(sorted(notes)) or "-",
        n_configs=len({c.config.digest() for c in cells}),
        trials=sum(c.stop - c.start for c in cells),
        trial_steps=steps,
        capacity=memory_shared // 2 if shared and memory_shared is not None else None,
        flops=sum(flops),
        todo_trials=sum(cells[i].stop - cells[i].start for i in todo),
        todo_flops=sum(flops[i] for i in todo),
        cell_flops=flops,
    )
