"""A sweep of a single cell on the default local executor runs in the sweep's own process (no
worker pool to start), says so, and stores the rows the pool stores; more cells, or a worker
count given, keep the pool."""

from __future__ import annotations

import pandas as pd

from stelab.sweep import (
    Execution,
    LocalExecutor,
    drop_timing,
    execute_sweep,
    parse_sweep,
    sweep_cells,
)
from stelab.sweep.execution_settings import InProcess


def cells_of(levels: list[float]):
    raw = {
        "model": {"d": 16, "m": 1},
        "noise": {"kind": "flip", "level": levels},
        "train": {"n": 32, "steps": 20},
        "run": {"trials": 3, "device": "cpu"},
        "sweep": {"axes": ["noise.level"]},
    }
    return sweep_cells(parse_sweep(raw))


def test_single_cell_runs_in_process_and_says_so(tmp_path):
    cells = cells_of([0.1])
    assert len(cells) == 1
    report = execute_sweep(cells, tmp_path / "one", Execution(progress=False))
    assert report.executor.startswith("serial (this process")
    assert "single cell" in report.executor
    pooled = execute_sweep(cells, tmp_path / "pool",
                           Execution(LocalExecutor(workers=1), progress=False))
    assert pooled.executor.startswith("local")
    pd.testing.assert_frame_equal(drop_timing(report.rows), drop_timing(pooled.rows))


def test_pool_kept_for_several_cells_or_given_workers():
    assert isinstance(Execution().for_cells(cells_of([0.1])).executor, InProcess)
    assert Execution().for_cells(cells_of([0.0, 0.1])).executor == "local"
    assert Execution(workers=2).for_cells(cells_of([0.1])).executor == "local"
    assert Execution(executor="serial").for_cells(cells_of([0.1])).executor == "serial"


def test_a_large_single_cell_keeps_its_worker():
    """Running out of memory must cost a worker, not the sweep's process: a single cell above
    IN_PROCESS_VALUES input values stays on the pool."""
    from stelab.sweep.execution_settings import IN_PROCESS_VALUES

    raw = {"model": {"d": 256}, "train": {"n": IN_PROCESS_VALUES // 256 + 1, "steps": 5},
           "run": {"trials": 1, "device": "cpu"}}
    cells = sweep_cells(parse_sweep(raw))
    assert len(cells) == 1
    assert Execution().for_cells(cells).executor == "local"
