"""stelab.load: run, sweep and reproduce folders (the committed results/quick and results/full,
fresh ones written here), alpha = n/d, success arrays over the grid, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import stelab
from stelab.cli import app
from stelab.loading import ResultsFolderError, load, success_array

ROOT = Path(__file__).resolve().parents[1]
SWEEP = {
    "model": {"d": [8, 16], "m": 1},
    "noise": {"kind": "flip", "level": [0.0, 0.1]},
    "train": {"n": [8, 64], "steps": 20, "step_size": 0.5},
    "run": {"trials": 6, "seed": 3, "device": "cpu"},
    "sweep": {"axes": ["train.n", "model.d", "noise.level"]},
}


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sweep")
    stelab.run_sweep(SWEEP, out, execution=stelab.Execution("serial", progress=False))
    return out


def test_load_is_lazy_and_keeps_import_light() -> None:
    code = ("import sys, stelab; assert 'stelab.loading' not in sys.modules; "
            "assert 'torch' not in sys.modules; stelab.load; from stelab import analysis, figures; "
            "print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr


def test_fresh_sweep_folder(sweep_folder: Path) -> None:
    res = load(sweep_folder)
    assert res.kind == "sweep"
    assert res.axes == ("n", "d", "noise_level")  # the declared order, mapped to columns
    assert len(res.rows) == 2 * 2 * 2 * 6
    np.testing.assert_array_equal(res.rows["alpha"], res.rows["n"] / res.rows["d"])
    assert res.derived == {}
    assert repr(res) == (f"Results(kind='sweep', folder='{sweep_folder}', "
                         "tables={results: 48 rows}, axes=('n', 'd', 'noise_level'))")


def test_sweep_to_xarray_matches_the_rows(sweep_folder: Path) -> None:
    pytest.importorskip("xarray")
    res = load(sweep_folder)
    arr = res.to_xarray()
    assert arr["rate"].dims == ("n", "d", "noise_level", "metric")
    assert list(arr["d"].values) == [8, 16]
    rows = res.rows
    pick = rows[(rows.d == 16) & (rows.n == 64) & (rows.noise_level == 0.1)]
    got = arr["rate"].sel(n=64, d=16, noise_level=0.1, metric="success_last").item()
    assert got == pytest.approx(pick["success_last"].mean())
    assert int(arr["trials"].sel(n=8, d=8, noise_level=0.0, metric="success_ergodic")) == 6
    low, high = arr["ci_low"].values, arr["ci_high"].values
    assert np.all((low >= 0) & (low <= arr["rate"].values) & (high <= 1))


def test_fresh_cli_run_and_sweep_folders(tmp_path: Path) -> None:
    """Folders written by the commands themselves, as a user gets them."""
    (tmp_path / "run.toml").write_text(
        '[model]\nd = 8\n[train]\nn = 40\nsteps = 10\n[run]\ntrials = 5\ndevice = "cpu"\n')
    (tmp_path / "sweep.toml").write_text(
        '[model]\nd = [8, 16]\n[train]\nn = 32\nsteps = 10\n[run]\ntrials = 3\n'
        'device = "cpu"\n[sweep]\naxes = ["model.d"]\n')
    runner = CliRunner()
    done = runner.invoke(app, ["run", str(tmp_path / "run.toml"), "--out", str(tmp_path / "r")])
    assert done.exit_code == 0, done.output
    done = runner.invoke(app, ["sweep", str(tmp_path / "sweep.toml"), "--out",
                               str(tmp_path / "s"), "--executor", "serial"])
    assert done.exit_code == 0, done.output
    run = load(tmp_path / "r")
    assert run.kind == "run" and run.axes == () and len(run.rows) == 5
    assert (run.rows["alpha"] == 5.0).all()
    sweep = load(tmp_path / "s")
    assert sweep.kind == "sweep" and sweep.axes == ("d",)
    assert sorted(sweep.rows["alpha"].unique()) == [2.0, 4.0]


@pytest.mark.parametrize("name", ["quick", "full"])
def test_committed_reproduce_folders(name: str) -> None:
    res = load(ROOT / "results" / name)
    assert res.kind == "reproduce"
    assert {"e1", "e2", "e4", "e5", "e6"} <= set(res.tables)
    e1 = res.table("e1")
    np.testing.assert_allclose(e1["alpha"], e1["n"] / e1["d"])
    stored = pd.read_parquet(ROOT / "results" / name / "tables" / "summary_e1_thresholds.parquet")
    pd.testing.assert_frame_equal(res.table("e1_thresholds"), stored)
    assert res.manifest["profile"] == name
    assert set(res.rows["table"]) == set(res.tables)


def test_reproduce_to_xarray_needs_a_table_name() -> None:
    res = load(ROOT / "results" / "quick")
    with pytest.raises(ResultsFolderError, match="several per-trial tables"):
        res.to_xarray()
    pytest.importorskip("xarray")
    arr = res.to_xarray(table="e4", axes=("distribution", "normalization"),
                        success="success_last")
    assert arr["rate"].dims == ("distribution", "normalization", "metric")


def test_success_array_leaves_missing_combinations_nan() -> None:
    pytest.importorskip("xarray")
    rows = pd.DataFrame({"d": [8, 8, 16], "n": [10, 20, 20],
                         "success_last": [True, False, True]})
    arr = success_array(rows, ("d", "n"), "success_last")
    assert np.isnan(arr["rate"].sel(d=16, n=10, metric="success_last").item())
    assert arr["rate"].sel(d=8, n=10, metric="success_last").item() == 1.0
    with pytest.raises(ResultsFolderError, match="axes: 'steps' is not a column"):
        success_array(rows, ("steps",))


def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ResultsFolderError) as err:
        load(tmp_path / "missing")
    assert "does not exist" in _one_line(err)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ResultsFolderError) as err:
        load(tmp_path)
    assert "is not a results folder" in _one_line(err)
    with pytest.raises(ResultsFolderError) as err:
        load(tmp_path / "notes.txt")
    assert "is not a folder" in _one_line(err)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other/1"}))
    with pytest.raises(ResultsFolderError) as err:
        load(tmp_path)
    assert "not a sweep folder" in _one_line(err)


def test_damaged_or_empty_tables_are_refused(tmp_path: Path) -> None:
    (tmp_path / "results.parquet").write_bytes(b"not parquet")
    with pytest.raises(ResultsFolderError) as err:
        load(tmp_path)
    assert "not a readable Parquet table" in _one_line(err)
    pd.DataFrame({"d": pd.Series([], dtype=int)}).to_parquet(tmp_path / "results.parquet")
    with pytest.raises(ResultsFolderError) as err:
        load(tmp_path)
    assert "has no rows" in _one_line(err)


def test_unknown_table_lists_the_known_ones() -> None:
    res = load(ROOT / "results" / "quick")
    with pytest.raises(ResultsFolderError) as err:
        res.table("e9")
    assert "available: e1, " in _one_line(err)



def test_a_table_whose_bytes_changed_is_refused_by_load(tmp_path: Path) -> None:
    """stelab.load reads through the checksums: a run's table with one bit flipped (which may
    still decode) is refused in one line naming the file, never served."""
    (tmp_path / "run.toml").write_text(
        '[model]\nd = 8\n[train]\nn = 40\nsteps = 10\n[run]\ntrials = 5\ndevice = "cpu"\n')
    done = CliRunner().invoke(app, ["run", str(tmp_path / "run.toml"), "--out", str(tmp_path / "r")])
    assert done.exit_code == 0, done.output
    table = tmp_path / "r" / "results.parquet"
    data = bytearray(table.read_bytes())
    data[len(data) // 2] ^= 0x01
    table.write_bytes(bytes(data))
    with pytest.raises(ResultsFolderError, match="results.parquet.*checksum mismatch") as err:
        load(tmp_path / "r")
    assert "\n" not in str(err.value)
