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
