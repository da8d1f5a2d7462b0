"""Promises of the sweep store and executors that nothing else exercises: a cell file with the
wrong number of rows is detected, a resume by another code version warns, and Dask with worker
processes (and with a scheduler address, as --scheduler gives it) returns the serial rows."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from stelab.atomic import atomic_write
from stelab.sweep import (
    Execution,
    SweepStore,
    drop_timing,
    execute_sweep,
    parse_sweep,
    run_cells,
    sweep_cells,
)
from stelab.sweep.dask_executor import DaskExecutor

SERIAL = Execution("serial", progress=False)


def cells_of(trials: int = 4):
    return sweep_cells(parse_sweep({
        "model": {"d": 12},
        "train": {"n": [24, 48], "steps": 15},
        "run": {"trials": trials, "device": "cpu"},
        "sweep": {"axes": ["train.n"]},
    }))


def test_a_cell_file_with_a_missing_row_is_corrupt_and_recomputed(tmp_path):
    cells = cells_of()
    good = run_cells(cells, tmp_path, executor="serial", progress=False)
    victim = tmp_path / "cells" / f"{cells[0].key}.parquet"
    table = pq.read_table(victim)
    # same key metadata, 1 row less, and a checksum that matches it (as a tool that rewrote the
    # file through stelab's writer would leave it): the row count is what catches it
    atomic_write(victim, lambda fh: pq.write_table(table.slice(0, table.num_rows - 1), fh))
    assert pq.read_metadata(victim).num_rows == 3
    report = execute_sweep(cells, tmp_path, SERIAL)
    assert report.corrupt == [(cells[0].key, "3 rows, expected 4")]
    assert report.computed == 1
    reason = next((tmp_path / "quarantine").glob("*.reason.txt")).read_text()
    assert reason == "3 rows, expected 4\n"
    assert drop_timing(report.rows).equals(drop_timing(good))


def test_resume_by_another_code_version_warns_and_keeps_the_cells(tmp_path):
    cells = cells_of()
    good = run_cells(cells, tmp_path, executor="serial", progress=False)
    manifest_path = tmp_path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["code"] = {"stelab": "0.0.1", "git_commit": "0" * 40, "git_dirty": False}
    atomic_write(manifest_path, lambda fh: fh.write(json.dumps(manifest).encode()))  # its own
    report = execute_sweep(cells, tmp_path, SERIAL)
    assert report.computed == 0
    assert len(report.warnings) == 1
    warning = report.warnings[0]
    assert warning.startswith(f"cells in {tmp_path} were started with stelab 0.0.1 (0000000)")
    assert warning.endswith(f"Finished cells are kept; delete {tmp_path / 'cells'} to recompute "
                            "them with this version")
    assert drop_timing(report.rows).equals(drop_timing(good))
    # the same version again: no warning
    store = SweepStore(tmp_path)
    try:
        now = {**manifest, "code": json.loads(manifest_path.read_text())["code_now"]}
        atomic_write(manifest_path, lambda fh: fh.write(json.dumps(now).encode()))
        assert store.open(cells) == []
    finally:
        store.close()


@pytest.mark.slow
def test_dask_with_worker_processes_and_with_a_scheduler_address(tmp_path):
    from distributed import LocalCluster

    cells = cells_of(trials=3)
    serial = drop_timing(run_cells(cells, tmp_path / "serial", executor="serial",
                                   progress=False))
    procs = run_cells(cells, tmp_path / "procs",
                      executor=DaskExecutor(workers=2, processes=True), progress=False)
    assert drop_timing(procs).equals(serial)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        remote = run_cells(cells, tmp_path / "remote",
                           executor=DaskExecutor(scheduler=cluster.scheduler_address),
                           progress=False)
    assert drop_timing(remote).equals(serial)
