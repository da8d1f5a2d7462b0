"""``stelab reproduce``: run the experiments of the registry and write the report.

Layout of the output folder DIR:

    DIR/profile.toml           the exact profile that ran (rerun with --profile DIR/profile.toml)
    DIR/manifest.json          code version, environment, timings per table
    DIR/store/<table>/         the sweep store of each engine-cell table (resumable, one
                               Parquet per cell)
    DIR/tables/<table>.parquet the merged per-trial rows (the only input of everything below)
    DIR/tables/summary_*.parquet  derived tables (thresholds, exponents, success tables)
    DIR/figures/*.png          figures, redrawn from the tables by ``stelab plot DIR``
    DIR/claims.json            verdicts on C1-C4 with their evidence and rules
    DIR/report.md              the report

Running again with the same profile resumes: finished cells are read back from the store.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from stelab.errors import ConfigError, StelabError
from stelab.experiments import Experiment, Table, experiments
from stelab.experiments.profile import load_profile, profile_text
from stelab.integrity import read_checked
from stelab.locking import hold_lock
from stelab.provenance import code_version, environment
from stelab.report.folder import TABLES, write_text
from stelab.report.write import write_report
from stelab.results import write_table

if TYPE_CHECKING:  # the sweep machinery loads the engine: imported only when running
    from stelab.sweep import Execution


def _names() -> list[str]:
    """What --only accepts: every experiment and every table, once."""
    return list(dict.fromkeys(name for exp in experiments()
                              for name in (exp.name, *(t.name for t in exp.tables))))


def selected(profile: dict[str, Any], only: list[str] | None = None
             ) -> list[tuple[Experiment, list[Table]]]:
    """The experiments the profile runs (those whose table it holds), with the tables of each
    that ``only`` selects (an experiment's name selects all its tables)."""
    chosen = []
    for exp in experiments():
        if exp.profile_table not in profile:
            continue
        tables = [t for t in exp.tables if (not only or exp.name in only or t.name in only)
                  and t.is_wanted(profile)]
        if tables:
            chosen.append((exp, tables))
    return chosen


def _check_tables(profile: dict[str, Any], only: list[str] | None) -> None:
    """Refuse ``--only`` names that are no experiment or table, and a profile that runs
    nothing; build every table's cells before anything runs (a bad table fails at once)."""
    names = _names()
    unknown = [name for name in only or [] if name not in names]
    if unknown:
        raise StelabError(f"--only: unknown table {unknown[0]!r}; allowed: {', '.join(names)}")
    runs = selected(profile, only)
    for exp, tables in runs:
        for table in tables:
            if table.runs_cells:
                _build_checked(exp, table, profile)
    if not runs:
        wanted = sorted({exp.profile_table for exp in experiments()})
        raise StelabError(
            "--profile: nothing to run (the profile has none of the experiment tables "
            f"[{'], ['.join(wanted)}]"
            + (f" selected by --only {' '.join(only)}" if only else "") + ")"
        )


def _build_checked(exp: Experiment, table: Table, profile: dict[str, Any]) -> list:
    """The cells of ``table``; a profile the builder cannot read is a ConfigError."""
    where = f"--profile: the table [{exp.profile_table}] (for {table.name})"
    try:
        return table.next_cells(profile, pd.DataFrame())
    except StelabError as err:
        raise ConfigError(f"{where}: {err}") from None
    except KeyError as err:
        raise ConfigError(
            f"{where} lacks the key {err.args[0]!r}; see "
            "src/stelab/configs/reproduce_quick.toml for a complete one"
        ) from None
    except (TypeError, ValueError, AttributeError, IndexError) as err:
        raise ConfigError(
            f"{where} holds a value of the wrong type or shape "
            f"({type(err).__name__}: {str(err).splitlines()[0][:150]})"
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
    if stored.exists() and read_checked(stored).decode(errors="replace") != text:
        raise StelabError(
            f"--out: {out} holds results of another profile ({stored}); "
            "choose another --out, or pass the same profile to resume"
        )


def run_tables(
    profile: dict[str, Any],
    out: Path,
    execution: Execution | None = None,
    only: list[str] | None = None,
    log: Callable[[str], None] = print,
    seconds: dict[str, float] | None = None,
) -> dict[str, float]:
    """Produce every selected table of ``profile`` (engine cells through the sweep store, where
    ``execution`` says, default the local pool; or the experiment's own runner) into
    ``out/tables``; return the seconds each took. ``seconds``, when given, is filled as the
    tables run, so a caller interrupted midway still knows them (the table that was running
    gets the seconds it ran)."""
    seconds = {} if seconds is None else seconds
    for _exp, tables in selected(profile, only):
        for table in tables:
            began = time.perf_counter()
            try:
                if table.runs_cells:
                    rows = _run_rounds(table, profile, out / "store" / table.name, execution,
                                       log)
                else:
                    log(f"[{table.name}] {table.description}")
                    rows = table.run(profile)
                if table.label is not None:
                    rows = table.label(profile, rows)
                write_table(rows, out / TABLES / f"{table.name}.parquet")
            finally:
                seconds[table.name] = time.perf_counter() - began
    return seconds


def plan_tables(profile: dict[str, Any], only: list[str] | None,
                execution: Execution | None, log: Callable[[str], None]) -> dict[str, Any]:
    """Log the expected trials, worker-seconds and peak memory of every selected table that
    gives an estimate (``Table.estimate``), before anything runs; return them for the
    manifest."""
    from stelab.engine.threads import threads_assumed

    workers, threads = _parallel_trials(execution)
    planned: dict[str, Any] = {}
    for _exp, tables in selected(profile, only):
        for table in tables:
            if table.estimate is not None:
                with threads_assumed(threads):  # a worker's peak, with the threads it runs
                    estimate = table.estimate(profile)
                log(estimate.line(workers, threads))
                planned[table.name] = {**dataclasses.asdict(estimate), "workers": workers,
                                       "threads": threads}
    return planned


def _parallel_trials(execution: Execution | None) -> tuple[int, int]:
    """(workers, threads of each) that the plan's peak memory and wall time are for: the local
    pool gives each of its workers cores // workers threads (``LocalExecutor.threads_per_slot``);
    a Dask worker runs one; an unknown cluster counts as this machine's cores."""
    from stelab.sweep.executors import LocalExecutor, available_cores

    cores = available_cores()
    given = execution.workers if execution is not None and execution.workers else None
    executor = execution.executor if execution is not None else "local"
    if executor == "dask" or (execution is not None and execution.scheduler):
        return given or cores, 1
    if executor == "serial":
        return 1, cores
    pool = LocalExecutor(given)  # no processes start until it runs
    return pool.workers, pool.threads_per_slot()


def plan_profile(profile_name: str | Path, execution: Execution | None = None,
                 only: list[str] | None = None, log: Callable[[str], None] = print
                 ) -> dict[str, Any]:
    """What ``stelab reproduce --plan`` prints: the profile's tables checked as for a run, then
    each estimate (:func:`plan_tables`); nothing runs and nothing is written."""
    profile = load_profile(profile_name)
    _check_tables(profile, only)
    return plan_tables(profile, only, execution, log)


def _run_rounds(table: Table, profile: dict[str, Any], store: Path,
                execution: Execution | None, log: Callable[[str], None]) -> pd.DataFrame:
    """Run the table's cells through the sweep store, round after round until a round adds no
    cell: a fixed table has one round (stored in ``store``); an adaptive design chooses each
    round from the rows of the rounds before it (round k stored in ``store/round_<k>``).
    Finished cells are read back, so a rerun replays the same rounds on the same rows and
    resumes where the last one stopped."""
    from stelab.sweep import run_cells

    seen: set[str] = set()
    parts: list[pd.DataFrame] = []
    rows = pd.DataFrame()
    for index in itertools.count():
        new = [c for c in table.next_cells(profile, rows) if c.digest() not in seen]
        if not new:
            return rows
        seen.update(c.digest() for c in new)
        if table.design is None:
            log(f"[{table.name}] {table.description}: {len(new)} cells")
            where = store
        else:
            trials = sum(c.run.trials for c in new)
            log(f"[{table.name}] {table.description}: round {index}, {len(new)} cells, "
                f"{trials} trials")
            where = store / f"round_{index:03d}"
        parts.append(run_cells(new, where, execution=execution))
        rows = pd.concat(parts, ignore_index=True)


def reproduce(
    profile_name: str | Path,
    out: str | Path,
    execution: Execution | None = None,
    only: list[str] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the profile's experiments into ``out`` and write figures, claims and the report.

    Parameters
    ----------
    profile_name : str or Path
        ``"quick"``, ``"full"`` or a profile TOML (the experiments' axes, docs/reproduce.md).
    out : str or Path
        The reproduce folder: ``tables/``, ``figures/``, ``report.md``, ``claims.json``,
        ``manifest.json``; running again resumes.
    execution : Execution, optional
        Where the engine cells run (:class:`stelab.sweep.Execution`; default the local pool
        with progress).
    only : list of str, optional
        Run only these experiments (their names, as ``stelab reproduce --only`` takes them).
    log : callable
        Receives the progress, a line at a time (default: print).

    Returns
    -------
    dict
        The claims, as :func:`stelab.write_report` returns them.
    """
    out = Path(out)
    profile = load_profile(profile_name)  # first: it turns unreadable files into one line
    text = profile_text(profile_name)
    _check_tables(profile, only)
    _check_profile(out, text)
    with folder_lock(out, "reproduce"):
        _check_profile(out, text)  # again, now that no other process can write it
        write_text(out / "profile.toml", text)
        planned = plan_tables(profile, only, execution, log)
        began = time.perf_counter()
        seconds: dict[str, float] = {}
        try:
            run_tables(profile, out, execution, only, log, seconds)
        except BaseException as err:  # Ctrl-C or a failure: the sitting's time stays on record
            _write_manifest(out, profile_name, planned, began, seconds, type(err).__name__)
            raise
        _write_manifest(out, profile_name, planned, began, seconds)
        return write_report(out, log=log)


def _write_manifest(out: Path, profile_name: str | Path, planned: dict[str, Any], began: float,
                    seconds: dict[str, float], stopped_by: str | None = None) -> None:
    """Write ``out/manifest.json``: code version, environment, the plan and this sitting's
    seconds per table, after the sittings of earlier runs into ``out``. A sitting that did not
    finish says what stopped it (``stopped_by``: KeyboardInterrupt, SweepInterrupted, the
    error's type); a later run resumes and adds its own."""
    sitting: dict[str, Any] = {
        "code": code_version(),
        "seconds_per_table": dict(seconds),
        "seconds_total": time.perf_counter() - began,
    }
    if stopped_by is not None:
        sitting["stopped_by"] = stopped_by
    manifest = {
        "profile": str(profile_name),
        "plan": planned,
        **sitting,
        "environment": environment(),
        "sittings": [*_earlier_sittings(out), sitting],
    }
    write_text(out / "manifest.json", json.dumps(manifest, indent=2, default=str))


def _earlier_sittings(out: Path) -> list[dict[str, Any]]:
    """The sittings recorded by earlier runs into ``out`` (a resumed run adds its own, so the
    time a run took over several sittings stays on record); none before the first."""
    path = out / "manifest.json"
    if not path.exists():
        return []
    earlier = json.loads(read_checked(path))
    return list(earlier.get("sittings", [{k: earlier[k] for k in
                                          ("code", "seconds_per_table", "seconds_total")
                                          if k in earlier}]))


@contextmanager
def folder_lock(out: Path, command: str) -> Iterator[None]:
    """Hold ``out``'s lock while ``command`` (reproduce, plot) writes it: a second reproduce
    or plot on the same folder is refused with one line (:mod:`stelab.locking`)."""
    out.mkdir(parents=True, exist_ok=True)
    fh = hold_lock(out, StelabError,
                   f"--out: {out} is in use by another stelab reproduce or plot ({{holder}}); "
                   f"wait for it to finish or choose another folder (this was {command})")
    try:
        yield
    finally:
        if fh is not None:
            fh.close()
