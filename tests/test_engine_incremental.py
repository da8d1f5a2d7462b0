"""The incremental engine gives the dense engine's outcomes, bit for bit, on varied configs;
engine selection; the exact-decision and gradient-sum primitives both engines rely on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stelab.engine import run_experiment, select_engine
from stelab.engine.decisions import DecisionRule
from stelab.engine.dense import run_dense
from stelab.engine.incremental import incremental_unsupported, run_incremental
from stelab.engine.passes import gradient_sums
from stelab.engine.problem import build_problem
from stelab.errors import ConfigError
from tests.helpers import make_config
from tests.legacy_engine import run_legacy

FIELDS = ("hamming", "ergodic_hamming", "final_loss", "loss", "final_u", "ergodic_at")


def _assert_same_outputs(a, b) -> None:
    for field in FIELDS:
        x, y = getattr(a, field), getattr(b, field)
        assert (x is None) == (y is None), field
        if x is not None:
            assert np.array_equal(x, y), field


def _both(cfg, trials: int, **incremental_options):
    problem = build_problem(cfg, list(range(trials)), torch.device("cpu"))
    return run_dense(problem, cfg), run_incremental(problem, cfg, **incremental_options)


CASES = [
    {},
    {"model": {"d": 24, "m": 3, "activation": "step"}, "train": {"n": 200, "steps": 40,
                                                                  "ste": "relu"}},
    {"noise": {"kind": "flip", "level": 0.05}, "train": {"n": 300, "steps": 60}},
    {"noise": {"kind": "gaussian", "level": 0.2}, "train": {"n": 120, "steps": 30}},
    {"data": {"normalization": "batchnorm"}, "train": {"n": 96, "steps": 30, "ste": "hardtanh"}},
    {"data": {"distribution": "exponential", "normalization": "whiten"},
     "train": {"n": 150, "steps": 30, "ste": "clipped_relu"}},
    {"data": {"distribution": "sparse_bernoulli", "normalization": "center"},
     "train": {"n": 64, "steps": 30, "init": "zero"}, "model": {"d": 16, "m": 2}},
    {"data": {"distribution": "rademacher"}, "train": {"n": 80, "steps": 30,
                                                       "weight_ste": "clipped"}},
    {"model": {"d": 3}, "train": {"n": 12, "steps": 25}},
]


@pytest.mark.parametrize("overrides", CASES)
@pytest.mark.parametrize("cache_columns", [0, 7, None, "every"])
def test_incremental_equals_dense(overrides, cache_columns):
    cfg = make_config(run={"trials": 6, "seed": 5, "device": "cpu"},
                      record={"loss_trajectory": True, "checkpoints": [2, 10]}, **overrides)
    if cache_columns == "every":  # the column-major layout: room for every column
        cache_columns = 6 * cfg.model.d
    dense, inc = _both(cfg, 6, cache_columns=cache_columns)
    _assert_same_outputs(dense, inc)


def test_incremental_equals_dense_with_full_passes_forced_by_timing():
    """The adaptive step chooser only changes how a step is computed, never its result."""
    cfg = make_config(model={"d": 32}, train={"n": 256, "steps": 60},
                      noise={"kind": "flip", "level": 0.02}, run={"trials": 8, "seed": 2})
    dense, inc = _both(cfg, 8, adaptive=True)
    _assert_same_outputs(dense, inc)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(
    d=st.sampled_from([2, 5, 16, 33]),
    m=st.sampled_from([1, 2, 4]),
    ratio=st.sampled_from([1, 3, 10]),
    activation=st.sampled_from(["sign", "step"]),
    ste=st.sampled_from(["identity", "relu", "clipped_relu", "hardtanh"]),
    distribution=st.sampled_from(["gaussian", "uniform01", "student_t", "sparse_bernoulli"]),
    normalization=st.sampled_from(["none", "center", "standardize", "whiten", "batchnorm"]),
    noise=st.sampled_from([("none", 0.0), ("flip", 0.05), ("gaussian", 0.1)]),
    init=st.sampled_from(["zero", "small"]),
    seed=st.integers(0, 1000),
    columns=st.booleans(),
)
def test_incremental_equals_dense_on_random_configs(
    d, m, ratio, activation, ste, distribution, normalization, noise, init, seed, columns
):
    cfg = make_config(
        model={"d": d, "m": m, "activation": activation},
        data={"distribution": distribution, "normalization": normalization},
        noise={"kind": noise[0], "level": noise[1]},
        train={"n": ratio * d, "steps": 25, "ste": ste, "init": init},
        run={"trials": 4, "seed": seed, "device": "cpu"},
        record={"loss_trajectory": True},
    )
    # a cache of 3 of the 4 trials' columns, or the column-major layout (room for all)
    dense, inc = _both(cfg, 4, cache_columns=(4 if columns else 3) * d)
    _assert_same_outputs(dense, inc)


def test_run_experiment_rows_do_not_depend_on_the_engine():
    base = {"model": {"d": 32}, "train": {"n": 200, "steps": 40},
            "record": {"trajectory": True}}
    rows = {engine: run_experiment(make_config(run={"trials": 5, "seed": 4, "device": "cpu",
                                                    "engine": engine}, **base))
            for engine in ("dense", "incremental")}
    assert rows["dense"]["engine"].eq("dense").all()
    assert rows["incremental"]["engine"].eq("incremental").all()
    drop = ["engine", "wall_seconds"]
    pd.testing.assert_frame_equal(rows["dense"].drop(columns=drop),
                                  rows["incremental"].drop(columns=drop))


def test_incremental_trial_results_independent_of_batch():
    cfg = make_config(model={"d": 20}, train={"n": 100, "steps": 30},
                      noise={"kind": "flip", "level": 0.05},
                      run={"trials": 12, "seed": 9, "device": "cpu", "engine": "incremental"},
                      record={"trajectory": True})
    together = run_experiment(cfg)
    alone = pd.concat([run_experiment(cfg, trials=[k]) for k in (0, 7, 11)], ignore_index=True)
    subset = together.iloc[[0, 7, 11]].reset_index(drop=True)
    pd.testing.assert_frame_equal(subset.drop(columns=["wall_seconds"]),
                                  alone.drop(columns=["wall_seconds"]))


# ----------------------------------------------------------------------- selection
def test_unsupported_configs_are_named():
    assert incremental_unsupported(make_config()) is None
    assert "batch_size" in incremental_unsupported(make_config(train={"n": 64, "steps": 5,
                                                                      "batch_size": 8}))
    assert "train.ste" in incremental_unsupported(make_config(train={"n": 64, "steps": 5,
                                                                     "ste": "swish"}))
    assert "run.dtype" in incremental_unsupported(make_config(run={"dtype": "float64"}))
    assert "run.device" in incremental_unsupported(make_config(run={"device": "cuda"}))


def test_forcing_incremental_on_an_unsupported_config_is_a_config_error():
    cfg = make_config(train={"n": 64, "steps": 5, "ste": "approx_sign"},
                      run={"engine": "incremental"})
    with pytest.raises(ConfigError, match="run.engine"):
        select_engine(cfg)


def test_auto_prefers_incremental_for_large_trials_and_dense_otherwise():
    big = make_config(model={"d": 256}, train={"n": 4096, "steps": 10})
    assert select_engine(big) == "trialwise"  # the trial-wise engine, at any size
    assert select_engine(make_config()) == "trialwise"
    # the batched form only: 4 KB of data per trial is not worth it
    recorded = make_config(record={"loss_trajectory": True})
    assert select_engine(recorded) == "dense"
    recorded_big = make_config(model={"d": 256}, train={"n": 4096, "steps": 10},
                               record={"loss_trajectory": True})
    assert select_engine(recorded_big) == "incremental"
    swish = make_config(model={"d": 256}, train={"n": 4096, "steps": 10, "ste": "swish"})
    assert select_engine(swish) == "dense"
    forced = make_config(model={"d": 256}, train={"n": 4096, "steps": 10},
                         run={"engine": "dense"})
    assert select_engine(forced) == "dense"


# ----------------------------------------------------------------------- primitives
def test_decisions_follow_the_exact_preactivation_near_a_threshold():
    """Entries within the error bound take the exact value's side, others the float's."""
    rule = DecisionRule("sign", "clipped_relu", None, 1)
    h = torch.tensor([[-1e-7, 0.5, 2.0, 1.0 + 1e-7, -3.0]])
    exact = torch.tensor([[1e-9, 0.5, 2.0, 1.0 - 1e-9, -3.0]], dtype=torch.float64)
    calls = []

    def exact_fn(local, rows):
        calls.append(rows.tolist())
        return exact[local, rows]

    dec = rule.decide(h, torch.tensor([1e-5], dtype=torch.float64), None,
                      torch.zeros(1, 5), exact_fn)
    assert calls == [[0, 3]]  # only the two entries near 0 and near 1
    assert dec.residual.tolist() == [[1.0, 1.0, 1.0, 1.0, -1.0]]  # sign(exact 1e-9) = +1
    # clipped_relu: 0 < h < 1 with exact values: entry 0 (1e-9) and entry 3 (1 - 1e-9) are in
    assert dec.coeff.tolist() == [[1.0, 1.0, 0.0, 1.0, 0.0]]


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    trials=st.integers(1, 4), rows_per_trial=st.integers(1, 300),
    d=st.sampled_from([1, 3, 16, 17, 100]), density=st.floats(0.0, 1.0),
    seed=st.integers(0, 10_000),
)
def test_gradient_sums_do_not_depend_on_zero_rows_or_other_trials(
    trials, rows_per_trial, d, density, seed
):
    """A trial's G is the same whether zero-coefficient rows are read or not, and whether it is
    summed alone or with other trials: what makes dense and incremental G bit-identical."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.randn(trials * rows_per_trial, d, generator=g) * 7
    coeff = torch.randn(trials, rows_per_trial, generator=g).round()
    coeff[torch.rand(trials, rows_per_trial, generator=g) > density] = 0.0
    together = gradient_sums(rows, coeff, 0, rows_per_trial)
    every_row = torch.stack([
        F.embedding_bag(torch.arange(rows_per_trial) + k * rows_per_trial, rows,
                        torch.tensor([0]), mode="sum", per_sample_weights=coeff[k])[0]
        for k in range(trials)
    ])
    assert torch.equal(together, every_row)
    last = gradient_sums(rows, coeff[-1:], torch.tensor([trials - 1]), rows_per_trial)
    assert torch.equal(last[0], together[-1])


def test_dense_engine_reproduces_the_first_engine_on_continuous_data():
    """The optimized dense engine against the first implementation (float32 through the model):
    on continuous data no pre-activation is within float error of a threshold here."""
    for overrides in CASES[:4]:
        cfg = make_config(run={"trials": 6, "seed": 1, "device": "cpu"}, **overrides)
        problem = build_problem(cfg, list(range(6)), torch.device("cpu"))
        assert np.array_equal(run_legacy(problem, cfg), run_dense(problem, cfg, freeze=False).hamming)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(d=st.sampled_from([1, 7, 64, 300]), scale_range=st.floats(0.0, 12.0),
       seed=st.integers(0, 10_000))
def test_gemv_bound_covers_the_float32_error(d, scale_range, seed):
    """|h_float32 - h_exact| <= bound for every row, also for entries of very different size."""
    from stelab.engine.passes import gemv_bound, preactivations

    g = torch.Generator().manual_seed(seed)
    Z = torch.randn(3, 200, 1, d, generator=g) * torch.exp(
        scale_range * torch.randn(3, 200, 1, d, generator=g)
    )
    q = torch.where(torch.rand(3, d, generator=g) < 0.5, 1.0, -1.0)
    Z3 = Z.view(3, 200, d)
    h32 = preactivations(Z3, Z3.numpy(), q, 0, 3)
    exact = torch.stack([(Z3[k].double() * q[k].double()).sum(-1) for k in range(3)])
    assert ((h32.double() - exact).abs() <= gemv_bound(Z)[:, None]).all()


def test_column_major_layout_is_used_and_gives_the_dense_outcomes(monkeypatch):
    """With room for every column, trials that need a full pass get all their columns copied
    (a blocked transpose) and later steps read the flipped columns from the copy; the outcomes
    stay those of the dense engine, bit for bit."""
    from stelab.engine import compiled

    copied_columns = []
    fill = compiled.fill_fresh

    def counting_fill(Zk, table, fresh, store):
        copied_columns.append(int(fresh[table[table >= 0]].sum()))
        fill(Zk, table, fresh, store)
        # every column copied is the trial's data, column by column
        slots = table[table >= 0]
        assert np.array_equal(store[slots], Zk[:, table >= 0].T)

    monkeypatch.setattr(compiled, "fill_fresh", counting_fill)
    cfg = make_config(model={"d": 96}, train={"n": 400, "steps": 60},
                      noise={"kind": "flip", "level": 0.05}, run={"trials": 5, "seed": 11},
                      record={"loss_trajectory": True, "checkpoints": [5, 30]})
    dense, inc = _both(cfg, 5, cache_columns=5 * 96)
    _assert_same_outputs(dense, inc)
    assert sum(copied_columns) == 5 * 96  # each trial's columns copied exactly once
