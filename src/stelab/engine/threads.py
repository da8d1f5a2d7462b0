"""The CPU thread pool of the engines: independent groups of trials run on the engines' CPU
threads (:func:`cpu_threads`), one BLAS thread each, so that a group's passes over its data stay
on one core's cache. Results never depend on the split (:mod:`stelab.engine.passes`).

The thread count is torch's (``torch.get_num_threads()``, which a user may set) once torch is
loaded; a process that has not loaded torch (the compiled engine needs none) uses the count
given to :func:`set_cpu_threads`, else torch's default: ``OMP_NUM_THREADS`` when set, else the
cores this process may run on."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from functools import cache
from typing import Any

__all__ = ["PARALLEL_BYTES", "Workers", "cpu_threads", "set_cpu_threads", "single_threaded_blas",
           "split_evenly", "threads_assumed"]

#: data per step from which an engine splits a step's trials over several threads (below,
#: handing work to a thread costs more than it saves)
PARALLEL_BYTES = 8 << 20


#: the count given to :func:`set_cpu_threads` (None: torch's default)
_threads: int | None = None
#: the count :func:`threads_assumed` makes :func:`cpu_threads` answer (None: the real one)
_assumed: int | None = None


def _default_threads() -> int:
    """torch's default intra-op thread count without torch: ``OMP_NUM_THREADS`` when it is a
    positive integer, else the CPUs this process may run on."""
    try:
        given = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        given = 0
    if given > 0:
        return given
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def cpu_threads() -> int:
    """The CPU threads the engines run on (module docstring), or the count assumed inside
    :func:`threads_assumed`."""
    if _assumed is not None:
        return _assumed
    if "torch" in sys.modules:
        return sys.modules["torch"].get_num_threads()
    return _threads if _threads is not None else _default_threads()


@contextmanager
def threads_assumed(threads: int | None) -> Iterator[None]:
    """Inside the block, :func:`cpu_threads` answers ``threads`` (None: the real count): a
    sweep plans a cell's memory (an engine's per-thread copies) with the threads of the worker
    that will run it, not the planning process's own. Nothing runs on them."""
    global _assumed
    before, _assumed = _assumed, threads
    try:
        yield
    finally:
        _assumed = before


def set_cpu_threads(threads: int) -> None:
    """Run the engines (and torch, loaded now or later) on ``threads`` CPU threads in this
    process: a sweep's worker gets its share of the cores this way."""
    global _threads
    _threads = threads
    os.environ["OMP_NUM_THREADS"] = str(threads)  # read by torch when it loads later
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _set_torch_threads(threads: int) -> None:
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


@cache
def _blas_controller() -> Any:
    """threadpoolctl's view of the loaded BLAS libraries, found once per process: finding them
    walks every loaded shared library (1.2 ms, paid twice a trial before; a sweep of one-trial
    cells entered the pool ~60 000 times). None without threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return None
    return ThreadpoolController()


def split_evenly(t: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` (or fewer) contiguous ranges covering range(t), of nearly equal size."""
    parts = max(1, min(parts, t))
    edges = [round(i * t / parts) for i in range(parts + 1)]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def single_threaded_blas() -> AbstractContextManager:
    """A context in which numpy's BLAS runs on one thread. Outside the engines' pool too: after
    a call on several threads, OpenBLAS's idle threads keep spinning for ~0.1 s of CPU
    (measured here), which the trials that follow then compete with."""
    controller = _blas_controller()
    return nullcontext() if controller is None else controller.limit(limits=1, user_api="blas")


class Workers(AbstractContextManager):
    """Runs independent work units (groups of trials) on the engines' CPU threads.

    Inside the context, torch (when loaded) and BLAS run one thread each and the units are
    spread over a pool of :func:`cpu_threads` Python threads (torch and numpy release the GIL),
    which keeps the two passes over a unit on one core's cache and does not stall when other
    processes share the cores. On CUDA, or with one thread, units run inline. The previous
    thread settings are restored on exit.
    """

    def __init__(self, device: Any, pool: bool = True) -> None:
        """``device``: a torch.device or a device type (``"cpu"``, ``"cuda"``)."""
        self._device_type = getattr(device, "type", device)
        self._saved_threads = cpu_threads()
        self.count = self._saved_threads if self._device_type == "cpu" and pool else 1
        self._pool: ThreadPoolExecutor | None = None
        self._blas: ExitStack | None = None

    def __enter__(self) -> Workers:
        if self._device_type != "cpu":
            return self
        # numpy's OpenBLAS runs the pre-activation pass: one thread per call, always (its own
        # thread team spins and collapses when the cores are shared)
        self._blas = ExitStack()
        self._blas.enter_context(single_threaded_blas())
        if self.count > 1:
            _set_torch_threads(1)
            self._pool = ThreadPoolExecutor(self.count, thread_name_prefix="stelab")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._blas is not None:
            self._blas.close()
            self._blas = None
        if self.count > 1:
            _set_torch_threads(self._saved_threads)

    def map(self, fn: Any, items: list[Any]) -> list[Any]:
        """[fn(item) for item in items], on the pool when there is one (exceptions propagate)."""
        if self._pool is None or len(items) <= 1:
            return [fn(item) for item in items]
        return list(self._pool.map(fn, items))
