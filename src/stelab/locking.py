"""One writer per folder: an exclusive ``flock`` on ``<folder>/.lock``, held while a command
writes the folder (a sweep store, a reproduce folder). A second process is refused with one line
naming the holder (pid and host, written into the lock file); the lock goes with the process, so
a killed command never leaves a stale lock. Without ``fcntl`` (not POSIX) or on a file system
without ``flock`` (some NFS) the folder is used unlocked.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import IO

from stelab.errors import StelabError

LOCK = ".lock"


def hold_lock(folder: Path, refuse: type[StelabError], message: str) -> IO[str] | None:
    """Lock ``folder`` for this process; returns the open lock file (close it to release), or
    None where locks are not available.

    Raises
    ------
    refuse
        Another process holds the lock: ``message`` with ``{holder}`` replaced by its pid and
        host.
    """
    try:
        import fcntl
    except ImportError:  # not on POSIX: no lock, documented
        return None
    fh = open(folder / LOCK, "a+")  # noqa: SIM115 - held by the caller
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise refuse(message.format(holder=holder)) from None
    except OSError:
        return fh  # a file system without flock (some NFS): run unlocked
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()} on {socket.gethostname()}")
    fh.flush()
    return fh


__all__ = ["LOCK", "hold_lock"]
