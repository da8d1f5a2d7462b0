"""How a sweep runs: on which executor, with how many workers, with which Dask scheduler, and
whether it shows its progress. One record that the sweep's entry points take and their callers
(``stelab sweep``, ``stelab reproduce``) pass along, instead of four loose arguments each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from stelab.sweep.executors import Executor, SerialExecutor, make_executor
from stelab.sweep.grid import Cell, trial_values

__all__ = ["IN_PROCESS_VALUES", "Execution", "InProcess", "execution_of"]


@dataclass(frozen=True)
class Execution:
    """``executor``: ``"local"`` (process pool of ``workers``, default one per core), ``"dask"``
    (``scheduler`` address, or a LocalCluster of ``workers``), ``"serial"``, or an
    :class:`~stelab.sweep.executors.Executor` instance. ``progress``: print the plan, a progress
    bar and a summary."""

    executor: str | Executor = "local"
    workers: int | None = None
    scheduler: str | None = None
    progress: bool = True

    def for_cells(self, cells: Sequence[Cell]) -> Execution:
        """This execution as it will run ``cells``: the local pool with no worker count gets one
        worker when the cells run on a GPU (one process feeds the card with large chunks; many
        would share it); and a sweep of a single cell runs in this process (:class:`InProcess`):
        one cell keeps one worker busy, so a pool would only add its start-up (a spawned worker
        imports stelab again) when the cell is small
        (:data:`IN_PROCESS_VALUES`): a large one keeps the worker, so that running out of memory
        costs a worker and is reported, not this process. Rows are the same on every executor."""
        if self.executor == "local" and self.workers is None and len(cells) == 1 \
                and len(cells[0].trials) * trial_values(cells[0].config) <= IN_PROCESS_VALUES:
            return replace(self, executor=InProcess())
        if self.executor == "local" and self.workers is None and _wants_gpu(cells):
            return replace(self, workers=1)
        return self

    def make_executor(self) -> Executor:
        """The executor this record names (a ConfigError names a bad value)."""
        return make_executor(self.executor, workers=self.workers, scheduler=self.scheduler)


#: the most input values (trials x n x m x d) of a single cell that the local default runs in this
#: process: 2^22 float32 values, 16 MB, far from any memory limit
IN_PROCESS_VALUES = 1 << 22


class InProcess(SerialExecutor):
    """The serial executor, as the local default picks it for a single cell (the plan says so)."""

    def describe(self) -> str:
        return "serial (this process: a single cell needs no worker pool)"


def execution_of(
    execution: Execution | None,
    executor: str | Executor = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
) -> Execution:
    """``execution``, or the record of the loose keyword arguments (the older form of the entry
    points' signatures); giving both is a TypeError (which one would win is not obvious)."""
    loose = Execution(executor, workers, scheduler, progress)
    if execution is None:
        return loose
    if loose != Execution():
        raise TypeError("give either execution= or executor/workers/scheduler/progress, not both")
    return execution


def _wants_gpu(cells: Sequence[Cell]) -> bool:
    from stelab.devices import cuda_available  # torch only where a GPU driver exists

    return any(c.config.run.device != "cpu" for c in cells) and cuda_available()
