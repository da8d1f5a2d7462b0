"""The on-disk store of a sweep: one Parquet file per finished cell, resumable.

Layout of an output folder ``DIR``::

    DIR/manifest.json        what the folder holds: cells, configs, code version, environment, runs
    DIR/cells/<key>.parquet  the rows of one finished cell (key = <config digest>-t<start>-<stop>)
    DIR/errors/<key>.json    a cell that raised: its config, trials and traceback (retried on rerun)
    DIR/quarantine/          corrupt cell files moved aside (their cells are recomputed)
    DIR/results.parquet      the merged table of every finished cell, in grid order

Every file is written atomically (temporary file in the same folder, fsync, rename, fsync of the
folder), so after a crash at any moment a cell file is either complete or absent. Every file has
a checksum beside it (``<file>.sha256``, :mod:`stelab.integrity`), verified on every read: a
cell whose bytes changed (one flipped bit anywhere) is corrupt even when it still decodes. A cell
file also carries its key, trials and config in the Parquet metadata; a file whose checksum does
not match, whose footer cannot be read, whose key or row count is wrong, or whose rows cannot be
decoded is treated as corrupt: moved to ``quarantine/`` and recomputed. A cell file without a
checksum (a folder written before checksums) is read unchecked. A damaged ``manifest.json`` is
refused with one line naming it.
A folder holds exactly one set of cells: another set is refused, never mixed in. A lock file
(``flock``) keeps two processes from writing the same folder at once.
"""

from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stelab.atomic import atomic_write
from stelab.errors import MachineError, StelabError
from stelab.integrity import IntegrityError, read_checked, sidecar
from stelab.locking import hold_lock
from stelab.provenance import code_label, code_version, environment
from stelab.sweep.grid import Cell

FORMAT = "stelab-sweep/1"
MANIFEST = "manifest.json"
CELLS = "cells"
ERRORS = "errors"
QUARANTINE = "quarantine"
RESULTS = "results.parquet"
META_KEY = b"stelab.cell"


class SweepStoreError(StelabError):
    """The output folder cannot be used (unwritable, in use, or holding another sweep)."""


class CorruptCellError(StelabError):
    """A stored cell file cannot be read back as the rows of its cell."""


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _write_json(path: Path, data: Any) -> Path:
    text = json.dumps(data, indent=2, sort_keys=False, default=str).encode()
    return atomic_write(path, lambda fh: fh.write(text))


def cells_digest(keys: Iterable[str]) -> str:
    """Identity of a set of cells: sha256 of the sorted cell keys (order-free)."""
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]


@dataclass
class ScanResult:
    """What the store already holds for a list of cells."""

    done: set[str]
    corrupt: list[tuple[str, str]]  # (key, reason); moved to quarantine
    failed_before: set[str]  # keys with an error record from an earlier run


class SweepStore:
    """One sweep output folder. Use as a context manager: it holds the folder's lock."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.cells_dir = self.root / CELLS
        self.errors_dir = self.root / ERRORS
        self.quarantine_dir = self.root / QUARANTINE
        self.manifest_path = self.root / MANIFEST
        self.results_path = self.root / RESULTS
        self._lock_fh: IO[str] | None = None
        self.manifest: dict[str, Any] = {}
        self.dry = False

    # -- opening --------------------------------------------------------------------------------
    def __enter__(self) -> SweepStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_writable(self) -> None:
        try:
            if self.root.exists() and not self.root.is_dir():
                raise SweepStoreError(f"--out: {self.root} exists and is not a folder")
            for folder in (self.root, self.cells_dir, self.errors_dir):
                folder.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".probe.", dir=self.cells_dir)
            os.close(fd)
            os.unlink(probe)
        except SweepStoreError:
            raise
        except OSError as err:
            where = err.filename or self.root
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise MachineError(
                    f"disk full: cannot write to {where}; free space and run the same command "
                    "again (cells stored before are kept)"
                ) from None
            raise SweepStoreError(
                f"--out: cannot write to {where}: {err.strerror or err}; "
                "choose a folder you can write to"
            ) from None

    def _lock(self) -> None:
        self._lock_fh = hold_lock(
            self.root, SweepStoreError,
            f"--out: {self.root} is in use by another stelab sweep ({{holder}}); "
            "wait for it to finish or choose another folder")

    def open(
        self, cells: Sequence[Cell], sweep_config: dict[str, Any] | None = None, dry: bool = False
    ) -> list[str]:
        """Create or reopen the folder for ``cells``; returns warnings to show the user.

        Raises :class:`SweepStoreError` when the folder cannot be written, is locked, or holds
        another set of cells. ``dry``: only check and read, never create or change a file.
        """
        self.dry = dry
        if not dry:
            self._check_writable()
            self._lock()
        try:
            return self._open(cells, sweep_config)
        except BaseException:
            self.close()
            raise

    def _open(self, cells: Sequence[Cell], sweep_config: dict[str, Any] | None) -> list[str]:
        warnings: list[str] = []
        digest = cells_digest(c.key for c in cells)
        code = code_version()
        if self.manifest_path.exists():
            try:
                old = json.loads(read_checked(self.manifest_path))
            except IntegrityError as err:
                raise SweepStoreError(
                    f"--out: {err}; choose another folder, or move {MANIFEST} away to let "
                    "the cells be checked one by one"
                ) from None
            except (OSError, ValueError) as err:
                raise SweepStoreError(
                    f"--out: {self.manifest_path} is unreadable ({err}); "
                    "choose another folder or delete this one"
                ) from None
            if not isinstance(old, dict):
                raise SweepStoreError(
                    f"--out: {self.manifest_path} is not a sweep manifest (a JSON "
                    f"{type(old).__name__}, not an object); choose another folder or delete "
                    "this one"
                )
            if old.get("format") != FORMAT:
                raise SweepStoreError(
                    f"--out: {self.root} is not a {FORMAT} folder (format {old.get('format')!r})"
                )
            if old.get("cells_digest") != digest:
                listed = old.get("cell_keys")
                old_keys = {k for k in listed if isinstance(k, str)} if isinstance(
                    listed, list) else set()
                shared = len(old_keys & {c.key for c in cells})
                raise SweepStoreError(
                    f"--out: {self.root} holds a different sweep ({len(old_keys)} cells, "
                    f"{shared} shared with this config's {len(cells)}); refusing to mix results. "
                    "Use a new --out folder, or delete this one to start over"
                )
            old_code = old.get("code") if isinstance(old.get("code"), dict) else {}
            if not isinstance(old.get("runs", []), list):
                old["runs"] = []  # a damaged run log is replaced; the cells are what count
            if code_label(old_code) != code_label(code):
                warnings.append(
                    f"cells in {self.root} were started with stelab {code_label(old_code)}; "
                    f"this is {code_label(code)}. Finished cells are kept; delete "
                    f"{self.cells_dir} to recompute them with this version"
                )
            self.manifest = old
        else:
            if self.results_path.exists():
                raise SweepStoreError(
                    f"--out: {self.root} holds {RESULTS} but no {MANIFEST} (the folder of a "
                    "'stelab run'?); refusing to replace it. Use a new --out folder"
                )
            if any(self.cells_dir.glob("*.parquet")):
                raise SweepStoreError(
                    f"--out: {self.cells_dir} holds cell files but {MANIFEST} is missing; "
                    "refusing to mix results. Use a new --out folder"
                )
            self.manifest = {
                "format": FORMAT,
                "created": _now(),
                "cells_digest": digest,
                "n_cells": len(cells),
                "sweep": sweep_config,
                "code": code,
                "environment": environment(),
                "configs": {c.config.digest(): c.config.model_dump(mode="json") for c in cells},
                "cell_keys": [c.key for c in cells],
                "runs": [],
            }
        self.manifest["code_now"] = code
        if self.dry:
            return warnings
        for tmp in self.cells_dir.glob(".*.tmp"):  # leftovers of a crash; we hold the lock
            tmp.unlink(missing_ok=True)
        self.write_manifest()
        return warnings

    def close(self) -> None:
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None

    def write_manifest(self) -> None:
        if self.dry:
            return
        _write_json(self.manifest_path, self.manifest)

    def record_run(self, run: dict[str, Any]) -> None:
        """Append (or update, same ``id``) one invocation's record in the manifest."""
        runs = self.manifest.setdefault("runs", [])
        runs[:] = [r for r in runs if r.get("id") != run.get("id")] + [run]
        self.write_manifest()

    # -- cells ----------------------------------------------------------------------------------
    def cell_path(self, key: str) -> Path:
        return self.cells_dir / f"{key}.parquet"

    def error_path(self, key: str) -> Path:
        return self.errors_dir / f"{key}.json"

    def _check_footer(self, cell: Cell) -> bytes:
        """The verified bytes of the cell's file (CorruptCellError when they cannot be trusted)."""
        path = self.cell_path(cell.key)
        try:
            data = read_checked(path)
        except IntegrityError as err:
            raise CorruptCellError(str(err).removeprefix(f"{path}: ")) from None
        except OSError as err:
            raise CorruptCellError(f"unreadable ({err.strerror or err})") from None
        try:
            meta = pq.read_metadata(pa.BufferReader(data))
        except (OSError, pa.ArrowException) as err:
            raise CorruptCellError(f"unreadable Parquet footer ({err})") from None
        try:
            info = json.loads((meta.metadata or {}).get(META_KEY, b"{}") or b"{}")
        except ValueError:
            info = None
        if not isinstance(info, dict):
            raise CorruptCellError("the cell's identity in the Parquet metadata is not readable")
        if info.get("key") != cell.key:
            raise CorruptCellError(f"file holds cell {info.get('key')!r}, not {cell.key!r}")
        if meta.num_rows != cell.stop - cell.start:
            raise CorruptCellError(f"{meta.num_rows} rows, expected {cell.stop - cell.start}")
        return data

    def quarantine(self, key: str, reason: str) -> Path:
        """Move a corrupt cell file aside (kept for inspection) and note why."""
        if self.dry:
            return self.cell_path(key)
        self.quarantine_dir.mkdir(exist_ok=True)
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        target = self.quarantine_dir / f"{key}.{stamp}.parquet"
        os.replace(self.cell_path(key), target)
        if sidecar(self.cell_path(key)).exists():
            os.replace(sidecar(self.cell_path(key)), sidecar(target))
        target.with_suffix(".reason.txt").write_text(reason + "\n")
        return target

    def scan(self, cells: Sequence[Cell]) -> ScanResult:
        """Which cells are finished (valid file), corrupt (moved to quarantine) or failed before."""
        done: set[str] = set()
        corrupt: list[tuple[str, str]] = []
        if not self.cells_dir.is_dir():
            return ScanResult(set(), [], set())
        present = {p.stem for p in self.cells_dir.glob("*.parquet")}
        for cell in cells:
            if cell.key not in present:
                continue
            try:
                self._check_footer(cell)
            except CorruptCellError as err:
                self.quarantine(cell.key, str(err))
                corrupt.append((cell.key, str(err)))
                continue
            done.add(cell.key)
        failed = {p.stem for p in self.errors_dir.glob("*.json")} - done
        return ScanResult(done, corrupt, failed)

    def write_cell(
        self, cell: Cell, rows: pd.DataFrame, extra: dict[str, Any] | None = None
    ) -> Path:
        """Store a finished cell's rows atomically, with its identity in the Parquet metadata."""
        table = pa.Table.from_pandas(rows, preserve_index=False)
        info = {
            "key": cell.key,
            "start": cell.start,
            "stop": cell.stop,
            "config": cell.config.model_dump(mode="json"),
            "code": code_label(self.manifest.get("code_now", {})),
            "written": _now(),
            **(extra or {}),
        }
        stamp = json.dumps(info, default=str).encode()
        metadata = {**(table.schema.metadata or {}), META_KEY: stamp}
        table = table.replace_schema_metadata(metadata)
        path = atomic_write(self.cell_path(cell.key), lambda fh: pq.write_table(table, fh))
        self.error_path(cell.key).unlink(missing_ok=True)
        sidecar(self.error_path(cell.key)).unlink(missing_ok=True)
        return path

    def read_cell(self, cell: Cell) -> pd.DataFrame:
        """The stored rows of ``cell``; :class:`CorruptCellError` when they cannot be trusted."""
        data = self._check_footer(cell)
        try:
            rows = pd.read_parquet(pa.BufferReader(data))
        except (OSError, pa.ArrowException, ValueError) as err:
            raise CorruptCellError(f"rows cannot be decoded ({err})") from None
        if "trial" in rows and list(rows["trial"]) != list(cell.trials):
            raise CorruptCellError("trial ids do not match the cell's block")
        return rows

    def write_error(self, cell: Cell, failure: dict[str, Any]) -> Path:
        record = {
            "key": cell.key,
            "cell": cell.describe(),
            "trials": [cell.start, cell.stop],
            "config": cell.config.model_dump(mode="json"),
            "time": _now(),
            **failure,
        }
        return _write_json(self.error_path(cell.key), record)

    def write_results(self, rows: pd.DataFrame) -> Path:
        table = pa.Table.from_pandas(rows, preserve_index=False)
        return atomic_write(self.results_path, lambda fh: pq.write_table(table, fh))


__all__ = [
    "CorruptCellError",
    "ScanResult",
    "SweepStore",
    "SweepStoreError",
    "atomic_write",
    "cells_digest",
    "code_version",
    "environment",
]
