"""Result tables: atomic Parquet writes and the run summary (success rates with Wilson CIs,
means with bootstrap CIs, inside each quantity's range)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from rich.table import Table

from stelab.analysis.tables import MIN_SAMPLE, mean_ci, success_table
from stelab.atomic import atomic_write
from stelab.errors import MachineError, OutputError
from stelab.integrity import IntegrityError, read_checked

if TYPE_CHECKING:
    from stelab.config import Config

RESULTS = "results.parquet"
#: Parquet metadata key of a ``stelab run`` table: the config that produced it
RUN_META_KEY = b"stelab.run"
#: files that mark a folder written by ``stelab sweep`` or ``stelab reproduce``
FOLDER_MARKERS = ("manifest.json", "cells", "profile.toml", "store")


def write_table(
    rows: pd.DataFrame, path: str | Path, metadata: dict[bytes, bytes] | None = None
) -> Path:
    """Write ``rows`` to ``path`` as Parquet atomically (temporary file, fsync, rename), with
    ``metadata`` added to the schema's key-value metadata."""
    path = Path(path)
    table = pa.Table.from_pandas(rows, preserve_index=False)
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write(path, lambda fh: pq.write_table(table, fh))
    except PermissionError as err:
        raise OutputError(f"--out: cannot write to {path.parent}: {err.strerror}") from None
    except (FileExistsError, NotADirectoryError):
        raise OutputError(
            f"--out: cannot create {path.parent}: a part of the path is a file, not a folder"
        ) from None
    except OSError as err:
        from stelab.exits import os_error_line

        status, line = os_error_line(err, path)
        raise (MachineError if status == 1 else OutputError)(line) from None


def prepare_output_folder(out: Path) -> Path:
    """Create ``out`` (a folder) and check that it can be written; OutputError when not."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out: {out} exists and is not a folder; give a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe.", dir=out)
        os.close(fd)
        os.unlink(probe)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(
            f"--out: cannot create {out}: a part of the path is a file, not a folder"
        ) from None
    except PermissionError as err:
        raise OutputError(
            f"--out: cannot write to {err.filename or out}: {err.strerror}; "
            "choose a folder you can write to"
        ) from None
    return out


def stored_run_config(path: Path) -> str | None:
    """The config (canonical JSON) a ``stelab run`` table was written with; None when the file
    is not such a table (another writer, unreadable, or its checksum does not match)."""
    try:
        meta = pq.read_metadata(pa.BufferReader(read_checked(path)))
    except (OSError, pa.ArrowException, IntegrityError):
        return None
    stamp = (meta.metadata or {}).get(RUN_META_KEY)
    try:
        return json.loads(stamp)["config"] if stamp else None
    except (ValueError, KeyError, TypeError):
        return None


def check_run_output(out: Path, cfg: Config, overwrite: bool) -> Literal["new", "same"]:
    """May ``stelab run`` write ``out/results.parquet`` for ``cfg``?

    ``"same"``: the folder already holds this config's complete results (nothing to do);
    ``"new"``: write. Refuses (OutputError) a folder of a sweep or reproduce run (always: their
    merged table is theirs), and existing results of another config unless ``overwrite``.
    """
    out = prepare_output_folder(out)
    marker = next((m for m in FOLDER_MARKERS if (out / m).exists()), None)
    if marker is not None:
        raise OutputError(
            f"--out: {out} is the folder of a sweep or reproduce run (it holds {marker}); "
            "refusing to write results.parquet into it, even with --overwrite; "
            "choose another --out"
        )
    path = out / RESULTS
    if not path.exists():
        return "new"
    stored = stored_run_config(path)
    if stored == cfg.canonical_json():
        try:  # the rows themselves must decode, not only the footer
            rows = pq.read_table(pa.BufferReader(read_checked(path))).num_rows
        except (OSError, pa.ArrowException, IntegrityError):
            rows = -1
        if rows == cfg.run.trials:
            return "same"
    if overwrite:
        return "new"
    if stored == cfg.canonical_json():
        what = "this config's results, but incomplete or unreadable"
    elif stored is not None:
        what = "results of another config"
    elif _damaged(path):
        what = "a damaged table (its bytes differ from the checksum written with it)"
    else:
        what = "a table stelab run did not write (or an unreadable one)"
    raise OutputError(
        f"--out: {path} already holds {what}; refusing to replace it. "
        "Pass --overwrite to replace it, or choose another --out"
    )


def _damaged(path: Path) -> bool:
    try:
        read_checked(path)
    except IntegrityError:
        return True
    except OSError:
        return False
    return False


def write_run_results(rows: pd.DataFrame, out: Path, cfg: Config) -> Path:
    """``out/results.parquet`` of ``stelab run``, stamped with ``cfg`` (so a rerun recognizes
    it: the same config is not recomputed, another one is not written over it)."""
    stamp = json.dumps({"config": cfg.canonical_json()}).encode()
    return write_table(rows, Path(out) / RESULTS, {RUN_META_KEY: stamp})


def read_run_results(out: Path) -> pd.DataFrame:
    """The rows of ``out/results.parquet``, verified against its checksum
    (:class:`~stelab.integrity.IntegrityError`, one line naming the file, on a mismatch)."""
    return pd.read_parquet(pa.BufferReader(read_checked(Path(out) / RESULTS)))


def summarize(rows: pd.DataFrame, title: str = "summary") -> Table:
    """A rich table of success rates (95% Wilson CI) and mean trajectory statistics (95%
    bootstrap CI, inside the statistic's range; "too few trials" below ``MIN_SAMPLE``)."""
    table = Table(title=title)
    for name in ("metric", "rate", "95% CI", "successes / trials"):
        table.add_column(name)
    for rec in success_table(rows).itertuples():
        table.add_row(rec.metric, f"{rec.rate:.3f}", f"[{rec.ci_low:.3f}, {rec.ci_high:.3f}]",
                      f"{rec.successes} / {rec.trials}")
    for column in ("occupation", "final_hamming", "n_returns", "final_loss"):
        if column in rows and len(rows):
            mean, low, high = mean_ci(rows[column].to_numpy())
            ci = (f"[{low:.4g}, {high:.4g}]" if math.isfinite(low) and math.isfinite(high)
                  else f"too few trials for an interval (< {MIN_SAMPLE})")
            table.add_row(f"mean {column}", f"{mean:.4g}", ci, f"{len(rows)} trials")
    return table
