"""Executors: where sweep cells run, behind one small interface.

* ``serial``: in this process, one cell after another (debugging, tiny sweeps, no start-up).
* ``local``: a pool of worker processes on this machine (default: one per core).
* ``dask``: a ``dask.distributed`` cluster: an existing one (``scheduler`` = its address, e.g.
  ``tcp://10.0.0.5:8786``, or a Slurm cluster from dask-jobqueue) or a LocalCluster started here
  (:mod:`stelab.sweep.dask_executor`).

An executor only runs a picklable function over items and yields ``(index, result)`` as each
finishes, in any order; a result is what the function returned or the exception that stopped it
(a worker that died, a lost connection). The caller writes results as they come, so an
interrupted sweep keeps every finished cell. Results never depend on the executor: every cell is
a pure function of its config and trial ids.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from stelab.errors import ConfigError, StelabError
from stelab.sweep.spawn import NoMainSpawnContext


class ExecutorError(StelabError):
    """An executor cannot start (e.g. no Dask scheduler at the given address)."""


class WorkerDied(StelabError):
    """The process running a cell died (killed by a signal, or out of memory)."""


def available_cores() -> int:
    """Cores this process may use (its CPU affinity where the platform tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def available_memory() -> int | None:
    """Bytes of physical memory available now, or None where unknown."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


class Executor(ABC):
    """Runs ``fn`` over items; see the module docstring."""

    name: str = "executor"

    def __enter__(self) -> Executor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:  # noqa: B027 - optional hook
        """Acquire the workers (processes, cluster connection)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the workers after a normal end."""

    def abort(self) -> None:
        """Stop now: drop queued work and stop running work (Ctrl-C)."""
        self.close()

    @property
    @abstractmethod
    def slots(self) -> int:
        """How many cells run at the same time."""

    def memory_per_slot(self) -> int | None:
        """Bytes one running cell may use, or None where unknown."""
        return None

    def memory_shared(self) -> int | None:
        """Bytes all of this executor's running cells together may use, where it keeps them
        under a limit given to :meth:`map_unordered` (``memory``, ``capacity``); None where it
        does not (the default: each cell then has its slot's memory, no more)."""
        return None

    def threads_per_slot(self) -> int | None:
        """torch threads a cell should use, or None to leave the worker's setting alone."""
        return None

    def describe(self) -> str:
        return f"{self.name} ({self.slots} workers)"

    @abstractmethod
    def map_unordered(
        self, fn: Callable[[Any], Any], items: Sequence[Any]
    ) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, fn(items[index]) or the exception)`` as each item finishes."""


class SerialExecutor(Executor):
    """Every cell in this process, in order."""

    name = "serial"

    @property
    def slots(self) -> int:
        return 1

    def memory_per_slot(self) -> int | None:
        return available_memory()

    def describe(self) -> str:
        return "serial (this process)"

    def map_unordered(self, fn, items):  # type: ignore[no-untyped-def]
        for i, item in enumerate(items):
            try:
                result = fn(item)
            except Exception as err:  # noqa: BLE001 - reported per cell by the caller
                result = err
            yield i, result


def _worker_init(parent_pid: int, threads: int | None) -> None:
    """Set up a local pool worker: Ctrl-C is the parent's business (it stops the pool), torch
    and numpy's BLAS get ``threads`` threads so that workers do not oversubscribe the cores (a
    BLAS with a thread per core in every worker also leaves idle threads spinning after each
    call, ~0.1 s of CPU taken from the other workers), and the worker exits when its parent
    dies (kill -9 of the sweep must not leave orphans computing)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if threads is not None:
        from threadpoolctl import threadpool_limits

        from stelab.engine.threads import set_cpu_threads

        set_cpu_threads(threads)  # torch's too, whenever it loads
        threadpool_limits(limits=threads, user_api="blas")  # for the life of the worker

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.5)

    threading.Thread(target=watch, name="stelab-parent-watch", daemon=True).start()


class LocalExecutor(Executor):
    """A process pool on this machine.

    At most ``2 * workers`` cells are queued at once, so that when a worker process dies (OOM
    killer, ``kill -9``) the cells that were in flight are known: they are rerun one at a time on
    a fresh pool, and only a cell that kills its worker while running alone is reported as failed
    (:class:`WorkerDied`); the other cells carry on.

    Given each cell's planned peak (``memory``) and a ``capacity``, a cell is queued only while
    the peaks of the cells in flight and its own stay within the capacity, or when nothing is in
    flight: a cell too large for one worker's share of the memory runs beside cells that leave
    it room (or alone), instead of the sweep being refused or needing fewer workers throughout.
    """

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers: {workers} is not allowed; allowed: >= 1")
        self.workers = workers or available_cores()
        self._pool: ProcessPoolExecutor | None = None
        self.restarts = 0

    @property
    def slots(self) -> int:
        return self.workers

    def memory_per_slot(self) -> int | None:
        free = available_memory()
        return None if free is None else free // self.workers

    def memory_shared(self) -> int | None:
        return available_memory()

    def threads_per_slot(self) -> int | None:
        return max(1, available_cores() // self.workers)

    def describe(self) -> str:
        return f"local process pool ({self.workers} workers)"

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: forking a process that already runs torch/OpenMP threads can deadlock;
        # and workers that skip the caller's __main__, so a plain script needs no main guard
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=NoMainSpawnContext(),
            initializer=_worker_init,
            initargs=(os.getpid(), self.threads_per_slot()),
        )

    def start(self) -> None:
        if self._pool is None:
            self._pool = self._new_pool()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def abort(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # ProcessPoolExecutor cannot stop running calls; end its processes (ours, by pid)
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            if proc.is_alive():
                proc.terminate()
        for proc in processes:
            proc.join(timeout=5)

    def _restart(self) -> ProcessPoolExecutor:
        self.abort()
        self.restarts += 1
        self._pool = self._new_pool()
        return self._pool

    def map_unordered(self, fn, items, memory=None, capacity=None):  # type: ignore[no-untyped-def]
        self.start()
        queue: deque[int] = deque(range(len(items)))
        suspects: deque[int] = deque()  # in flight when a worker died: rerun alone
        in_flight: dict[Future, int] = {}
        isolated = False  # True while a suspect runs alone

        def next_that_fits() -> int | None:
            """The first queued cell whose peak fits beside the cells in flight."""
            if memory is None or capacity is None or not in_flight:
                return queue[0]
            room = capacity - sum(memory[i] for i in in_flight.values())
            return next((i for i in queue if memory[i] <= room), None)

        while queue or suspects or in_flight:
            assert self._pool is not None
            broken = False
            try:
                if suspects:
                    if not in_flight:
                        in_flight[self._pool.submit(fn, items[suspects[0]])] = suspects[0]
                        suspects.popleft()
                        isolated = True
                else:
                    isolated = False
                    while queue and len(in_flight) < 2 * self.workers:
                        i = next_that_fits()
                        if i is None:
                            break
                        in_flight[self._pool.submit(fn, items[i])] = i
                        queue.remove(i)
            except BrokenProcessPool:  # a worker died since the last wait; this item never ran
                broken = True
            done = wait(list(in_flight), return_when=FIRST_COMPLETED)[0] if in_flight else set()
            lost: list[int] = []
            for fut in done:
                i = in_flight.pop(fut)
                err = fut.exception()
                if isinstance(err, BrokenProcessPool):
                    lost.append(i)
                else:
                    yield i, (err if err is not None else fut.result())
            if broken and not lost and not in_flight:
                self._restart()
            elif lost or broken:
                lost.extend(in_flight.values())  # every other call of the pool is lost too
                in_flight.clear()
                self._restart()
                if isolated:
                    for i in lost:
                        yield i, WorkerDied(
                            "the worker process died while running this cell alone "
                            "(killed by a signal, or out of memory)"
                        )
                else:
                    suspects.extend(lost)


__all__ = [
    "Executor",
    "ExecutorError",
    "LocalExecutor",
    "SerialExecutor",
    "WorkerDied",
    "available_cores",
    "available_memory",
]
