"""``stelab reproduce``: run E1-E4 (and E5 real data) and write the report.

Layout of the output folder DIR:

    DIR/profile.toml           the exact profile that ran (rerun with --profile DIR/profile.toml)
    DIR/manifest.json          code version, environment, timings per table
    DIR/store/<table>/         the sweep store of each table (resumable, one Parquet per cell)
    DIR/tables/<table>.parquet the merged per-trial rows (the only input of everything below)
    DIR/tables/summary_*.parquet  derived tables (thresholds, exponents, success tables)
    DIR/figures/*.png          figures, redrawn from the tables by ``stelab plot DIR``
    DIR/claims.json            verdicts on C1-C4 with their evidence and rules
    DIR/report.md              the report

Running again with the same profile resumes: finished cells are read back from the store.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from stelab.atomic import atomic_write
from stelab.errors import ConfigError, StelabError
from stelab.experiments import EXPERIMENTS
from stelab.experiments.profile import load_profile, profile_text
from stelab.results import write_table

TABLES = "tables"


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a reader sees the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: fh.write(text.encode()))


def _check_tables(profile: dict[str, Any], only: list[str] | None) -> None:
    """Refuse ``--only`` names that are no table, and a profile that runs nothing."""
    names = [*EXPERIMENTS, "e5"]
    unknown = [name for name in only or [] if name not in names]
    if unknown:
        raise StelabError(f"--only: unknown table {unknown[0]!r}; allowed: {', '.join(names)}")
    runs = [name for name in names if name.split("_")[0] in profile and (not only or name in only)]
    for name in runs:  # every table's cells, before anything runs: a bad [e4] fails at once
        if name in EXPERIMENTS:
            _build_checked(name, profile)
    if not runs:
        raise StelabError(
            "--profile: nothing to run (the profile has none of the experiment tables "
            f"[{'], ['.join(sorted({n.split('_')[0] for n in names}))}]"
            + (f" selected by --only {' '.join(only)}" if only else "") + ")"
        )


def _build_checked(name: str, profile: dict[str, Any]) -> list:
    """The cells of table ``name``; a profile the builder cannot read is a ConfigError."""
    build = EXPERIMENTS[name][0]
    try:
        return build(profile)
    except StelabError as err:
        raise ConfigError(f"--profile: the table [{name.split('_')[0]}] (for {name}): {err}") \
            from None
    except KeyError as err:
        raise ConfigError(
            f"--profile: the table [{name.split('_')[0]}] (for {name}) lacks the key "
            f"{err.args[0]!r}; see src/stelab/configs/reproduce_quick.toml for a complete one"
        ) from None
    except (TypeError, ValueError, AttributeError, IndexError) as err:
        raise ConfigError(
            f"--profile: the table [{name.split('_')[0]}] (for {name}) holds a value of the "
            f"wrong type or shape ({type(err).__name__}: {str(err).splitlines()[0][:150]})"
        ) from None


def _check_profile(out: Path, text: str) -> None:
    """Refuse to mix results of two different profiles in one folder."""
    stored = out / "profile.toml"
    if out.exists() and not out.is_dir():
        raise StelabError(f"--out: {out} exists and is not a folder; give a folder")
    foreign = [name for name in ("manifest.json", "cells", "results.parquet")
               if (out / name).exists()]
    if foreign and not stored.exists():
        raise StelabError(
            f"--out: {out} holds the results of a 'stelab run' or 'stelab sweep' "
            f"({foreign[0]}); refusing to write a reproduce run into it; choose another --out"
        )
    if stored.exists() and stored.read_text() != text:
        raise StelabError(
            f"--out: {out} holds results of another profile ({stored}); "
            "choose another --out, or pass the same profile to resume"
        )


def run_tables(
    profile: dict[str, Any],
    out: Path,
    executor: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    only: list[str] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, float]:
    """Run every experiment table of ``profile`` through the sweep store; return seconds each."""
    from stelab.sweep import run_cells

    seconds: dict[str, float] = {}
    for name, (build, description) in EXPERIMENTS.items():
        if only and name not in only or name.split("_")[0] not in profile:
            continue
        cells = build(profile)
        log(f"[{name}] {description}: {len(cells)} cells")
        began = time.perf_counter()
        rows = run_cells(
            cells, out / "store" / name, executor=executor, workers=workers,
            scheduler=scheduler, progress=progress,
        )
        write_table(rows, out / TABLES / f"{name}.parquet")
        seconds[name] = time.perf_counter() - began
    if "e5" in profile and (not only or "e5" in only):
        seconds.update(run_real_data(profile["e5"], out, log))
    return seconds


def run_real_data(spec: dict[str, Any], out: Path, log: Callable[[str], None]) -> dict[str, float]:
    """E5: binary networks trained with STE on scikit-learn's bundled digits (accuracy per seed),
    and exact teacher recovery with the digit images as inputs (per normalization)."""
    from stelab.realdata import digits_teacher_recovery, run_digits

    seconds = {}
    log("[e5] E5 real data: binary networks on scikit-learn's digits")
    began = time.perf_counter()
    write_table(run_digits(seeds=spec.get("seeds", 10), quick=spec.get("quick", True)),
                out / TABLES / "e5.parquet")
    seconds["e5"] = time.perf_counter() - began
    if spec.get("recovery_trials", 0) > 0:
        log("[e5_recovery] teacher recovery with digit images as inputs")
        began = time.perf_counter()
        recovery = digits_teacher_recovery(
            trials=spec["recovery_trials"], steps=spec.get("recovery_steps", 500)
        )
        write_table(recovery, out / TABLES / "e5_recovery.parquet")
        seconds["e5_recovery"] = time.perf_counter() - began
    return seconds


#: columns every experiment table of a reproduce run holds (the config and the outcomes)
REQUIRED_COLUMNS = ("d", "n", "m", "steps", "trial", "success_last", "success_ergodic")


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


def load_tables(out: Path) -> dict[str, pd.DataFrame]:
    """The stored per-trial tables of a reproduce folder (StelabError naming the file when one
    cannot be read or lacks the columns a reproduce run writes)."""
    import pyarrow as pa

    folder = Path(out) / TABLES
    if not folder.is_dir():
        raise StelabError(f"DIR: {out} has no {TABLES}/ folder; run 'stelab reproduce' first")
    tables = {}
    for path in sorted(folder.glob("*.parquet")):
        if path.stem.startswith("summary_"):
            continue
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError, pa.ArrowException) as err:
            raise StelabError(
                f"{path}: not a readable Parquet table ({_first_line(err)}); rerun "
                "'stelab reproduce' with the same --out to rewrite it, or move it away"
            ) from None
        known = path.stem in EXPERIMENTS
        missing = [c for c in REQUIRED_COLUMNS if c not in frame] if known else []
        if missing or (known and frame.empty):
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


def reproduce(
    profile_name: str | Path,
    out: str | Path,
    executor: str = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    only: list[str] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the profile's experiments into ``out`` and write figures, claims and the report."""
    from stelab.report import write_report
    from stelab.sweep.store import code_version, environment

    out = Path(out)
    profile = load_profile(profile_name)  # first: it turns unreadable files into one line
    text = profile_text(profile_name)
    _check_tables(profile, only)
    _check_profile(out, text)
    write_text(out / "profile.toml", text)
    began = time.perf_counter()
    seconds = run_tables(profile, out, executor, workers, scheduler, progress, only, log)
    manifest = {
        "profile": str(profile_name),
        "code": code_version(),
        "environment": environment(),
        "seconds_per_table": seconds,
        "seconds_total": time.perf_counter() - began,
    }
    write_text(out / "manifest.json", json.dumps(manifest, indent=2, default=str))
    return write_report(out, log=log)
