"""A sweep on the default local executor runs in the sweep's own process (no worker pool to
start) when the pool would not be faster: a single cell, or cells of at least as many trials as
cores. It says so and stores the rows the pool stores; cells of fewer trials than cores, a large
cell, or a worker count given keep the pool."""

from __future__ import annotations

import pandas as pd

from stelab.sweep import (
    Execution,
    LocalExecutor,
    drop_timing,
    execute_sweep,
    execution_settings,
    parse_sweep,
    sweep_cells,
)
from stelab.sweep.execution_settings import IN_PROCESS_BYTES, InProcess


def cells_of(levels: list[float], trials: int = 3):
    raw = {
        "model": {"d": 16, "m": 1},
        "noise": {"kind": "flip", "level": levels},
        "train": {"n": 32, "steps": 20},
        "run": {"trials": trials, "device": "cpu"},
        "sweep": {"axes": ["noise.level"]},
    }
    return sweep_cells(parse_sweep(raw))


def test_single_cell_runs_in_process_and_says_so(tmp_path):
    cells = cells_of([0.1])
    assert len(cells) == 1
    report = execute_sweep(cells, tmp_path / "one", Execution(progress=False))
    assert report.executor.startswith("serial (this process")
    assert "pool would not run these cells faster" in report.executor
    pooled = execute_sweep(cells, tmp_path / "pool",
                           Execution(LocalExecutor(workers=1), progress=False))
    assert pooled.executor.startswith("local")
    pd.testing.assert_frame_equal(drop_timing(report.rows), drop_timing(pooled.rows))


def test_several_cells_run_here_when_each_fills_the_cores(monkeypatch):
    monkeypatch.setattr(execution_settings, "available_cores", lambda: 4)
    assert isinstance(Execution().for_cells(cells_of([0.1])).executor, InProcess)
    assert isinstance(Execution().for_cells(cells_of([0.0, 0.1], trials=4)).executor, InProcess)
    assert Execution().for_cells(cells_of([0.0, 0.1], trials=3)).executor == "local"
    assert Execution(workers=2).for_cells(cells_of([0.1])).executor == "local"
    assert Execution(workers=2).for_cells(cells_of([0.0, 0.1], trials=4)).executor == "local"
    assert Execution(executor="serial").for_cells(cells_of([0.1])).executor == "serial"


def test_several_cells_in_process_store_the_rows_of_the_pool(tmp_path, monkeypatch):
    monkeypatch.setattr(execution_settings, "available_cores", lambda: 2)
    cells = cells_of([0.0, 0.1], trials=2)
    here = execute_sweep(cells, tmp_path / "here", Execution(progress=False))
    assert here.executor.startswith("serial (this process")
    pooled = execute_sweep(cells, tmp_path / "pool",
                           Execution(LocalExecutor(workers=2), progress=False))
    pd.testing.assert_frame_equal(drop_timing(here.rows), drop_timing(pooled.rows))


def test_a_large_cell_keeps_its_worker():
    """Running out of memory must cost a worker, not the sweep's process: a cell above
    IN_PROCESS_BYTES of inputs stays on the pool, alone or among small ones."""
    big = {"model": {"d": 256}, "train": {"n": IN_PROCESS_BYTES // (4 * 256) + 1, "steps": 5},
           "run": {"trials": 1, "device": "cpu"}}
    cells = sweep_cells(parse_sweep(big))
    assert len(cells) == 1
    assert Execution().for_cells(cells).executor == "local"
    assert Execution().for_cells([*cells_of([0.1]), *cells]).executor == "local"
