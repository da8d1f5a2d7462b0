"""Every interval stelab prints or stores lies inside its quantity's range and contains its point
estimate; a sample too small for an interval gets none (issue 23, item 2). Property tests over
random rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stelab import analysis as A
from stelab.analysis.proportions import wilson_interval
from stelab.analysis.tables import MIN_SAMPLE, mean_ci
from stelab.realdata import CHANCE, summarize_digits
from stelab.results import summarize

SETTINGS = settings(max_examples=60, deadline=None)


def inside(estimate: float, low: float, high: float, lo: float, hi: float, size: int) -> None:
    """The oracle: no interval below MIN_SAMPLE values; else lo <= low <= estimate <= high <=
    hi."""
    if size < MIN_SAMPLE:
        assert math.isnan(low) and math.isnan(high), (size, low, high)
        return
    assert lo <= low <= estimate <= high <= hi, (lo, low, estimate, high, hi)


counts = st.lists(st.integers(0, 64), min_size=1, max_size=40)
shares = st.lists(st.floats(0.0, 1.0, allow_subnormal=False), min_size=1, max_size=40)


@SETTINGS
@given(counts)
def test_mean_of_a_count_stays_in_its_range(values):
    mean, low, high = mean_ci(np.array(values))
    inside(mean, low, high, 0, 64, len(values))


@SETTINGS
@given(shares, st.floats(0.5, 0.99))
def test_mean_of_a_share_stays_in_zero_one(values, confidence):
    mean, low, high = mean_ci(np.array(values), confidence)
    inside(mean, low, high, 0.0, 1.0, len(values))


@SETTINGS
@given(st.integers(0, 500), st.integers(1, 500))
def test_wilson_stays_in_zero_one_and_holds_the_rate(k, n):
    k = min(k, n)
    low, high = wilson_interval(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0


def test_the_two_trial_hamming_of_the_issue_gets_no_interval():
    """`stelab run` with 2 trials printed [-23.12, 53.12] for a Hamming distance."""
    rows = pd.DataFrame({"final_hamming": [0, 30], "success_last": [True, False]})
    printed = "\n".join(str(c) for col in summarize(rows).columns for c in col._cells)
    assert "too few trials for an interval" in printed and "-23" not in printed


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 32), st.floats(0, 1), st.integers(0, 50),
                          st.booleans()), min_size=1, max_size=30))
def test_run_summary_intervals_are_in_range(records):
    rows = pd.DataFrame(records, columns=["final_hamming", "occupation", "n_returns",
                                          "success_last"])
    table = summarize(rows)
    cells = [list(col._cells) for col in table.columns]
    ranges = {"final_hamming": (0, 32), "occupation": (0, 1), "n_returns": (0, 50)}
    for metric, estimate, ci in zip(cells[0], cells[1], cells[2], strict=True):
        if not ci.startswith("["):
            assert len(rows) < MIN_SAMPLE and "too few" in ci
            continue
        low, high = (float(x) for x in ci.strip("[]").split(","))
        lo, hi = ranges.get(metric.removeprefix("mean "), (0, 1))
        # printed to 4 significant digits: compare at that precision
        assert lo <= low <= float(estimate) * (1 + 1e-3) + 1e-9
        assert float(estimate) * (1 - 1e-3) - 1e-9 <= high <= hi


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from([0.0, 0.1, 0.2]), st.floats(0, 1)), min_size=1,
                max_size=40))
def test_grouped_means_and_accuracies_are_in_range(records):
    rows = pd.DataFrame(records, columns=["noise_level", "occupation"])
    for rec in A.mean_ci_by(rows, "occupation").itertuples():
        inside(rec.mean, rec.ci_low, rec.ci_high, 0.0, 1.0, rec.trials)
    digits = pd.DataFrame({"task": next(iter(CHANCE)), "model": "mlp", "normalization": "raw",
                           "test_accuracy": rows["occupation"], "train_accuracy": 1.0})
    for rec in summarize_digits(digits).itertuples():
        inside(rec.test_accuracy, rec.ci_low, rec.ci_high, 0.0, 1.0, rec.seeds)


@SETTINGS
@given(st.lists(st.lists(st.integers(0, 6), min_size=9, max_size=9), min_size=1, max_size=10))
def test_recurrence_intervals_are_in_range(paths):
    rows = pd.DataFrame({"trial": range(len(paths)), "noise_level": 0.1,
                         "hamming_trajectory": [np.array(p) for p in paths]})
    growth = A.return_growth(rows).iloc[0]
    T = 8
    for name, hi in (("returns", T), ("early_rate", T), ("late_rate", T)):
        est = growth["returns_mean" if name == "returns" else name]
        if math.isfinite(est):
            inside(est, growth[f"{name}_ci_low"], growth[f"{name}_ci_high"], 0.0, hi, len(paths))
    for rec in A.returns_vs_horizon(rows).itertuples():
        inside(rec.returns_mean, rec.returns_ci_low, rec.returns_ci_high, 0, rec.T, rec.trials)
        inside(rec.occupation_mean, rec.occupation_ci_low, rec.occupation_ci_high, 0, 1,
               rec.trials)


@pytest.mark.parametrize("size", range(1, MIN_SAMPLE + 2))
def test_too_small_a_sample_has_no_interval(size):
    mean, low, high = mean_ci(np.arange(size, dtype=float))
    assert mean == pytest.approx((size - 1) / 2)
    assert math.isnan(low) == (size < MIN_SAMPLE) and math.isnan(high) == (size < MIN_SAMPLE)


#: estimate column of each interval in the derived tables, and its range
_ESTIMATES = {
    "": (("rate", 0, 1), ("mean", 0, math.inf), ("mean_of_trial_means", 0, math.inf),
         ("test_accuracy", 0, 1)),
    "returns_": (("returns_mean", 0, math.inf),),
    "early_rate_": (("early_rate", 0, math.inf),),
    "late_rate_": (("late_rate", 0, math.inf),),
    "share_": (("share_returning_late", 0, 1),),
    "occupation_": (("occupation_mean", 0, 1),),
}


def test_every_stored_interval_of_a_reproduce_run_is_in_range(tmp_path):
    """E2 and E3 of the tiny profile end to end: every interval of the derived tables (success
    rates, returns, rates, occupation, return times) and of claims.json is in range."""
    import json

    from stelab.reproduction import reproduce
    from stelab.sweep import Execution
    from tests.soak import TINY

    out = tmp_path / "r"
    reproduce(TINY, out, Execution("serial", progress=False), only=["e2", "e3"],
              log=lambda _m: None)
    checked = 0
    for path in sorted((out / "tables").glob("summary_*.parquet")):
        frame = pd.read_parquet(path)
        for prefix, candidates in _ESTIMATES.items():
            if f"{prefix}ci_low" not in frame:
                continue
            est, lo, hi = next(c for c in candidates if c[0] in frame)
            for rec in frame.itertuples():
                low, high = getattr(rec, f"{prefix}ci_low"), getattr(rec, f"{prefix}ci_high")
                if math.isfinite(low) and math.isfinite(high):
                    assert lo <= low <= getattr(rec, est) <= high <= hi, (path.name, rec)
                    checked += 1
    assert checked > 20
    bounds = {"occupation_ci": (0, 1), "absorbed_ci": (0, 1), "late_rate_ci": (0, math.inf)}
    seen = _claims_intervals(json.loads((out / "claims.json").read_text()))
    for key, (low, high) in seen:
        lo, hi = bounds.get(key, (-math.inf, math.inf))
        assert lo <= low <= high <= hi, (key, low, high)
    assert {key for key, _ in seen} >= {"occupation_ci", "absorbed_ci", "late_rate_ci"}


def _claims_intervals(node, key: str = "") -> list[tuple[str, tuple[float, float]]]:
    """Every finite [low, high] under a key ending in 'ci' in claims.json."""
    if isinstance(node, dict):
        return [pair for k, v in node.items() for pair in _claims_intervals(v, k)]
    if isinstance(node, list):
        if key.endswith("ci") and len(node) == 2 and all(isinstance(x, float) for x in node):
            return [(key, (node[0], node[1]))]
        return [pair for v in node for pair in _claims_intervals(v, key)]
    return []
