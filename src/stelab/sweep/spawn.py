"""A ``spawn`` multiprocessing context whose processes never import the caller's ``__main__``.

Python's ``spawn`` start method re-imports the parent's main module in every child (as
``__mp_main__``), so that functions defined there can be unpickled. For a sweep started from a
plain script without an ``if __name__ == "__main__":`` guard, that re-runs the script's top level
in every worker: the worker starts the sweep again, finds the folder locked and dies, and the
caller sees every cell fail. The sweep's workers need nothing from ``__main__`` (they run
:func:`stelab.sweep.worker.compute_cell`, and user functions such as registered surrogates are
shipped by value), so the processes of this context start with an empty ``__main__`` instead:
the same interpreter, ``sys.path`` and working directory, and no re-run of the caller's code.

``fork`` is not an alternative: forking a process whose torch/OpenMP threads are running can
deadlock.
"""

from __future__ import annotations

import threading
from multiprocessing import context, popen_spawn_posix, spawn
from typing import Any

__all__ = ["NoMainSpawnContext", "MAIN_KEYS"]

#: the keys of spawn's preparation data that make a child import the parent's main module
MAIN_KEYS = ("init_main_from_path", "init_main_from_name")

_PATCH_LOCK = threading.Lock()


class _NoMainPopen(popen_spawn_posix.Popen):
    """spawn's Popen, with the main-module keys removed from this child's preparation data.

    ``spawn.get_preparation_data`` is wrapped only while this process is launched (under a lock)
    and the wrapper changes only the data of this process (matched by name), so another thread
    that starts its own processes at the same moment gets its usual data."""

    def _launch(self, process_obj: Any) -> None:
        original = spawn.get_preparation_data
        name = process_obj._name

        def without_main(wanted: str) -> dict[str, Any]:
            data = original(wanted)
            if wanted == name:
                for key in MAIN_KEYS:
                    data.pop(key, None)
            return data

        with _PATCH_LOCK:
            spawn.get_preparation_data = without_main
            try:
                super()._launch(process_obj)
            finally:
                spawn.get_preparation_data = original


class _NoMainProcess(context.SpawnProcess):
    _start_method = "spawn"

    @staticmethod
    def _Popen(process_obj: Any) -> _NoMainPopen:  # noqa: N802 - multiprocessing's name
        return _NoMainPopen(process_obj)


class NoMainSpawnContext(context.SpawnContext):
    """``multiprocessing.get_context("spawn")``, except that children skip ``__main__``."""

    Process = _NoMainProcess
