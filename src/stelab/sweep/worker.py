"""The work of one sweep cell, as it runs on a worker (a local process, a Dask worker, or this
process): run the cell's trials with the engine and hand back the rows or the error.

Everything here is pickled to the worker and back, so it holds plain data: the cell, its chunk
plan and its thread count in; the rows (or the error's type, message and traceback) and where
it ran out. An error inside a cell never raises on the worker: the sweep records it and goes on.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from stelab.registration import install
from stelab.sweep.grid import Cell

if TYPE_CHECKING:  # the engine (torch, numba) is imported on the worker, when a cell runs
    from stelab.engine.budget import ChunkPlan

__all__ = ["CellOutcome", "CellTask", "compute_cell"]


@dataclass
class CellTask:
    """What a worker needs for one cell: its chunk plan (None: the worker plans from its own
    budget) and its threads."""

    cell: Cell
    plan: ChunkPlan | None = None
    threads: int | None = None
    #: the registered surrogate / input law the cell's config names, pickled by value
    #: (:func:`stelab.registration.payload_for`); installed on the worker before it runs
    registrations: bytes | None = None


@dataclass
class CellOutcome:
    """A worker's answer: the rows, or the error (type, message, traceback) and where it ran."""

    key: str
    rows: pd.DataFrame | None
    seconds: float
    host: str
    pid: int
    error: dict[str, str] | None = None


def compute_cell(task: CellTask) -> CellOutcome:
    """Run one cell's trials; never raises for an error inside the cell (it is returned)."""
    began = time.perf_counter()
    cell = task.cell
    try:
        if task.threads is not None:
            from stelab.engine.threads import set_cpu_threads

            set_cpu_threads(task.threads)
        from stelab import engine  # looked up at call time, so tests can patch it

        install(task.registrations)

        rows = engine.run_experiment(cell.config, trials=cell.trials, plan=task.plan)
        rows.insert(
            rows.columns.get_loc("trial") if "trial" in rows else 0,
            "config_digest",
            cell.config.digest(),
        )
        error = None
    except Exception as err:  # noqa: BLE001 - recorded with the cell; the sweep goes on
        rows = None
        error = {
            "error_type": type(err).__name__,
            "message": str(err).splitlines()[0] if str(err) else type(err).__name__,
            "traceback": traceback.format_exc(),
        }
    return CellOutcome(
        cell.key, rows, time.perf_counter() - began, socket.gethostname(), os.getpid(), error
    )
