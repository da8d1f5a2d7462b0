"""Sweep store and runner in this process (serial executor): resume, refusal of a different
sweep, unwritable folders, corrupt cell files, errors inside a cell, memory planning."""

from __future__ import annotations

import json
import os
import sys

import pandas as pd
import pytest

from stelab import cli
from stelab.config import parse_config
from stelab.engine import run_experiment
from stelab.errors import MemoryBudgetError
from stelab.sweep import (
    Execution,
    SweepFailedError,
    SweepStore,
    SweepStoreError,
    drop_timing,
    execute_sweep,
    make_cells,
    parse_sweep,
    run_cells,
    sweep_cells,
)

SERIAL = Execution("serial", progress=False)


def tiny(ns=(32, 64), levels=(0.0, 0.1), trials=4, **sweep):
    return {
        "model": {"d": 16},
        "noise": {"kind": "flip", "level": list(levels)},
        "train": {"n": list(ns), "steps": 20},
        "run": {"trials": trials, "device": "cpu"},
        "sweep": {"axes": ["train.n", "noise.level"], **sweep},
    }


def cells_of(raw):
    return sweep_cells(parse_sweep(raw))


def run_cli(monkeypatch, *args: str) -> int:
    """``stelab ARGS`` in this process; its exit code."""
    monkeypatch.setattr(sys, "argv", ["stelab", *args])
    monkeypatch.setattr(cli.console, "width", 250)  # no wrapping inside table cells
    try:
        cli.main()
    except SystemExit as stop:
        return int(stop.code or 0)
    return 0


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(drop_timing(a), drop_timing(b))


def test_rows_are_the_engine_rows_in_grid_order(tmp_path):
    cells = cells_of(tiny())
    rows = run_cells(cells, tmp_path, executor="serial", progress=False)
    assert len(rows) == 4 * 4
    stored = pd.read_parquet(tmp_path / "results.parquet")
    same(rows, stored)
    expected = pd.concat(
        [run_experiment(c) for c in parse_sweep(tiny()).configs], ignore_index=True
    )
    same(rows.drop(columns="config_digest"), expected)
    assert list(rows["config_digest"].unique()) == [c.digest() for c in parse_sweep(tiny()).configs]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["n_cells"] == 4 and manifest["runs"][-1]["status"] == "complete"
    assert "torch" in manifest["environment"]["packages"] and manifest["code"]["stelab"]


def test_run_cells_takes_an_execution_record_or_its_fields_but_not_both(tmp_path):
    cells = cells_of(tiny())
    loose = run_cells(cells, tmp_path / "loose", executor="serial", progress=False)
    record = run_cells(cells, tmp_path / "record", execution=SERIAL)
    same(record, loose)
    with pytest.raises(TypeError, match="not both"):
        run_cells(cells, tmp_path / "both", executor="serial", execution=SERIAL)
    assert not (tmp_path / "both").exists()  # refused before anything is written


def test_rows_do_not_depend_on_the_trial_blocks(tmp_path):
    cfg = parse_config({"model": {"d": 16}, "noise": {"kind": "flip", "level": 0.1},
                        "train": {"n": 64, "steps": 20}, "run": {"trials": 7, "device": "cpu"}})
    whole = run_cells([cfg], tmp_path / "whole", executor="serial", progress=False)
    blocks = run_cells(make_cells([cfg], block_trials=2), tmp_path / "blocks", executor="serial",
                       progress=False)
    assert len(list((tmp_path / "blocks" / "cells").glob("*.parquet"))) == 4
    same(whole, blocks)


def test_rerun_skips_finished_cells_and_recomputes_missing_ones(tmp_path):
    cells = cells_of(tiny())
    first = execute_sweep(cells, tmp_path, SERIAL)
    assert first.computed == 4 and first.stored_before == 0
    again = execute_sweep(cells, tmp_path, SERIAL)
    assert again.computed == 0 and again.stored_before == 4
    (tmp_path / "cells" / f"{cells[2].key}.parquet").unlink()
    third = execute_sweep(cells, tmp_path, SERIAL)
    assert third.computed == 1 and third.stored_before == 3
    same(first.rows, third.rows)
    assert len(json.loads((tmp_path / "manifest.json").read_text())["runs"]) == 3


def test_a_different_sweep_in_the_same_folder_is_refused(tmp_path):
    run_cells(cells_of(tiny()), tmp_path, executor="serial", progress=False)
    with pytest.raises(SweepStoreError, match="holds a different sweep .*refusing to mix"):
        run_cells(cells_of(tiny(ns=(32, 128))), tmp_path, executor="serial", progress=False)
    with pytest.raises(SweepStoreError, match="different sweep"):  # same configs, other blocks
        run_cells(cells_of(tiny(block_trials=2)), tmp_path, executor="serial", progress=False)
    assert len(list((tmp_path / "cells").glob("*.parquet"))) == 4  # nothing mixed in


def test_cli_refuses_a_different_sweep_with_one_line(tmp_path, monkeypatch, capsys):
    def write(name, ns):
        path = tmp_path / name
        path.write_text(
            "[model]\nd = 16\n[train]\n"
            f"n = {list(ns)}\nsteps = 20\n[run]\ntrials = 2\ndevice = 'cpu'\n"
            "[sweep]\naxes = ['train.n']\n"
        )
        return str(path)

    out = str(tmp_path / "out")
    for config, code in ((write("a.toml", (32, 64)), 0), (write("b.toml", (32, 48)), 2)):
        assert run_cli(monkeypatch, "sweep", config, "--out", out, "--executor", "serial") == code
    err = capsys.readouterr().err
    assert "error:" in err and "different sweep" in err and "Traceback" not in err


def test_unwritable_folder_gives_a_clear_error(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SweepStoreError, match=r"--out: .*(not a folder|cannot write)"):
        run_cells(cells_of(tiny()), blocker, executor="serial", progress=False)
    with pytest.raises(SweepStoreError, match=r"--out: cannot write to .*file"):
        run_cells(cells_of(tiny()), blocker / "sub", executor="serial", progress=False)
    if os.geteuid() != 0:  # root ignores permission bits
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(SweepStoreError, match="--out: cannot write to .*Permission denied"):
            run_cells(cells_of(tiny()), locked / "out", executor="serial", progress=False)
    config = tmp_path / "s.toml"
    config.write_text("[model]\nd = 16\n[train]\nn = 32\nsteps = 5\n")
    code = run_cli(monkeypatch, "sweep", str(config), "--out", str(blocker / "sub"),
                   "--executor", "serial")
    assert code == 2
    err = capsys.readouterr().err
    assert "--out: cannot write" in err and "Traceback" not in err


def test_folder_in_use_is_refused(tmp_path):
    cells = cells_of(tiny())
    with SweepStore(tmp_path) as holder:
        holder.open(cells)
        with pytest.raises(SweepStoreError, match="in use by another stelab sweep"):
            run_cells(cells, tmp_path, executor="serial", progress=False)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "swap"])
def test_corrupt_cell_file_is_detected_recomputed_and_reported(tmp_path, damage):
    cells = cells_of(tiny())
    good = run_cells(cells, tmp_path, executor="serial", progress=False)
    victim = tmp_path / "cells" / f"{cells[1].key}.parquet"
    data = victim.read_bytes()
    if damage == "truncate":
        victim.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        victim.write_bytes(data[:100] + bytes(len(data) - 100))  # footer intact length, zeroed
    else:  # a valid file of another cell under this cell's name
        victim.write_bytes((tmp_path / "cells" / f"{cells[0].key}.parquet").read_bytes())
    report = execute_sweep(cells, tmp_path, SERIAL)
    assert [key for key, _ in report.corrupt] == [cells[1].key]
    assert report.computed == 1
    assert len(list((tmp_path / "quarantine").glob("*.parquet"))) == 1
    assert "corrupt cell files" in str(report.table().columns[0]._cells)
    same(good, report.rows)


def test_truncated_cell_is_reported_by_the_cli(tmp_path, monkeypatch, capsys):
    config = tmp_path / "s.toml"
    config.write_text("[model]\nd = 16\n[train]\nn = [32, 64]\nsteps = 20\n[run]\ntrials = 2\n"
                      "device = 'cpu'\n[sweep]\naxes = ['train.n']\n")
    argv = ["sweep", str(config), "--out", str(tmp_path / "o"), "--executor", "serial"]
    assert run_cli(monkeypatch, *argv) == 0
    victim = next((tmp_path / "o" / "cells").glob("*.parquet"))
    victim.write_bytes(victim.read_bytes()[:50])
    capsys.readouterr()
    assert run_cli(monkeypatch, *argv) == 0
    out = capsys.readouterr().out
    assert f"corrupt cell file {victim.stem}" in out and "recomput" in out


def test_error_inside_a_cell_is_recorded_and_the_other_cells_finish(tmp_path, monkeypatch):
    cells = cells_of(tiny())
    bad = cells[2]
    real = run_experiment

    def flaky(cfg, *args, **kwargs):
        if cfg == bad.config:
            raise RuntimeError("boom in this cell")
        return real(cfg, *args, **kwargs)

    monkeypatch.setattr("stelab.engine.run_experiment", flaky)
    with pytest.raises(SweepFailedError, match=r"1 of 4 cells failed .*boom in this cell"):
        run_cells(cells, tmp_path, executor="serial", progress=False)
    record = json.loads((tmp_path / "errors" / f"{bad.key}.json").read_text())
    assert record["error_type"] == "RuntimeError" and "boom" in record["traceback"]
    assert record["config"]["train"]["n"] == bad.config.train.n
    assert record["trials"] == [bad.start, bad.stop] and "noise.level=0.0" in record["cell"]
    partial = pd.read_parquet(tmp_path / "results.parquet")
    assert len(partial) == 3 * 4 and bad.config.digest() not in set(partial["config_digest"])
    rows = run_cells(cells, tmp_path, executor="serial", progress=False, allow_failures=True)
    assert len(rows) == 12 and rows.attrs["failures"][0]["key"] == bad.key

    monkeypatch.setattr("stelab.engine.run_experiment", real)  # the cause is fixed: retry
    report = execute_sweep(cells, tmp_path, SERIAL)
    assert report.computed == 1 and not report.failures
    assert not list((tmp_path / "errors").glob("*.json"))
    same(report.rows, run_cells(cells, tmp_path / "clean", executor="serial", progress=False))


def test_cell_too_big_for_the_memory_budget_is_refused_before_anything_runs(tmp_path):
    raw = tiny()
    raw["run"]["memory_budget_mb"] = 0.001  # ~1 kB: not even one trial fits
    with pytest.raises(MemoryBudgetError, match=r"sweep cell train\.n=32, noise\.level=0\.0.*"
                       r"one trial needs .* budget is .*\(and 3 more cells\)"):
        run_cells(cells_of(raw), tmp_path, executor="serial", progress=False)
    assert not list((tmp_path / "cells").glob("*.parquet"))


def test_plan_reports_work_and_memory_and_writes_nothing(tmp_path, monkeypatch, capsys):
    config = tmp_path / "s.toml"
    config.write_text("[model]\nd = [16, 32]\n[train]\nn = 64\nsteps = 20\n[run]\ntrials = 3\n"
                      "device = 'cpu'\n[sweep]\naxes = ['model.d']\n")
    out = tmp_path / "out"
    assert run_cli(monkeypatch, "sweep", str(config), "--out", str(out), "--plan",
                   "--executor", "serial") == 0
    text = capsys.readouterr().out
    assert "2 (2 configs); 0 already stored, 2 to run" in text
    assert "120" in text  # trial-steps: 2 configs x 3 trials x 20 steps
    assert "peak memory per cell" in text
    assert not out.exists()
    report = execute_sweep(cells_of({**tiny()}), tmp_path / "p", SERIAL, plan_only=True)
    assert report.plan is not None and report.plan.trials == 16
    assert report.plan.trial_steps == 16 * 20
    expected = sum(4 * (4 * n * 16 * 20 + 2 * n * 16) for n in (32, 64)) * 2
    assert report.plan.flops == pytest.approx(expected)  # 4 B m d T + 2 n m d per trial


def test_the_plan_counts_the_memory_of_the_threads_the_worker_runs(tmp_path):
    """The trial-wise engine keeps one copy of a trial's data per thread: a cell's peak is
    planned with the threads of the worker that runs it (``threads_per_slot``), not those of
    the planning process."""
    from stelab.engine.sizes import data_bytes
    from stelab.sweep.executors import SerialExecutor

    class WorkerThreads(SerialExecutor):
        def __init__(self, threads: int) -> None:
            self.threads = threads

        def threads_per_slot(self) -> int | None:
            return self.threads

    raw = tiny(ns=(256,), levels=(0.0,))
    raw["run"]["engine"] = "trialwise"
    cells = cells_of(raw)
    peaks = {k: execute_sweep(cells, tmp_path / f"t{k}", Execution(WorkerThreads(k),
                              progress=False), plan_only=True).plan.peak_bytes[0]
             for k in (1, 3)}
    assert peaks[3] - peaks[1] == 2 * data_bytes(cells[0].config)
