"""The reproduce folder on disk: where its tables are, atomic text files, and reading the stored
per-trial tables back (the only input of derived tables, figures, claims and report).

    DIR/profile.toml              the exact profile that ran
    DIR/manifest.json             code version, environment, timings per table
    DIR/store/<table>/            the sweep store of each engine-cell table (resumable)
    DIR/tables/<table>.parquet    the per-trial rows of each table of the registry
    DIR/tables/summary_*.parquet  derived tables (thresholds, exponents, success tables)
    DIR/figures/*.png             figures
    DIR/claims.json, DIR/report.md

Every file has a checksum beside it (``<file>.sha256``, :mod:`stelab.integrity`). A per-trial
table whose bytes changed is rebuilt from its store's merged rows
(``store/<table>/results.parquet``, itself checked) when they are intact, and refused with one
line naming it otherwise (rerunning ``stelab reproduce`` with the same ``--out`` rebuilds it
from the stored cells). Derived tables, figures, claims.json and report.md are always
rewritten from the per-trial tables.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from stelab.atomic import atomic_write
from stelab.errors import StelabError
from stelab.experiments import experiments
from stelab.integrity import IntegrityError, read_checked

TABLES = "tables"
SUMMARY = "summary_"


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a reader sees the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: fh.write(text.encode()))


def check_reproduce_folder(out: Path) -> None:
    """Refuse (StelabError) a folder that ``stelab reproduce`` did not write: ``plot`` would
    replace its report.md and claims.json with empty ones."""
    out = Path(out)
    if not out.is_dir():
        raise StelabError(f"DIR: {out} is not a folder; give a folder written by "
                          "'stelab reproduce'")
    if not (out / "profile.toml").is_file() or not (out / TABLES).is_dir():
        raise StelabError(
            f"DIR: {out} is not a folder written by 'stelab reproduce' (it lacks profile.toml "
            f"or {TABLES}/); plot redraws reproduce folders only"
        )


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa

    return pd.read_parquet(pa.BufferReader(read_checked(path)))


def _rebuilt(path: Path, damage: IntegrityError, log: Callable[[str], None]) -> pd.DataFrame:
    """The rows of a damaged per-trial table, from its store's merged rows (checked), written
    back over it; StelabError naming the file when they are not available either."""
    from stelab.results import write_table

    merged = path.parent.parent / "store" / path.stem / "results.parquet"
    try:
        frame = _read_parquet(merged)
    except (OSError, IntegrityError):
        raise StelabError(
            f"{damage}; no intact copy of its rows ({merged}); rerun 'stelab reproduce' with "
            "the same --out to rebuild it from the stored cells"
        ) from None
    write_table(frame, path)
    log(f"{path}: checksum mismatch; rebuilt from {merged}")
    return frame


def load_tables(out: Path, log: Callable[[str], None] = print) -> dict[str, pd.DataFrame]:
    """The stored per-trial tables of a reproduce folder, each verified against its checksum
    (a damaged one is rebuilt from its store, see the module doc; StelabError naming the file
    when one cannot be read or rebuilt, or a table of the registry lacks the columns or rows a
    reproduce run writes)."""
    import pyarrow as pa

    folder = Path(out) / TABLES
    if not folder.is_dir():
        raise StelabError(f"DIR: {out} has no {TABLES}/ folder; run 'stelab reproduce' first")
    known = {t.name: t for exp in experiments() for t in exp.tables}
    tables = {}
    for path in sorted(folder.glob("*.parquet")):
        if path.stem.startswith(SUMMARY):
            continue
        try:
            frame = _read_parquet(path)
        except IntegrityError as err:
            frame = _rebuilt(path, err, log)
        except (OSError, ValueError, pa.ArrowException) as err:
            raise StelabError(
                f"{path}: not a readable Parquet table ({_first_line(err)}); rerun "
                "'stelab reproduce' with the same --out to rewrite it, or move it away"
            ) from None
        spec = known.get(path.stem)
        missing = [c for c in spec.required_columns if c not in frame] if spec else []
        if missing or (spec and frame.empty):
            what = f"lacks the column {missing[0]!r}" if missing else "has no rows"
            raise StelabError(
                f"{path}: {what}, so it was not written by 'stelab reproduce'; "
                "rerun it with the same --out, or move the file away"
            )
        tables[path.stem] = frame
    if not tables:
        raise StelabError(f"DIR: {folder} holds no experiment tables; nothing to report")
    return tables


def _first_line(err: BaseException) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0][:200]
