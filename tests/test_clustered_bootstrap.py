"""The clustered bootstrap of n50: it resamples (run seed, trial) units jointly across n."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stelab.analysis import fit_threshold, thresholds_by
from stelab.analysis.clustered import clustered_counts, unit_weights
from stelab.errors import DataError

GRID = 2.0 ** (np.arange(8, 21) / 2)  # 16 ... 1024, 13 values
TRIALS = 64


def crn_run(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One run with common random numbers: trial k has a latent critical n (lognormal) and
    succeeds at every n >= it, on every n of the grid."""
    n_crit = np.exp(rng.normal(np.log(128.0), 0.8, TRIALS))
    n = np.repeat(GRID, TRIALS)
    trial = np.tile(np.arange(TRIALS), GRID.size)
    return n, n >= n_crit[trial], trial


def independent_run(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """The same success probabilities, but a fresh latent n at every (n, trial): independent n."""
    n = np.repeat(GRID, TRIALS)
    n_crit = np.exp(rng.normal(np.log(128.0), 0.8, n.size))
    return n, n >= n_crit, np.tile(np.arange(TRIALS), GRID.size), np.repeat(np.arange(GRID.size),
                                                                             TRIALS)


def mean_boot_sd(runs, bootstrap: str) -> float:
    sds = []
    for r, (n, success, trial, *stratum) in enumerate(runs):
        fit = fit_threshold(n, success, n_boot=300, seed=r, bootstrap=bootstrap, cluster=trial,
                            stratum=stratum[0] if stratum else None)
        assert fit.bootstrap == bootstrap
        sds.append(np.nanstd(fit.boot_n50, ddof=1))
    return float(np.mean(sds))


def test_clustered_bootstrap_matches_the_spread_of_n50_under_common_random_numbers():
    rng = np.random.default_rng(1)
    true_sd = np.std([fit_threshold(*crn_run(rng)[:2], n_boot=0).n50 for _ in range(300)],
                     ddof=1)
    runs = [crn_run(rng) for _ in range(30)]
    clustered = mean_boot_sd(runs, "clustered") / true_sd
    per_n = mean_boot_sd(runs, "trials") / true_sd
    assert 0.8 < clustered < 1.25, clustered
    assert per_n < 0.7, per_n  # resampling trials within each n is far too narrow here


def test_one_seed_per_n_reduces_to_per_n_resampling():
    rng = np.random.default_rng(2)
    true_sd = np.std([fit_threshold(*independent_run(rng)[:2], n_boot=0).n50
                      for _ in range(300)], ddof=1)
    runs = [independent_run(rng) for _ in range(30)]
    clustered = mean_boot_sd(runs, "clustered") / true_sd
    per_n = mean_boot_sd(runs, "trials") / true_sd
    assert 0.8 < clustered < 1.25 and 0.8 < per_n < 1.25, (clustered, per_n)
    assert abs(clustered / per_n - 1.0) < 0.15


def test_a_drawn_trial_brings_its_rows_at_every_n():
    n, success, trial = crn_run(np.random.default_rng(3))
    point = np.searchsorted(GRID, n)
    k, m = clustered_counts(point, success, trial, np.zeros(n.size, int), GRID.size, 50, 0)
    assert (m == TRIALS).all()  # balanced: every unit has one row at every n
    assert (np.diff(k, axis=1) >= 0).all()  # monotone in n, as every trial is
    assert not (np.diff(k, axis=0) == 0).all()


def test_units_are_drawn_within_their_stratum():
    strata = np.array([5, 5, 5, 9, 9])
    weights = unit_weights(strata, np.array([5, 9]), n_boot=200, seed=1)
    assert (weights[:, :3].sum(1) == 3).all() and (weights[:, 3:].sum(1) == 2).all()


def _rows(d_values=(16, 32), seeds=(7,)) -> pd.DataFrame:
    frames = []
    for seed in seeds:
        n, success, trial = crn_run(np.random.default_rng(seed))
        for d in d_values:
            frames.append(pd.DataFrame({"d": d, "n": n, "success_last": success,
                                        "trial": trial, "seed": seed}))
    return pd.concat(frames, ignore_index=True)


def test_thresholds_by_uses_the_clustered_bootstrap_and_pairs_shared_units():
    fits = thresholds_by(_rows(), success="success_last", n_boot=100)
    assert (fits["bootstrap"] == "clustered").all()
    # the same run seed and trials at both d: the same draws, so the replicates pair by index
    np.testing.assert_array_equal(fits["boot_n50"].iloc[0], fits["boot_n50"].iloc[1])
    per_n = thresholds_by(_rows(), success="success_last", n_boot=100, bootstrap="trials")
    assert (per_n["bootstrap"] == "trials").all()
    assert not np.array_equal(per_n["boot_n50"].iloc[0], per_n["boot_n50"].iloc[1])


def test_different_run_seeds_are_drawn_independently():
    rows = _rows(d_values=(16,), seeds=(7, 8))
    rows["d"] = np.where(rows["seed"] == 7, 16, 32)
    fits = thresholds_by(rows, success="success_last", n_boot=200)
    a, b = (np.log(fits["boot_n50"].iloc[i]) for i in (0, 1))
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.2


def test_without_unit_columns_auto_is_the_per_n_bootstrap():
    rows = _rows().drop(columns=["trial"])
    assert (thresholds_by(rows, success="success_last", n_boot=20)["bootstrap"] == "trials").all()
    with pytest.raises(DataError, match=r"rows.trial, rows.seed"):
        thresholds_by(rows, success="success_last", n_boot=20, bootstrap="clustered")


def test_clustered_bootstrap_refuses_bad_units():
    n, success, trial = crn_run(np.random.default_rng(4))
    with pytest.raises(DataError, match="^cluster: "):
        fit_threshold(n, success, n_boot=10, bootstrap="clustered")
    with pytest.raises(DataError, match="^cluster: .*integers >= 0"):
        fit_threshold(n, success, n_boot=10, cluster=trial - 1.5)
    with pytest.raises(DataError, match="^stratum: .*same length"):
        fit_threshold(n, success, n_boot=10, cluster=trial, stratum=np.zeros(3, int))


def test_separated_data_still_use_the_parametric_bootstrap():
    n = np.repeat([10.0, 20.0, 40.0, 80.0], 8)
    success = n >= 40
    fit = fit_threshold(n, success, n_boot=50, cluster=np.tile(np.arange(8), 4))
    assert fit.separated and fit.bootstrap == "parametric"
