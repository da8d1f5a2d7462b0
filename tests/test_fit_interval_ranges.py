"""The analysis fits' intervals contain their point estimates and stay inside their quantity's
range (issue 23, item 2): n50 CIs (fit_threshold), alpha and C CIs (fit_scaling) and local
exponents' CIs. Property tests over random success rows (binomial draws at a few n and d)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from stelab import analysis as A

SETTINGS = settings(max_examples=40, deadline=None)
N_GRID = (50, 100, 200, 400)
D_GRID = (4, 8, 16)


@st.composite
def success_rows(draw) -> pd.DataFrame:
    """Per-trial rows (d, n, success_last): at each (d, n) ``trials`` binomial draws with a
    success probability that rises with n (as in a threshold) or is arbitrary."""
    trials = draw(st.integers(2, 12))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    records = []
    for d in D_GRID:
        rising = draw(st.booleans())
        probs = (np.sort(rng.uniform(0, 1, len(N_GRID))) if rising
                 else rng.uniform(0, 1, len(N_GRID)))
        for n, p in zip(N_GRID, probs, strict=True):
            for hit in rng.uniform(size=trials) < p:
                records.append({"d": d, "n": n, "success_last": bool(hit)})
    return pd.DataFrame(records)


def thresholds(rows: pd.DataFrame) -> pd.DataFrame:
    return A.thresholds_by(rows, by="d", success="success_last", n_boot=200, seed=3)


def contains(estimate: float, low: float, high: float) -> None:
    """Each reported end is on its side of the estimate (a nan end is 'not reported')."""
    assert math.isnan(low) or low <= estimate, (low, estimate, high)
    assert math.isnan(high) or estimate <= high, (low, estimate, high)


@SETTINGS
@given(success_rows())
def test_n50_interval_is_positive_and_contains_n50(rows):
    for fit in thresholds(rows).itertuples():
        if math.isnan(fit.n50):
            assert math.isnan(fit.ci_low) and math.isnan(fit.ci_high), fit
            continue
        for end in (fit.ci_low, fit.ci_high):
            assert math.isnan(end) or 0.0 < end < math.inf, fit
        contains(fit.n50, fit.ci_low, fit.ci_high)


@SETTINGS
@given(success_rows())
def test_alpha_and_c_intervals_contain_their_estimates(rows):
    fit = A.fit_scaling(thresholds(rows), n_boot=300, seed=1)
    if not math.isnan(fit.alpha):
        contains(fit.alpha, fit.alpha_ci_low, fit.alpha_ci_high)
    if not math.isnan(fit.C):
        assert math.isnan(fit.C_ci_low) or fit.C_ci_low > 0.0
        contains(fit.C, fit.C_ci_low, fit.C_ci_high)


@SETTINGS
@given(success_rows())
def test_local_exponent_intervals_contain_the_local_exponent(rows):
    for row in A.local_exponents(thresholds(rows)).itertuples():
        contains(row.local_alpha, row.ci_low, row.ci_high)


@st.composite
def skewed_thresholds(draw) -> pd.DataFrame:
    """A thresholds table whose bootstrap replicates sit off their n50 (as a penalized or
    parametric bootstrap can): log n50* = log n50 + shift + noise, shift drawn per d."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    n50 = np.exp(np.sort(rng.uniform(3.0, 9.0, len(D_GRID))))
    shifts = [draw(st.floats(-1.5, 1.5)) for _ in D_GRID]
    spread = draw(st.floats(0.01, 0.5))
    boots = [np.exp(np.log(v) + s + spread * rng.standard_normal(200))
             for v, s in zip(n50, shifts, strict=True)]
    return pd.DataFrame({"d": D_GRID, "success": "success_last", "n50": n50, "boot_n50": boots})


@SETTINGS
@given(skewed_thresholds())
def test_scaling_intervals_contain_estimates_under_skewed_replicates(table):
    fit = A.fit_scaling(table, n_boot=300, seed=1)
    contains(fit.alpha, fit.alpha_ci_low, fit.alpha_ci_high)
    contains(fit.C, fit.C_ci_low, fit.C_ci_high)
    for row in A.local_exponents(table).itertuples():
        contains(row.local_alpha, row.ci_low, row.ci_high)
