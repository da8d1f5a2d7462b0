"""Crash-safe file writes: a reader sees the old file or the new one, never a torn one; each
file is stored with its checksum (:mod:`stelab.integrity`)."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from stelab.integrity import is_sidecar, write_with_checksum


def _fsync_dir(path: Path) -> None:
    # the rename itself must reach the disk too; not every platform can open a folder
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[IO[bytes]], None], checksum: bool = True) -> Path:
    """Write ``path`` through ``write(fh)`` into a temporary file, fsync it, rename it over;
    with ``checksum``, also its sidecar ``path.sha256``
    (:func:`stelab.integrity.write_with_checksum`; the bytes are gathered in memory first)."""
    if not checksum:
        return _replace(path, write)
    buffer = io.BytesIO()
    write(buffer)
    return write_with_checksum(path, buffer.getvalue(), _store)


def _store(path: Path, data: bytes) -> None:
    # a sidecar is renamed into place without its own fsyncs: the fsync of the folder after
    # the file's rename commits it too, and a sidecar lost to a power cut reads as damaged
    # (the file is then recomputed or refused, never served unchecked)
    _replace(path, lambda fh: fh.write(data), sync=not is_sidecar(path))


def _replace(path: Path, write: Callable[[IO[bytes]], None], sync: bool = True) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if sync:
        _fsync_dir(path.parent)
    return path
