"""Analysis rough edges of issue 25: local exponents for several success notions and with
n_boot honoured; no CI around an n50 that is not reported."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from stelab import analysis
from stelab.analysis.threshold import fit_threshold


def _thresholds(success: str, alpha: float) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    d = np.array([16.0, 32.0, 64.0])
    n50 = 3.0 * d**alpha
    boot = [v * np.exp(0.05 * rng.standard_normal(400)) for v in n50]
    return pd.DataFrame({"d": d, "success": success, "n50": n50, "boot_n50": boot})


def test_local_exponents_per_success_notion():
    both = pd.concat([_thresholds("success_last", 1.0), _thresholds("success_ergodic", 2.0)])
    table = analysis.local_exponents(both)
    assert list(table.columns[:1]) == ["success"]
    by = table.groupby("success")["local_alpha"].apply(list).to_dict()
    assert np.allclose(by["success_last"], [1.0, 1.0]) and np.allclose(by["success_ergodic"], 2.0)
    assert table[["ci_low", "ci_high"]].notna().all().all()


def test_local_exponents_honour_n_boot():
    thr = _thresholds("success_last", 1.5)
    none = analysis.local_exponents(thr, n_boot=0)
    assert none[["ci_low", "ci_high"]].isna().all().all()
    few = analysis.local_exponents(thr, n_boot=20)
    every = analysis.local_exponents(thr)
    assert not np.allclose(few["ci_low"], every["ci_low"])  # 20 of the 400 replicates used


def test_an_n50_above_the_grid_gets_no_interval():
    n = np.repeat([16, 32, 64, 128], 40)
    p = np.array([0.02, 0.05, 0.1, 0.2]).repeat(40)
    success = np.random.default_rng(0).random(n.size) < p
    fit = fit_threshold(n, success, n_boot=200)
    assert math.isnan(fit.n50) and "above the largest" in fit.reason
    assert math.isnan(fit.ci_low) and math.isnan(fit.ci_high)
