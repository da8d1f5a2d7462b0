"""Soak test of a long resumable run (issue 23, item 3): SIGKILL at random moments then resume
ends with the outputs of an uninterrupted run; two reproduce processes on one folder: one runs,
the other is refused with one line; a worker that runs out of memory loses only its cell, which
is recomputed. The long version (many kills, local pool) is marked slow; docs/reliability.md
gives its counts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from stelab.config import read_toml
from stelab.sweep import drop_timing, parse_sweep, run_cells, sweep_cells
from tests import soak

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def test_kill_9_during_reproduce_then_resume_gives_the_uninterrupted_outputs(tmp_path):
    baseline = tmp_path / "baseline"
    soak.baseline_run(baseline, ("e2",))
    counts = soak.kill_and_resume(tmp_path / "out", baseline, kills=2, seed=23)
    assert counts.differing == [] and counts.damaged == 0, counts
    assert sum(counts.kills.values()) >= 1, counts


def test_two_reproduce_processes_on_one_folder_one_runs_one_refuses(tmp_path):
    codes, lines = soak.two_at_once(tmp_path / "out")
    assert sorted(codes) == [0, 2], (codes, lines)
    refused = lines[codes.index(2)]
    assert "in use by another stelab reproduce" in refused and "Traceback" not in refused


@pytest.mark.slow
def test_a_worker_out_of_memory_loses_only_its_cell(tmp_path):
    """~1 min: three sweeps (limited, rerun, serial baseline); a killed worker is in the default
    suite (tests/test_sweep_executors.py)."""
    found = soak.oom_worker(tmp_path)
    assert found["limited"], "no worker process to limit"
    total = 16
    # the cells the limited worker ran while limited failed with an out-of-memory error; every
    # other cell is stored
    assert len(found["errors"]) >= 1, found["log"][-2000:]
    assert found["stored_after_first"] == total - len(found["errors"])
    for record in found["errors"]:
        assert record["error_type"] in ("MemoryError", "RuntimeError", "OutOfMemoryError")
    assert found["first_status"] != 0 and found["second_status"] == 0
    cells = sweep_cells(parse_sweep(read_toml(found["config"])))
    expected = run_cells(cells, tmp_path / "baseline", executor="serial", progress=False)
    pd.testing.assert_frame_equal(drop_timing(found["rows"]), drop_timing(expected))


@pytest.mark.slow
def test_soak_long(tmp_path):
    """Many kills over every phase of a two-experiment run on the local pool."""
    baseline = tmp_path / "baseline"
    only = ("e2", "e3")
    soak.baseline_run(baseline, only, "local")
    counts = soak.kill_and_resume(tmp_path / "out", baseline, kills=24, seed=2323, only=only,
                                  executor="local")
    print(f"soak: {dict(counts.kills)} kills, {counts.finished_before_kill} finished first")
    assert counts.differing == [] and counts.damaged == 0, counts
