"""``train.n_over_d`` as a sweep axis, and the grid helpers in the public API (issue 25)."""

from __future__ import annotations

import pytest

import stelab
from stelab.errors import ConfigError
from stelab.sweep.grid import parse_sweep, sample_size_of


def _raw(**train) -> dict:
    return {
        "model": {"d": [16, 40]},
        "train": {"steps": 10, **train},
        "run": {"trials": 2},
        "sweep": {"axes": ["model.d", "train.n_over_d"]},
    }


def test_n_over_d_axis_gives_n_rounded_per_d():
    spec = parse_sweep(_raw(n_over_d=[0.5, 1.41, 4]))
    got = [(c.model.d, c.train.n) for c in spec.configs]
    # 16 * 1.41 = 22.56 -> 23; 40 * 1.41 = 56.4 -> 56; n = 0.5 d exactly
    assert got == [(16, 8), (16, 23), (16, 64), (40, 20), (40, 56), (40, 160)]
    assert spec.labels[1] == (("model.d", 16), ("train.n_over_d", 1.41))


def test_rounding_rule_halves_to_even():
    assert sample_size_of(0.5, 5) == 2  # 2.5 -> 2
    assert sample_size_of(0.7, 5) == 4  # 3.5 -> 4
    assert sample_size_of(1.1, 10) == 11  # 11.000000000000002 -> 11 (a ceiling would give 12)


def test_n_over_d_scalar_and_errors():
    spec = parse_sweep({"model": {"d": 32}, "train": {"n_over_d": 2, "steps": 5}})
    assert spec.configs[0].train.n == 64
    with pytest.raises(ConfigError, match="not both"):
        parse_sweep({"model": {"d": 32}, "train": {"n_over_d": 2, "n": 64, "steps": 5}})
    with pytest.raises(ConfigError, match="train.n_over_d: -1 is not allowed"):
        parse_sweep({"model": {"d": 32}, "train": {"n_over_d": -1, "steps": 5}})
    with pytest.raises(ConfigError, match="rounds to n = 0"):
        parse_sweep({"model": {"d": 4}, "train": {"n_over_d": 0.1, "steps": 5}})
    with pytest.raises(ConfigError, match="same config"):  # 1.0 and 1.01 x 16 both give n = 16
        parse_sweep({"model": {"d": 16}, "train": {"n_over_d": [1.0, 1.01], "steps": 5},
                     "sweep": {"axes": ["train.n_over_d"]}})


def test_grid_helpers_are_public():
    for name in ("run_cells", "expand_grid", "make_cells", "parse_sweep"):
        assert name in stelab.__all__ and callable(getattr(stelab, name))
    configs = stelab.expand_grid(_raw(n_over_d=[1, 2]))
    assert [c.train.n for c in configs] == [16, 32, 40, 80]
    assert len(stelab.make_cells(configs, block_trials=1)) == 8


def test_run_cells_from_the_top_level(tmp_path):
    configs = stelab.expand_grid(_raw(n_over_d=[1, 2]))
    rows = stelab.run_cells(configs, tmp_path, executor="serial", progress=False)
    assert sorted(set(zip(rows["d"], rows["n"], strict=True))) == [
        (16, 16), (16, 32), (40, 40), (40, 80)]


def test_a_single_run_takes_n_over_d_too(tmp_path):
    """`stelab run` reads train.n_over_d as a sweep does (it used to say 'train.n: required
    field is missing'), and a bad value is refused in one line naming train.n_over_d."""
    from typer.testing import CliRunner

    from stelab.cli import app
    from stelab.config import parse_config

    assert parse_config({"model": {"d": 10}, "train": {"n_over_d": 1.25, "steps": 5}}).train.n == 12
    raw = {"model": {"d": 8}, "train": {"n_over_d": 2, "steps": 5}}
    parse_config(raw)
    assert raw["train"] == {"n_over_d": 2, "steps": 5}  # the caller's mapping is left as it is
    (tmp_path / "ok.toml").write_text(
        '[model]\nd = 8\n[train]\nn_over_d = 2\nsteps = 10\n[run]\ntrials = 2\ndevice = "cpu"\n')
    done = CliRunner().invoke(app, ["run", str(tmp_path / "ok.toml"), "--out", str(tmp_path / "r")])
    assert done.exit_code == 0, done.output
    import pandas as pd

    assert (pd.read_parquet(tmp_path / "r" / "results.parquet")["n"] == 16).all()
    (tmp_path / "bad.toml").write_text('[model]\nd = 8\n[train]\nn_over_d = -1\nsteps = 10\n')
    done = CliRunner().invoke(app, ["run", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "b")])
    assert done.exit_code != 0
    assert "train.n_over_d: -1 is not allowed" in done.output
