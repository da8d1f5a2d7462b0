"""How a ``stelab`` command ends when something goes wrong: one line and an exit status.

Every command of :mod:`stelab.cli` runs under :func:`guarded`, which turns

* a :class:`~stelab.errors.StelabError` into its own line and ``exit_code`` (2, or 1 for
  :class:`~stelab.errors.MachineError`);
* Ctrl-C and SIGTERM into "interrupted: ..." and exit 2 (what is stored stays stored);
* an ``OSError`` into a line naming the path: disk full and other I/O failures of the machine
  exit 1, permissions and paths (missing, not a folder, a folder) exit 2;
* ``MemoryError`` (and torch's out-of-memory error) into "out of memory" and exit 1;
* anything else (a bug) into one line naming a log file that holds the traceback, and exit 1.

Nothing here deletes or rewrites a file: every store writes atomically, so what was stored
before the failure is intact (docs/reliability.md).
"""

from __future__ import annotations

import datetime as _dt
import errno
import functools
import os
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from stelab.errors import StelabError

F = TypeVar("F", bound=Callable[..., Any])

#: exit status of the failures the user can fix, and of those of the machine (or of stelab)
USER, MACHINE = 2, 1

DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
PERMISSION = {errno.EACCES, errno.EPERM, errno.EROFS}
PATHS = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG,
         errno.ELOOP, errno.ENOTEMPTY}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _is_out_of_memory(err: BaseException) -> bool:
    if isinstance(err, MemoryError):
        return True
    if isinstance(err, RuntimeError) and "can't allocate memory" in str(err):
        return True  # torch's CPU allocator (DefaultCPUAllocator) refusing a request
    torch = sys.modules.get("torch")  # not loaded: the error cannot be torch's
    return torch is not None and isinstance(err, torch.OutOfMemoryError)


def os_error_line(err: OSError, where: str | Path | None = None) -> tuple[int, str]:
    """(exit status, one line) for an ``OSError``; ``where`` names the file or folder when the
    error does not (a failed write carries no file name)."""
    where = err.filename if err.filename is not None else (where or "a file")
    reason = err.strerror or str(err)
    if err.errno in DISK_FULL:
        return MACHINE, (f"disk full: cannot write {where} ({reason}); files stored before are "
                         "unchanged; free space and run the same command again")
    if err.errno in PERMISSION:
        return USER, f"permission denied: {where} ({reason}); choose a path you can use"
    if err.errno in PATHS:
        return USER, f"path: {where}: {reason}"
    return MACHINE, f"I/O error on {where}: {reason}; files stored before are unchanged"


def crash_log_folder(candidates: list[Path | None]) -> Path:
    """The first candidate that is a folder we can write to, else the temporary folder."""
    for folder in candidates:
        if folder is not None and folder.is_dir() and os.access(folder, os.W_OK | os.X_OK):
            return folder
    return Path(tempfile.gettempdir())


def write_crash_log(err: BaseException, folders: list[Path | None]) -> Path | None:
    """Write ``err``'s traceback to ``stelab-crash-<time>-<pid>.log``; its path, or None."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
    text = "".join(traceback.format_exception(err))
    for folder in (crash_log_folder(folders), Path(tempfile.gettempdir())):
        path = folder / f"stelab-crash-{stamp}-{os.getpid()}.log"
        try:
            path.write_text(text)
        except OSError:
            continue
        return path
    return None


def describe_failure(err: BaseException, log_folders: list[Path | None]) -> tuple[int, str]:
    """(exit status, one line) for any exception that stopped a command."""
    if isinstance(err, StelabError):
        return err.exit_code, _one_line(str(err))
    if isinstance(err, KeyboardInterrupt):
        message = getattr(err, "message", None) or (
            "interrupted: results stored before are kept; run the same command again")
        return USER, _one_line(message)
    if isinstance(err, OSError):
        code, line = os_error_line(err)
        return code, _one_line(line)
    if _is_out_of_memory(err):
        return MACHINE, ("out of memory: the machine ran out of memory; results stored before "
                         "are kept; lower run.trials or run.memory_budget_mb, or use a bigger "
                         "machine")
    log = write_crash_log(err, log_folders)
    where = f"the traceback is in {log}" if log else "no log file could be written"
    first = _one_line(str(err).split("\n", 1)[0])[:200]
    return MACHINE, (f"unexpected error {type(err).__name__}: {first} (a bug in stelab; "
                     f"{where}; please report it)")


def _on_sigterm(signum: int, frame: object) -> None:  # Slurm's time limit sends SIGTERM
    raise KeyboardInterrupt


def guarded(say: Callable[[str, int], None], log_option: str = "out") -> Callable[[F], F]:
    """Decorate a command: SIGTERM acts as Ctrl-C, and every failure becomes ``say(line,
    status)`` then ``typer.Exit(status)``. The crash log goes to the command's ``log_option``
    folder (or its parent) when it can be written, else to the temporary folder."""
    import typer

    def wrap(command: F) -> F:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            main_thread = threading.current_thread() is threading.main_thread()
            previous = signal.signal(signal.SIGTERM, _on_sigterm) if main_thread else None
            if main_thread:  # Ctrl-C always stops a command cleanly, even when the process
                # inherited SIGINT ignored or blocked (a background job of a non-interactive
                # shell, or a parent that blocked it around the fork)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
            try:
                return command(*args, **kwargs)
            except (typer.Exit, typer.Abort):
                raise
            except BaseException as err:  # noqa: BLE001 - every failure becomes one line
                if isinstance(err, SystemExit | GeneratorExit):
                    raise
                out = kwargs.get(log_option)
                folders = [Path(out), Path(out).parent] if out is not None else []
                status, line = describe_failure(err, folders)
                say(line, status)
                raise typer.Exit(status) from None
            finally:
                if main_thread:
                    signal.signal(signal.SIGTERM, previous)

        return run  # type: ignore[return-value]

    return wrap
