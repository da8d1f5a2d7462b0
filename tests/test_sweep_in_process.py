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
