"""The trial-wise engine gives the dense engine's outcomes, bit for bit; its gradient sums round
as ``embedding_bag`` does; where it applies."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stelab.engine import run_experiment
from stelab.engine.dense import run_dense
from stelab.engine.problem import build_problem
from stelab.engine.traffic import Traffic
from stelab.engine.trialwise import gradient_sums, run_trialwise, trialwise_unsupported
from stelab.errors import ConfigError
from tests.helpers import make_config
from tests.test_engine_incremental import CASES, _assert_same_outputs

SUPPORTED = [case for case in CASES if case.get("data", {}).get("normalization") != "batchnorm"]


def _both(cfg, trials: int, **options):
    problem = build_problem(cfg, list(range(trials)), torch.device("cpu"))
    return run_dense(problem, cfg), run_trialwise(problem, cfg, **options)


@pytest.mark.parametrize("overrides", SUPPORTED)
@pytest.mark.parametrize("copies", [False, True])
def test_trialwise_equals_dense(overrides, copies):
    cfg = make_config(run={"trials": 6, "seed": 5, "device": "cpu"},
                      record={"checkpoints": [2, 10]}, **overrides)
    dense, trialwise = _both(cfg, 6, copies=copies)
    _assert_same_outputs(dense, trialwise)


def test_the_column_copy_and_full_passes_are_taken_and_change_nothing():
    """d = 96 near the threshold with flip noise: many columns flip in the first steps (a full
    pass and a copy per trial), few later (updates from the copy), and the error bound forces
    periodic full passes."""
    cfg = make_config(model={"d": 96}, train={"n": 400, "steps": 80},
                      noise={"kind": "flip", "level": 0.05}, run={"trials": 5, "seed": 11},
                      record={"checkpoints": [5, 30]})
    problem = build_problem(cfg, list(range(5)), torch.device("cpu"))
    dense = run_dense(problem, cfg)
    traffic = Traffic()
    trialwise = run_trialwise(problem, cfg, traffic=traffic)
    _assert_same_outputs(dense, trialwise)
    assert traffic.copied_columns == 5 * 96
    assert traffic.update_columns > 0 and traffic.pass_rows > 5 * 400


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(
    d=st.sampled_from([2, 5, 16, 33, 70]),
    m=st.sampled_from([1, 2, 4]),
    ratio=st.sampled_from([1, 3, 10]),
    activation=st.sampled_from(["sign", "step"]),
    ste=st.sampled_from(["identity", "relu", "clipped_relu", "hardtanh"]),
    weight_ste=st.sampled_from(["identity", "clipped"]),
    distribution=st.sampled_from(["gaussian", "uniform01", "student_t", "sparse_bernoulli"]),
    normalization=st.sampled_from(["none", "center", "standardize", "whiten"]),
    noise=st.sampled_from([("none", 0.0), ("flip", 0.05), ("gaussian", 0.1)]),
    init=st.sampled_from(["zero", "small"]),
    seed=st.integers(0, 1000),
    copies=st.booleans(),
)
def test_trialwise_equals_dense_on_random_configs(
    d, m, ratio, activation, ste, weight_ste, distribution, normalization, noise, init, seed,
    copies,
):
    cfg = make_config(
        model={"d": d, "m": m, "activation": activation},
        data={"distribution": distribution, "normalization": normalization},
        noise={"kind": noise[0], "level": noise[1]},
        train={"n": ratio * d, "steps": 25, "ste": ste, "init": init, "weight_ste": weight_ste,
               "step_size": 0.05 if weight_ste == "clipped" else 0.5},
        run={"trials": 4, "seed": seed, "device": "cpu"},
        record={"checkpoints": [1, 7, 25]},
    )
    dense, trialwise = _both(cfg, 4, copies=copies)
    _assert_same_outputs(dense, trialwise)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(rows=st.integers(1, 300), d=st.integers(1, 70), density=st.floats(0.0, 1.0),
       kind=st.sampled_from(["residual", "sixteenths", "any"]), seed=st.integers(0, 10**6))
def test_gradient_sums_round_as_embedding_bag(rows, d, density, kind, seed):
    """The compiled sum and the batched engines' embedding_bag agree bit for bit, for the
    coefficients the engines make (residuals, multiples of 1/16 for m = 4) and any others."""
    rng = np.random.default_rng(seed)
    Z = (rng.standard_normal((rows, d)) * rng.choice([1e-3, 1.0, 1e3])).astype(np.float32)
    if kind == "residual":
        coeff = rng.choice(np.array([-2.0, 0.0, 2.0], dtype=np.float32), rows)
    elif kind == "sixteenths":
        coeff = (rng.integers(-32, 33, rows) / 16).astype(np.float32)
    else:
        coeff = rng.standard_normal(rows).astype(np.float32)
    coeff[rng.random(rows) > density] = 0.0
    G = np.empty(d, dtype=np.float32)
    count = gradient_sums(Z, coeff, G, np.empty(rows, dtype=np.int64))
    nonzero = np.flatnonzero(coeff)
    expected = F.embedding_bag(torch.from_numpy(nonzero), torch.from_numpy(Z),
                               torch.tensor([0]), mode="sum",
                               per_sample_weights=torch.from_numpy(coeff[nonzero]))[0]
    assert count == len(nonzero)
    assert np.array_equal(G, expected.numpy())


def test_where_the_trialwise_form_applies():
    assert trialwise_unsupported(make_config()) is None
    batchnorm = make_config(data={"normalization": "batchnorm"})
    assert trialwise_unsupported(batchnorm).startswith("data.normalization")
    loss = make_config(record={"loss_trajectory": True})
    assert trialwise_unsupported(loss).startswith("record.loss_trajectory")
    minibatch = make_config(train={"n": 64, "steps": 5, "batch_size": 8})
    assert trialwise_unsupported(minibatch).startswith("train.batch_size")
    problem = build_problem(batchnorm, [0], torch.device("cpu"))
    with pytest.raises(ConfigError, match="data.normalization"):
        run_trialwise(problem, batchnorm)


def test_rows_do_not_depend_on_the_form_of_the_engine():
    base = {"model": {"d": 40}, "train": {"n": 300, "steps": 50},
            "noise": {"kind": "flip", "level": 0.02}, "record": {"trajectory": True}}
    rows = {engine: run_experiment(make_config(run={"trials": 5, "seed": 4, "device": "cpu",
                                                    "engine": engine}, **base))
            for engine in ("dense", "auto")}
    assert rows["auto"]["engine"].eq("trialwise").all()  # the engine that ran
    drop = ["engine", "wall_seconds"]
    left, right = (rows[k].drop(columns=drop) for k in ("dense", "auto"))
    for column in left:
        assert all(np.array_equal(a, b) for a, b in zip(left[column], right[column],
                                                        strict=True)), column
