"""How a sweep runs: on which executor, with how many workers, with which Dask scheduler, and
whether it shows its progress. One record that the sweep's entry points take and their callers
(``stelab sweep``, ``stelab reproduce``) pass along, instead of four loose arguments each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from stelab.errors import ConfigError
from stelab.sweep.dask_executor import DaskExecutor
from stelab.sweep.executors import Executor, LocalExecutor, SerialExecutor, available_cores
from stelab.sweep.grid import Cell

__all__ = ["EXECUTORS", "IN_PROCESS_BYTES", "Execution", "InProcess", "execution_of",
           "make_executor", "runs_as_fast_in_process"]

#: the executors by name
EXECUTORS = ("local", "dask", "serial")


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
        """This execution as it will run ``cells``. Only the local pool with no worker count
        given changes: one worker when the cells run on a GPU (one process feeds the card with
        large chunks; many would share it); and this process (:class:`InProcess`) when the pool
        cannot run the cells faster (:func:`runs_as_fast_in_process`). Rows are the same on
        every executor."""
        if self.executor != "local" or self.workers is not None:
            return self
        if _wants_gpu(cells):
            return replace(self, workers=1)
        if runs_as_fast_in_process(cells):
            return replace(self, executor=InProcess())
        return self

    def make_executor(self) -> Executor:
        """The executor this record names (a ConfigError names a bad value)."""
        return make_executor(self.executor, workers=self.workers, scheduler=self.scheduler)


#: the most input data (trials x n x m x d values in run.dtype) of a cell that the local default
#: runs in this process: 1 GiB, far from the memory of the machines it runs on
IN_PROCESS_BYTES = 1 << 30


def runs_as_fast_in_process(cells: Sequence[Cell]) -> bool:
    """Whether the local pool cannot beat running ``cells`` in this process, one after another:
    a single cell keeps one worker busy, and a cell of at least as many trials as cores keeps
    them all busy (the engines spread a cell's trials over the CPU threads), so a pool would
    only add its start-up (each spawned worker imports stelab again, ~1 s). A cell of more than
    :data:`IN_PROCESS_BYTES` of inputs keeps the pool, so that running out of memory costs a
    worker (and is reported), not this process."""
    from stelab.engine.sizes import data_bytes  # the plan loads the engine right after this

    if any(len(c.trials) * data_bytes(c.config) > IN_PROCESS_BYTES for c in cells):
        return False
    return len(cells) == 1 or all(len(c.trials) >= available_cores() for c in cells)


class InProcess(SerialExecutor):
    """The serial executor, as the local default picks it when a pool would not be faster
    (:func:`runs_as_fast_in_process`; the plan's executor line says so)."""

    def describe(self) -> str:
        return "serial (this process: a worker pool would not run these cells faster)"


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


def make_executor(
    executor: str | Executor = "local",
    workers: int | None = None,
    scheduler: str | None = None,
) -> Executor:
    """An executor by name (``local``, ``dask`` or ``serial``), or the instance given."""
    if isinstance(executor, Executor):
        return executor
    if executor not in EXECUTORS:
        allowed = ", ".join(EXECUTORS)
        raise ConfigError(f"--executor: unknown value {executor!r}; allowed: {allowed}")
    if scheduler and executor != "dask":
        raise ConfigError("--scheduler: only used with --executor dask")
    if executor == "serial":
        return SerialExecutor()
    if executor == "local":
        return LocalExecutor(workers)
    return DaskExecutor(scheduler=scheduler, workers=workers)
