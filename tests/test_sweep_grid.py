"""Sweep configs -> configs -> cells: grid order, validation messages, trial blocks."""

from __future__ import annotations

import pytest

from stelab.config import parse_config
from stelab.errors import ConfigError
from stelab.sweep import Cell, default_block_trials, expand_grid, make_cells, parse_sweep
from stelab.sweep.grid import MAX_CELL_FLOPS, MIN_CELL_VALUES, TARGET_CELL_FLOPS, trial_flops


def raw(**sweep):
    return {
        "model": {"d": [16, 32]},
        "train": {"n": [64, 128, 256], "steps": 20},
        "run": {"trials": 4, "device": "cpu"},
        "sweep": {"axes": ["model.d", "train.n"], **sweep},
    }


def test_product_in_listed_order_last_axis_fastest():
    spec = parse_sweep(raw())
    got = [(c.model.d, c.train.n) for c in spec.configs]
    assert got == [(16, 64), (16, 128), (16, 256), (32, 64), (32, 128), (32, 256)]
    assert spec.labels[1] == (("model.d", 16), ("train.n", 128))
    assert spec.axes == ["model.d", "train.n"]
    assert expand_grid(raw()) == spec.configs


def test_axis_order_follows_the_axes_list():
    r = raw()
    r["sweep"]["axes"] = ["train.n", "model.d"]
    got = [(c.model.d, c.train.n) for c in expand_grid(r)]
    assert got[:2] == [(16, 64), (32, 64)]


def test_no_sweep_table_and_no_lists_is_one_config():
    configs = expand_grid({"model": {"d": 16}, "train": {"n": 64, "steps": 20}})
    assert len(configs) == 1 and configs[0].model.d == 16


def test_list_on_a_key_that_is_not_an_axis_is_refused():
    r = raw()
    r["model"]["m"] = [1, 2]
    with pytest.raises(ConfigError, match=r"model\.m: a list of values .* not a sweep axis"):
        parse_sweep(r)


def test_list_without_sweep_table_is_refused():
    with pytest.raises(ConfigError, match=r"model\.d: a list of values"):
        parse_sweep({"model": {"d": [16, 32]}, "train": {"n": 64, "steps": 20}})


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda r: r["sweep"]["axes"].append("model.m"), r"sweep\.axes: 'model\.m' has no list"),
        (lambda r: r["model"].update(d=16), r"sweep\.axes: 'model\.d' has no list"),
        (lambda r: r["model"].update(d=[]), r"model\.d: the axis has no values"),
        (lambda r: r["model"].update(d=[16, 16.0]), r"model\.d: the axis lists the value 16"),
        (lambda r: r["sweep"].update(axis=["model.d"]), r"sweep\.axis: unknown key; allowed: axes"),
        (lambda r: r["sweep"]["axes"].append("model.d"), r"'model\.d' is listed twice"),
        (lambda r: r["sweep"].update(block_trials=0), r"sweep\.block_trials: 0"),
        (lambda r: r["sweep"].update(axes="model.d"), r"sweep\.axes: must be a list"),
    ],
)
def test_bad_sweep_tables_name_the_field(edit, pattern):
    r = raw()
    edit(r)
    with pytest.raises(ConfigError, match=pattern):
        parse_sweep(r)


def test_invalid_cell_names_the_field_and_the_cell():
    r = raw()
    r["train"]["batch_size"] = 100  # exceeds n = 64 in some cells only
    pattern = r"train\.batch_size: 100 exceeds .*model\.d=16, train\.n=64"
    with pytest.raises(ConfigError, match=pattern):
        parse_sweep(r)


def test_unknown_key_in_an_axis_is_reported_by_the_config_validator():
    r = raw()
    r["model"]["dd"] = [1, 2]
    r["sweep"]["axes"].append("model.dd")
    with pytest.raises(ConfigError, match=r"model\.dd: unknown key"):
        parse_sweep(r)


def test_zip_groups_vary_together():
    r = raw()
    r["sweep"]["axes"] = ["model.d"]
    r["sweep"]["zip"] = [["train.n", "train.steps"]]
    r["train"]["steps"] = [10, 20, 30]
    configs = expand_grid(r)
    assert [(c.model.d, c.train.n, c.train.steps) for c in configs][:3] == [
        (16, 64, 10), (16, 128, 20), (16, 256, 30)
    ]
    assert len(configs) == 6
    r["sweep"]["zip"] = ["train.n", "train.steps"]  # one flat group is accepted too
    assert expand_grid(r) == configs
    r["train"]["steps"] = [10, 20]
    pattern = r"sweep\.zip: .* equal lengths \(train\.n: 3, train\.steps: 2\)"
    with pytest.raises(ConfigError, match=pattern):
        parse_sweep(r)


def test_axes_inside_tables():
    r = {
        "model": {"d": 16},
        "data": {"distribution": "student_t", "params": {"df": [2.0, 5.0]}},
        "train": {"n": 64, "steps": 20},
        "sweep": {"axes": ["data.params.df"]},
    }
    assert [c.data.params["df"] for c in expand_grid(r)] == [2.0, 5.0]


def test_same_config_twice_is_refused():
    r = raw()
    r["model"]["m"] = [1, 1.0]  # pydantic makes both the int 1 -> caught as a duplicate value
    r["sweep"]["axes"].append("model.m")
    with pytest.raises(ConfigError, match="twice"):
        parse_sweep(r)
    r = raw()
    r["noise"] = {"kind": ["none", "flip"]}  # kind flip at level 0 differs from none: distinct
    r["sweep"]["axes"].append("noise.kind")
    assert len(expand_grid(r)) == 12


def test_blocks_cover_every_trial_once_and_keys_name_config_and_block():
    cfg = parse_config({"model": {"d": 16}, "train": {"n": 64, "steps": 20}, "run": {"trials": 8}})
    cells = make_cells([cfg], block_trials=3)
    assert [(c.start, c.stop) for c in cells] == [(0, 3), (3, 6), (6, 8)]
    blocks = ((0, 3), (3, 6), (6, 8))
    assert [c.key for c in cells] == [f"{cfg.digest()}-t{a}-{b}" for a, b in blocks]
    assert Cell(cfg, 0, 3) == cells[0]
    other = parse_config({"model": {"d": 16}, "train": {"n": 64, "steps": 21},
                          "run": {"trials": 8}})
    assert make_cells([other], 3)[0].key != cells[0].key


def test_default_block_follows_the_work_not_the_machine():
    small = parse_config({"model": {"d": 16}, "train": {"n": 64, "steps": 20},
                          "run": {"trials": 50}})
    assert default_block_trials(small) == 50
    big = parse_config({"model": {"d": 512}, "train": {"n": 200000, "steps": 500},
                        "run": {"trials": 50}})
    assert trial_flops(big) > TARGET_CELL_FLOPS and default_block_trials(big) == 1
    mid = parse_config({"model": {"d": 128}, "train": {"n": 8192, "steps": 50},
                        "run": {"trials": 1000}})
    block = default_block_trials(mid)
    assert 1 < block < 1000 and block & (block - 1) == 0
    assert block * trial_flops(mid) <= TARGET_CELL_FLOPS < 2 * block * trial_flops(mid)


def test_default_block_holds_enough_data_to_pay_for_the_cell():
    """Trials that are long on paper but small in data (most stop early) are grouped until a
    cell holds MIN_CELL_VALUES input values: the smallest power of two that reaches it."""
    cfg = parse_config({"model": {"d": 256}, "train": {"n": 8192, "steps": 2000},
                        "run": {"trials": 100}})
    values = 256 * 8192
    assert 2 * trial_flops(cfg) > TARGET_CELL_FLOPS  # the flops rule alone: one trial a cell
    block = default_block_trials(cfg)
    assert block & (block - 1) == 0
    assert block * values >= MIN_CELL_VALUES > block // 2 * values
    assert default_block_trials(cfg.model_copy(update={"run": cfg.run.model_copy(
        update={"trials": 5})})) == 5  # never more than the config's trials
    assert [c.stop - c.start for c in make_cells([cfg])] == [16] * 6 + [4]
    # long trials of small data: grouped only up to MAX_CELL_FLOPS of dense work a cell
    long = parse_config({"model": {"d": 128}, "train": {"n": 4096, "steps": 50000},
                         "run": {"trials": 64}})
    block = default_block_trials(long)
    assert 1 < block and block * 128 * 4096 < MIN_CELL_VALUES
    assert block * trial_flops(long) <= MAX_CELL_FLOPS < 2 * block * trial_flops(long)
