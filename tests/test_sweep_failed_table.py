"""A sweep whose every cell failed leaves no results table that looks like a result (issue 25)."""

from __future__ import annotations

import pytest

from stelab.sweep import Execution, SerialExecutor, SweepFailedError, parse_sweep, run_cells
from stelab.sweep.grid import sweep_cells

RAW = {
    "model": {"d": 16},
    "train": {"n": [32, 64], "steps": 20},
    "run": {"trials": 2, "device": "cpu"},
    "sweep": {"axes": ["train.n"]},
}


def test_every_cell_failed_writes_no_results_parquet(tmp_path, monkeypatch):
    from stelab import engine

    def boom(*args, **kwargs):
        raise RuntimeError("cell failed on purpose")

    monkeypatch.setattr(engine, "run_experiment", boom)
    cells = sweep_cells(parse_sweep(RAW))
    with pytest.raises(SweepFailedError, match="2 of 2 cells failed"):
        run_cells(cells, tmp_path, execution=Execution(SerialExecutor(), progress=False))
    assert not (tmp_path / "results.parquet").exists()
    assert len(list((tmp_path / "errors").glob("*.json"))) == 2
    rows = run_cells(cells, tmp_path / "again", allow_failures=True,
                     execution=Execution(SerialExecutor(), progress=False))
    assert rows.empty and len(rows.attrs["failures"]) == 2
    assert not (tmp_path / "again" / "results.parquet").exists()
