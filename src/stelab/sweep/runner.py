"""Run sweep cells: plan, skip finished cells, compute the rest on an executor, store, merge.

This module is the orchestration; the steps it calls live in :mod:`~stelab.sweep.plan` (work
and memory of every cell, before anything starts), :mod:`~stelab.sweep.worker` (one cell on a
worker), :mod:`~stelab.sweep.progress` (the bar), :mod:`~stelab.sweep.store` (the files) and
:mod:`~stelab.sweep.execution_settings` (which executor, how many workers, progress or not).

``run_cells(cells, out_dir)`` is the library entry point (``stelab sweep`` and ``stelab
reproduce`` both go through it). For each cell the worker runs
``stelab.engine.run_experiment(cell.config, trials=cell.trials)`` and returns the rows; this
process writes them to ``out_dir/cells/<key>.parquet`` as they arrive, so an interruption at any
moment loses only the cells still running. The merged table lists the cells in the order given
(grid order), each cell's trials ascending: it does not depend on the executor, the number of
workers, the order cells finish in, or on how often the sweep was interrupted and resumed. Only
the timing column ``wall_seconds`` differs between runs.
"""

from __future__ import annotations

import time
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from stelab.config import Config
from stelab.errors import MachineError, StelabError
from stelab.provenance import code_label
from stelab.registration import payload_for
from stelab.sweep.execution_settings import Execution, execution_of
from stelab.sweep.executors import Executor
from stelab.sweep.grid import Cell, make_cells, parse_sweep, sweep_cells
from stelab.sweep.plan import SweepPlan, plan_cells
from stelab.sweep.progress import SweepProgress
from stelab.sweep.store import CorruptCellError, ScanResult, SweepStore, SweepStoreError
from stelab.sweep.summary import SweepReport, print_failures
from stelab.sweep.worker import CellOutcome, CellTask, compute_cell

#: columns that measure time and therefore differ between otherwise identical runs
TIMING_COLUMNS = ("wall_seconds",)


class SweepFailedError(StelabError):
    """Some cells raised; the others are stored and merged (see DIR/errors/)."""


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM in the CLI) stopped a sweep; finished cells are kept."""

    def __init__(self, message: str, done: int, total: int, out_dir: Path) -> None:
        super().__init__(message)
        self.message, self.done, self.total, self.out_dir = message, done, total, out_dir


# -- the sweep ---------------------------------------------------------------------------------
def _as_cells(items: Sequence[Cell | Config], block_trials: int | None) -> list[Cell]:
    cells: list[Cell] = []
    for item in items:
        if isinstance(item, Cell):
            cells.append(item)
        elif isinstance(item, Config):
            cells.extend(make_cells([item], block_trials))
        else:
            raise TypeError(f"run_cells: expected Cell or Config, got {type(item).__name__}")
    seen: dict[str, Cell] = {}
    for cell in cells:
        if cell.key in seen:
            raise StelabError(
                f"cells: the cell {cell.describe()} is listed twice (key {cell.key}); "
                "each config and trial block may appear once"
            )
        seen[cell.key] = cell
    return cells


def _load(store: SweepStore, cells: Sequence[Cell], keys: set[str]) -> tuple[list, list]:
    frames, bad = [], []
    for cell in cells:
        if cell.key not in keys:
            continue
        try:
            frames.append(store.read_cell(cell))
        except CorruptCellError as err:
            store.quarantine(cell.key, str(err))
            bad.append((cell.key, str(err)))
    return frames, bad


@dataclass
class _Tally:
    """What one execution of a sweep did, gathered as it goes."""

    failures: dict[str, dict[str, Any]] = field(default_factory=dict)
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    computed: int = 0
    trials: int = 0


def _new_run_record(runner: Executor, execution: Execution, store: SweepStore) -> dict[str, Any]:
    """The manifest's record of this execution, while it runs."""
    return {
        "id": uuid.uuid4().hex[:12], "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "executor": runner.name, "workers": execution.workers,
        "scheduler": execution.scheduler,
        "code": code_label(store.manifest.get("code_now", {})), "status": "running",
    }


def _show_corrupt(show: Console | None, corrupt: Sequence[tuple[str, str]]) -> None:
    if show is None:
        return
    for key, reason in corrupt:
        show.print(f"[yellow]corrupt cell file[/] {key}: {reason}; "
                   "moved to quarantine/, recomputing", highlight=False)


def _run_tasks(runner: Executor, store: SweepStore, plan: SweepPlan, tasks: list[CellTask],
               show: Console | None, tally: _Tally) -> None:
    """Compute ``tasks`` (the plan's cells to do) on ``runner``, storing each finished cell or
    its error as it arrives."""
    if not tasks:
        return
    reporter = SweepProgress(show, len(tasks), plan.todo_flops)
    results = runner.map_unordered(compute_cell, tasks) if plan.capacity is None else \
        runner.map_unordered(compute_cell, tasks, memory=[plan.peak_bytes[i] for i in plan.todo],
                             capacity=plan.capacity)
    try:
        for j, result in results:
            cell = tasks[j].cell
            if isinstance(result, CellOutcome) and result.error is None:
                store.write_cell(cell, result.rows, {
                    "host": result.host, "pid": result.pid, "seconds": result.seconds,
                })
                tally.failures.pop(cell.key, None)
                tally.computed += 1
                tally.trials += cell.stop - cell.start
            else:
                failure = _failure(result)
                store.write_error(cell, failure)
                tally.failures[cell.key] = {"key": cell.key, "cell": cell.describe(), **failure}
            reporter.update(cell.stop - cell.start, plan.cell_flops[plan.todo[j]],
                            cell.key in tally.failures)
    finally:
        reporter.stop()


def _interrupted(runner: Executor, store: SweepStore, cells: list[Cell],
                 run_record: dict[str, Any], out: Path) -> SweepInterrupted:
    """Stop the workers and record the interruption; the exception to raise."""
    runner.abort()
    done = len(store.scan(cells).done)
    run_record.update(status="interrupted", ended=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    store.record_run(run_record)
    return SweepInterrupted(
        f"interrupted: {done}/{len(cells)} cells are stored in {store.cells_dir}; "
        "run the same command again to resume",
        done, len(cells), out,
    )


def _show_scan(show: Console, scan: ScanResult, store: SweepStore, plan_table: Table) -> None:
    """What the first scan of the store found, and the plan."""
    _show_corrupt(show, scan.corrupt)
    if scan.failed_before:
        show.print(f"retrying {len(scan.failed_before)} cells that failed before "
                   f"(records in {store.errors_dir})", highlight=False)
    show.print(plan_table)


def _close(runner: Executor, started: bool, warnings: list[str]) -> None:
    """Close the workers of a finished execution, warning of those that died on the way."""
    restarts = getattr(runner, "restarts", 0)
    if restarts:
        warnings.append(
            f"worker processes died {restarts} time(s) (killed, or out of memory); the "
            "cells they were running were rerun one at a time"
        )
    if started:
        runner.close()


def _store_results(store: SweepStore, cells: list[Cell], rows: pd.DataFrame,
                   run_record: dict[str, Any], tally: _Tally, seconds: float) -> None:
    """Write the merged rows and close this execution's record in the manifest."""
    run_record.update(
        status="complete" if not tally.failures else f"{len(tally.failures)} cells failed",
        ended=time.strftime("%Y-%m-%dT%H:%M:%S%z"), seconds=round(seconds, 3),
        cells_computed=tally.computed,
    )
    try:
        # every cell failed: no 0-row table that looks like a result
        if len(rows) or not tally.failures:
            store.write_results(rows)
        store.record_run(run_record)
    except OSError as err:
        raise _storage_failure(err, store, cells) from None


def _progress_console(execution: Execution, console: Console | None) -> Console | None:
    """Where progress goes: ``console`` (default stderr) with progress, nowhere without."""
    if not execution.progress:
        return None
    return console or Console(stderr=True)


def _show_warnings(show: Console | None, warnings: list[str]) -> None:
    if show is None:
        return
    for text in warnings:
        show.print(f"[yellow]warning:[/] {text}", highlight=False)


def execute_sweep(
    cells: Sequence[Cell | Config],
    out_dir: str | Path,
    execution: Execution | None = None,
    block_trials: int | None = None,
    console: Console | None = None,
    sweep_config: dict[str, Any] | None = None,
    plan_only: bool = False,
) -> SweepReport:
    """Store and resume ``cells`` under ``out_dir`` as ``execution`` says (default: the local
    pool, with progress); return what happened (:class:`SweepReport`).

    Raises :class:`~stelab.sweep.store.SweepStoreError` (folder unusable or holding another
    sweep), :class:`MemoryBudgetError` (a cell cannot fit), :class:`SweepInterrupted` (Ctrl-C:
    finished cells are kept; run again to resume).
    """
    from stelab.engine.threads import threads_assumed  # the engine loads when a plan is made

    began = time.perf_counter()
    out = Path(out_dir)
    cell_list = _as_cells(cells, block_trials)
    execution = (execution or Execution()).for_cells(cell_list)
    show = _progress_console(execution, console)
    runner = execution.make_executor()
    with SweepStore(out) as store:
        warnings = store.open(cell_list, sweep_config, dry=plan_only)
        _show_warnings(show, warnings)
        run_record = _new_run_record(runner, execution, store)
        tally = _Tally()
        stored_before: int | None = None
        plan: SweepPlan | None = None
        started = False
        try:
            for _attempt in range(2):
                scan = store.scan(cell_list)
                tally.corrupt.extend(scan.corrupt)
                if stored_before is None:
                    stored_before = len(scan.done)
                if len(scan.done) < len(cell_list) and not started:
                    runner.start()
                    started = True
                per_slot = runner.memory_per_slot() if started else None
                shared = runner.memory_shared() if started else None
                threads = runner.threads_per_slot() if started else None
                with threads_assumed(threads):  # the memory of the worker's threads, not ours
                    plan = plan_cells(cell_list, scan.done, per_slot, shared)
                if show is not None and _attempt == 0:
                    _show_scan(show, scan, store, plan.table(runner.describe() if started
                                                             else runner.name))
                if plan_only:
                    if started:
                        runner.close()
                    return SweepReport(out, pd.DataFrame(), len(cell_list), len(scan.done), 0,
                                       [], tally.corrupt, 0.0, 0, runner.name, warnings, plan)
                if _attempt == 0:
                    store.record_run(run_record)
                tasks = [CellTask(cell_list[i], plan.chunk_plans[i], threads,
                                  payload_for(cell_list[i].config)) for i in plan.todo]
                _run_tasks(runner, store, plan, tasks, show, tally)
                frames, bad = _load(store, cell_list, store.scan(cell_list).done)
                tally.corrupt.extend(bad)
                if not bad:
                    break
                _show_corrupt(show, bad)
            else:
                raise StelabError(
                    f"--out: cell files in {store.cells_dir} are corrupt again after being "
                    "rewritten; check the disk"
                )
        except KeyboardInterrupt:
            raise _interrupted(runner, store, cell_list, run_record, out) from None
        except OSError as err:
            runner.abort()
            raise _storage_failure(err, store, cell_list) from None
        except BaseException:
            runner.abort()
            raise
        else:
            _close(runner, started, warnings)
        rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        seconds = time.perf_counter() - began
        _store_results(store, cell_list, rows, run_record, tally, seconds)
        return SweepReport(
            out_dir=out, rows=rows, n_cells=len(cell_list), stored_before=stored_before or 0,
            computed=tally.computed, failures=list(tally.failures.values()),
            corrupt=tally.corrupt, seconds=seconds, trials_computed=tally.trials,
            executor=runner.describe() if started else runner.name, warnings=warnings, plan=plan,
        )


def _storage_failure(err: OSError, store: SweepStore, cells: Sequence[Cell]) -> StelabError:
    """The one-line error for a file the sweep could not write (disk full, permissions, I/O),
    counting the cells that are safely stored (every cell file is written atomically)."""
    from stelab.exits import os_error_line

    try:
        done = len(store.scan(cells).done)
    except OSError:
        done = None
    stored = (f"{done}/{len(cells)} cells are stored in {store.cells_dir}" if done is not None
              else f"the cells stored in {store.cells_dir} are kept")
    status, line = os_error_line(err, f"a file in {store.root}")
    cause = line.split(";", 1)[0]
    error = (MachineError if status == 1 else SweepStoreError)(
        f"{cause}; {stored}; run the same command again to resume"
    )
    return error


def _failure(result: Any) -> dict[str, Any]:
    """An error record from a worker's CellOutcome, or from an exception the executor gave."""
    if isinstance(result, CellOutcome):
        return {**(result.error or {}), "host": result.host, "pid": result.pid,
                "seconds": result.seconds}
    if isinstance(result, BaseException):
        text = "".join(traceback.format_exception(result))
        return {"error_type": type(result).__name__,
                "message": (str(result).splitlines() or [type(result).__name__])[0],
                "traceback": text}
    return {"error_type": "UnexpectedResult", "message": repr(result)[:200], "traceback": ""}


def run_cells(
    cells: Sequence[Cell | Config],
    out_dir: str | Path,
    executor: str | Executor = "local",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    block_trials: int | None = None,
    allow_failures: bool = False,
    console: Console | None = None,
    sweep_config: dict[str, Any] | None = None,
    execution: Execution | None = None,
) -> pd.DataFrame:
    """Compute (or resume) ``cells`` under ``out_dir`` and return the merged rows.

    ``cells`` are :class:`~stelab.sweep.grid.Cell` objects, or configs (split into trial blocks
    of ``block_trials``, default :func:`~stelab.sweep.grid.default_block_trials`). Finished cells
    found in ``out_dir/cells`` are not recomputed. Where and how the cells run: ``execution``
    (:class:`~stelab.sweep.execution_settings.Execution`), or its fields as keywords ``executor``,
    ``workers``, ``scheduler``, ``progress`` (not both). With progress, a bar, the plan and a
    summary go to ``console`` (default stderr).

    When cells fail, the others are still stored and merged into ``out_dir/results.parquet``;
    then :class:`SweepFailedError` is raised unless ``allow_failures`` (the failures are in
    ``out_dir/errors/`` and in ``rows.attrs["failures"]``). ``sweep_config`` (e.g. the TOML
    mapping the cells came from) is recorded in the manifest.
    """
    execution = execution_of(execution, executor, workers, scheduler, progress)
    report = execute_sweep(cells, out_dir, execution, block_trials, console, sweep_config)
    if execution.progress:
        show = console or Console(stderr=True)
        show.print(report.table())
        print_failures(report, show)
    report.rows.attrs["failures"] = report.failures
    if report.failures and not allow_failures:
        raise SweepFailedError(
            f"{len(report.failures)} of {report.n_cells} cells failed (first: "
            f"{report.failures[0]['cell']}: {report.failures[0]['message']}); records in "
            f"{report.out_dir / 'errors'}; the other cells are stored; run again to retry"
        )
    return report.rows


def drop_timing(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` without the timing columns (:data:`TIMING_COLUMNS`), for comparing runs."""
    return rows.drop(columns=[c for c in TIMING_COLUMNS if c in rows])


__all__ = [
    "SweepFailedError",
    "SweepInterrupted",
    "SweepReport",
    "TIMING_COLUMNS",
    "drop_timing",
    "execute_sweep",
    "print_failures",
    "run_cells",
]


def run_sweep(
    config: str | Path | dict[str, Any],
    out_dir: str | Path,
    execution: Execution | None = None,
    allow_failures: bool = False,
) -> pd.DataFrame:
    """Run (or resume) a sweep under ``out_dir``; return the merged rows.

    Parameters
    ----------
    config : str, Path or dict
        A sweep TOML file or its mapping (docs/sweeps.md): a config whose fields may be lists,
        and a ``[sweep]`` table naming the axes.
    out_dir : str or Path
        The sweep's folder (a Parquet file per finished cell, the manifest,
        ``results.parquet``); running again resumes.
    execution : Execution, optional
        Where the cells run (default: the local process pool, with a progress bar).
    allow_failures : bool
        Return the finished cells' rows even if some cells failed (default: SweepFailedError).

    Returns
    -------
    pandas.DataFrame
        One row per trial of every cell (the columns of :func:`stelab.run_experiment`).
    """
    from stelab.config import read_toml

    raw = config if isinstance(config, dict) else read_toml(config)
    cells = sweep_cells(parse_sweep(raw))
    return run_cells(cells, out_dir, execution=execution, allow_failures=allow_failures,
                     sweep_config=raw)
