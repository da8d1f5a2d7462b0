"""Estimators of stelab.analysis on synthetic data with known answers, and the experiments'
figures drawn from rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import expit, log_ndtr, ndtr

from stelab import analysis as A
from stelab.analysis.proportions import wilson_interval
from stelab.errors import DataError
from stelab.experiments import e1_plots, e2, e3, e4

GRID = np.unique(np.round(np.geomspace(10, 1000, 8)))


def logistic_trials(rng, n50, slope, per_n=40, grid=GRID):
    n = np.repeat(grid, per_n)
    return n, rng.random(n.size) < expit(slope * (np.log(n) - math.log(n50)))


# ---------------------------------------------------------------- thresholds


def test_threshold_recovers_known_n50_and_ci_covers():
    n, s = logistic_trials(np.random.default_rng(0), 100.0, 3.0, per_n=80)
    fit = A.fit_threshold(n, s, n_boot=500, seed=1)
    assert fit.converged and fit.identified and fit.reason == ""
    assert abs(math.log(fit.n50 / 100.0)) < 0.15
    assert fit.ci_low < 100.0 < fit.ci_high
    assert fit.ci_low < fit.n50 < fit.ci_high
    assert 1.5 < fit.slope < 5.0
    assert fit.boot_n50.shape == (500,)
    assert fit.predict(fit.n50) == pytest.approx(0.5)


@pytest.mark.parametrize("link", ["logit", "probit"])
def test_threshold_ci_coverage_over_replicates(link):
    rng = np.random.default_rng(11)
    covered, widths = 0, []
    for r in range(50):
        n, s = logistic_trials(rng, 100.0, 3.0)
        fit = A.fit_threshold(n, s, link=link, n_boot=200, seed=r)
        covered += fit.ci_low <= 100.0 <= fit.ci_high
        widths.append(math.log(fit.ci_high / fit.ci_low))
    # 50 replicates of a nominal 95% interval: with coverage 0.95, P(covered < 40) = 3e-5
    # (binomial), so 40 is the bound at a false-failure rate below 1e-4
    assert covered >= 40
    # not trivially wide: about +-20% around n50 for 320 trials
    assert np.median(widths) < math.log(2.0)


def _penalized_objective(beta, x, k, m, link, firth=True):
    eta = beta[0] + beta[1] * x
    if link == "logit":
        p = expit(eta)
        log_p, log_q = np.log(p), np.log1p(-p)
        w = m * p * (1 - p)
    else:
        log_p, log_q = log_ndtr(eta), log_ndtr(-eta)
        dens = np.exp(-eta**2 / 2) / math.sqrt(2 * math.pi)
        w = m * dens**2 / (ndtr(eta) * ndtr(-eta))
    ll = (k * log_p + (m - k) * log_q).sum()
    X = np.stack([np.ones_like(x), x], axis=1)
    pen = 0.5 * np.linalg.slogdet(X.T @ (w[:, None] * X))[1] if firth else 0.0
    return -(ll + pen)


@pytest.mark.parametrize("link", ["logit", "probit"])
@pytest.mark.parametrize("penalty", ["firth", "none"])
def test_scoring_solver_matches_direct_optimization(link, penalty):
    x = np.linspace(-2, 2, 6)
    m = np.full(6, 12.0)
    k = np.array([0, 2, 3, 7, 10, 12.0])
    beta, conv = A.fit_binomial_curves(x, k[None, :], m, link, penalty)
    ref = minimize(_penalized_objective, np.zeros(2), args=(x, k, m, link, penalty == "firth"),
                   method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12})
    assert conv[0]
    np.testing.assert_allclose(beta[0], ref.x, atol=1e-4)


def test_separated_grid_gives_finite_penalized_n50_inside_gap():
    n = np.repeat([10, 20, 40, 80, 160], 10)
    s = n >= 80
    fit = A.fit_threshold(n, s, n_boot=300)
    assert fit.separated and fit.bootstrap == "parametric" and fit.note
    assert 40 < fit.n50 < 80
    assert fit.ci_low < fit.n50 < fit.ci_high  # not a zero-width interval
    unpenalized = A.fit_threshold(n, s, penalty="none", n_boot=0)
    assert math.isnan(unpenalized.n50) and "separation" in unpenalized.reason


@pytest.mark.parametrize(
    ("outcome", "words"),
    [(True, "all trials succeed"), (False, "no successes")],
)
def test_non_bracketing_grid_gives_nan_with_reason(outcome, words):
    n = np.repeat([10, 20, 40], 5)
    fit = A.fit_threshold(n, np.full(n.size, outcome), n_boot=50)
    assert math.isnan(fit.n50) and math.isnan(fit.ci_low) and not fit.identified
    assert words in fit.reason


def test_threshold_outside_grid_is_not_identified():
    n, s = logistic_trials(np.random.default_rng(3), 5.0, 1.5, per_n=30)  # n50 below 10
    fit = A.fit_threshold(n, s, n_boot=100)
    assert not s.all()
    assert math.isnan(fit.n50) and not fit.identified
    assert fit.n50_fit < GRID[0] and "extrapolated below" in fit.reason


def test_thresholds_by_groups_and_checks_fixed_setting():
    rng = np.random.default_rng(4)
    frames = []
    for d in (8, 16):
        n, s = logistic_trials(rng, 5.0 * d, 3.0, per_n=20)
        frames.append(pd.DataFrame({"d": d, "n": n, "steps": 100, "success_last": s,
                                    "success_ergodic": s}))
    rows = pd.concat(frames, ignore_index=True)
    table = A.thresholds_by(rows, "d", n_boot=50)
    assert list(table["d"]) == [8, 8, 16, 16]
    assert set(table["success"]) == {"success_last", "success_ergodic"}
    # the truth is n50 = 5 d: within z = 3.89 (two-sided 1e-4) asymptotic standard errors of
    # log n50, se = 1 / (b sqrt(sum_j m_j p_j (1 - p_j))) (Fisher information of the logistic
    # fit at the true curve, slope b = 3, 20 trials per n)
    for d, n50 in table.groupby("d")["n50"]:
        p = expit(3.0 * (np.log(GRID) - math.log(5.0 * d)))
        se = 1.0 / (3.0 * math.sqrt((20 * p * (1 - p)).sum()))
        assert np.abs(np.log(n50.to_numpy() / (5.0 * d))).max() <= 3.89 * se
    rows.loc[rows.index[:5], "steps"] = 200
    with pytest.raises(DataError, match="rows.steps"):
        A.thresholds_by(rows, "d", n_boot=0)
    assert len(A.thresholds_by(rows, "d", n_boot=0, vary=("steps",))) == 4


# ---------------------------------------------------------------- scaling


def synthetic_thresholds(rng, alpha, ds=(16, 32, 64, 128, 256), c=0.5, per_n=30, n_boot=300):
    frames = []
    for d in ds:
        n50 = c * d**alpha
        n, s = logistic_trials(rng, n50, 4.0, per_n, np.unique(np.round(n50 * np.geomspace(
            0.25, 4, 7))))
        frames.append(pd.DataFrame({"d": d, "n": n, "success_last": s}))
    rows = pd.concat(frames, ignore_index=True)
    return A.thresholds_by(rows, "d", "success_last", n_boot=n_boot, seed=int(rng.integers(1e6)))


def test_exponent_recovered_with_covering_ci():
    rng = np.random.default_rng(5)
    covered, estimates = 0, []
    for r in range(20):
        fit = A.fit_scaling(synthetic_thresholds(rng, 1.5), n_boot=1000, seed=r)
        estimates.append(fit.alpha)
        covered += fit.alpha_ci_low <= 1.5 <= fit.alpha_ci_high
    assert covered / 20 >= 0.8
    assert abs(np.mean(estimates) - 1.5) < 0.05
    assert fit.alpha_ci_high - fit.alpha_ci_low < 0.5
    assert abs(fit.wls_alpha - 1.5) < 5 * fit.wls_alpha_se
    assert fit.predict(64.0) == pytest.approx(fit.C * 64.0**fit.alpha)


def test_lack_of_fit_and_local_exponents_detect_curvature():
    ds = np.array([16, 32, 64, 128, 256.0])
    rng = np.random.default_rng(9)
    boots = lambda v: [x * np.exp(rng.normal(0, 0.05, 500)) for x in v]  # noqa: E731
    straight = 2.0 * ds**1.5
    curved = 2.0 * ds ** (1.2 + 0.1 * np.log2(ds / 16))  # local exponent rises with d
    fit_s = A.fit_scaling(pd.DataFrame({"d": ds, "n50": straight, "boot_n50": boots(straight)}))
    table_c = pd.DataFrame({"d": ds, "n50": curved, "boot_n50": boots(curved)})
    fit_c = A.fit_scaling(table_c)
    assert fit_s.lack_of_fit_p > 0.05 and fit_c.lack_of_fit_p < 1e-3
    local = A.local_exponents(table_c)
    # exact: 1.2 + (0.1 / log 2) log(d_j d_j+1 / 16) = 1.7, 1.9, 2.1, 2.3
    np.testing.assert_allclose(local["local_alpha"], [1.7, 1.9, 2.1, 2.3])
    assert (local["ci_low"] < local["local_alpha"]).all()
    assert (local["local_alpha"] < local["ci_high"]).all()


def test_model_comparison_prefers_true_shape():
    ds = np.array([16, 32, 64, 128, 256, 512.0])
    rng = np.random.default_rng(6)
    n50 = 3.0 * ds * np.log(ds) * np.exp(rng.normal(0, 0.03, ds.size))
    boots = [v * np.exp(rng.normal(0, 0.03, 400)) for v in n50]
    table = pd.DataFrame({"d": ds, "n50": n50, "boot_n50": boots})
    cmp = A.compare_scaling_models(table, n_boot=500).set_index("model")
    assert cmp.loc["dlogd", "delta_aic"] < cmp.loc["d^2", "delta_aic"]
    assert cmp.loc["dlogd", "delta_aic"] < cmp.loc["d^4", "delta_aic"]
    assert cmp.loc["dlogd", "C_ci_low"] < 3.0 < cmp.loc["dlogd", "C_ci_high"]
    assert cmp.loc["d^2", "alpha"] == 2.0


def test_scaling_reports_too_few_points_and_missing_bootstrap():
    one = pd.DataFrame({"d": [16, 32], "n50": [40.0, math.nan]})
    fit = A.fit_scaling(one)
    assert math.isnan(fit.alpha) and "too few" in fit.reason and "left out" in fit.reason
    two = pd.DataFrame({"d": [16, 32, 64], "n50": [40.0, 90.0, 200.0]})
    fit = A.fit_scaling(two)
    assert np.isfinite(fit.alpha) and math.isnan(fit.alpha_ci_low) and "CI" in fit.reason
    with pytest.raises(DataError, match="model"):
        A.fit_scaling(two, model="cubic")


def test_reference_curve_and_ratios():
    d = np.array([16.0, 32.0, 64.0])
    curve = A.reference_curve(d, "d^2", 16.0, 40.0)
    np.testing.assert_allclose(curve, [40.0, 160.0, 640.0])
    table = A.reference_ratios(pd.DataFrame({"d": d, "n50": [32.0, 128.0, 512.0],
                                             "ci_low": [16.0, 64.0, 256.0],
                                             "ci_high": [64.0, 256.0, 1024.0]}))
    np.testing.assert_allclose(table["ratio_d2"], 0.125)
    np.testing.assert_allclose(table["ratio_d2_low"], 1 / 16)
    np.testing.assert_allclose(table["ratio_d4"], 0.125 / d**2)


# ---------------------------------------------------------------- recurrence and tables

H = np.array([5, 0, 0, 2, 3, 0, 1, 0, 4])  # t=1..8: 0 0 + + 0 + 0 +


def test_trial_recurrence_on_hand_made_trajectory():
    s = A.trial_recurrence(H)
    assert s["T"] == 8
    np.testing.assert_array_equal(s["excursions"], [2, 1])
    np.testing.assert_array_equal(s["return_times"], [3, 2])
    np.testing.assert_array_equal(s["sojourns"], [2, 1, 1])
    assert s["n_returns"] == 2 and s["n_visits"] == 4 and s["occupation"] == 0.5
    assert s["first_hit_step"] == 1 and s["censored"] == 1
    never = A.trial_recurrence(np.array([3, 2, 1, 1]))
    assert never["n_returns"] == 0 and never["first_hit_step"] == -1 and never["censored"] == 0


def test_horizon_stats_on_hand_made_trajectory():
    st = A.horizon_stats(H[None, :], np.array([1, 3, 5, 8]))
    np.testing.assert_array_equal(st["n_returns"][0], [0, 0, 1, 2])
    np.testing.assert_array_equal(st["n_exits"][0], [0, 1, 1, 3])
    np.testing.assert_array_equal(st["success_last"][0], [True, False, True, False])
    np.testing.assert_array_equal(st["success_best"][0], [True, True, True, True])
    np.testing.assert_allclose(st["occupation"][0], [1.0, 2 / 3, 3 / 5, 4 / 8])
    with pytest.raises(DataError, match="horizons"):
        A.horizon_stats(H[None, :], np.array([9]))


def traj_rows(paths, **cols):
    return pd.DataFrame({"trial": range(len(paths)), "hamming_trajectory": list(paths), **cols})


def test_return_growth_distinguishes_recurrent_absorbed_and_stopping():
    T = 200
    periodic = np.where(np.arange(T + 1) % 4 == 0, 0, 2)
    periodic[0] = 5
    absorbed = np.r_[5, 3, 1, np.zeros(T - 2, dtype=int)]
    stopping = periodic.copy()
    stopping[T // 3:] = 1
    rows = pd.concat([
        traj_rows([periodic] * 6, noise_level=0.1),
        traj_rows([absorbed] * 6, noise_level=0.0),
        traj_rows([stopping] * 6, noise_level=0.2),
    ], ignore_index=True)
    g = A.return_growth(rows).set_index("noise_level")
    assert g.loc[0.1, "late_rate"] == pytest.approx(0.25, abs=0.01)
    assert g.loc[0.1, "keeps_returning"] and g.loc[0.1, "share_returning_late"] == 1.0
    assert g.loc[0.0, "late_rate"] == 0 and not g.loc[0.0, "keeps_returning"]
    assert g.loc[0.2, "late_rate"] == 0 and g.loc[0.2, "early_rate"] > 0.1
    assert g.loc[0.1, "returns_mean"] == 49  # visits at t=4..200 step 4: 50 visits, 49 returns
    table = A.recurrence_table(rows)
    assert list(table.loc[table.noise_level == 0.1, "n_returns"]) == [49] * 6
    assert (table.loc[table.noise_level == 0.1, "median_return_time"] == 4).all()
    summary = A.return_time_summary(rows).set_index(["noise_level", "kind"])
    assert summary.loc[(0.1, "return_time"), "median"] == 4
    assert summary.loc[(0.0, "return_time"), "count"] == 0
    vs = A.returns_vs_horizon(rows, horizons=[8, 200])
    assert list(vs.loc[vs.noise_level == 0.1, "returns_mean"]) == [1, 49]


def test_per_horizon_at_full_horizon_matches_recorder():
    from stelab.outcomes import trajectory_outcomes

    rng = np.random.default_rng(7)
    paths = rng.integers(0, 3, size=(6, 31)) * (rng.random((6, 31)) < 0.7)
    rec = trajectory_outcomes(paths, np.zeros(6), absorb_window=3)
    long = A.per_horizon(traj_rows(list(paths)), horizons=[30])
    for column in ("success_last", "success_best", "occupation", "n_returns", "n_exits"):
        np.testing.assert_array_equal(long[column].to_numpy(), rec[column])


def test_success_tables_use_wilson_intervals():
    rows = pd.DataFrame({"distribution": ["a"] * 10 + ["b"] * 4,
                         "success_last": [True] * 7 + [False] * 3 + [True, False, False, False],
                         "success_ergodic": [True] * 14})
    t = A.success_table(rows, "distribution").set_index(["distribution", "metric"])
    assert t.loc[("a", "success_last"), "rate"] == 0.7
    assert (t.loc[("a", "success_last"), "ci_low"], t.loc[("a", "success_last"), "ci_high"]) \
        == pytest.approx(wilson_interval(7, 10))
    assert t.loc[("b", "success_ergodic"), "trials"] == 4
    rows["steps"] = [10] * 7 + [20] * 7
    s = A.success_by_steps(rows)
    assert set(s["steps"]) == {10, 20} and set(s["metric"]) == {"success_last",
                                                               "success_ergodic"}


def test_success_vs_horizon_and_mean_ci():
    rows = traj_rows([H, np.r_[H[:-1], 0]], n=10)
    t = A.success_vs_horizon(rows, horizons=[5, 8]).set_index(["T", "metric"])
    assert t.loc[(5, "success_last"), "rate"] == 1.0
    assert t.loc[(8, "success_last"), "rate"] == 0.5
    mean, low, high = A.mean_ci(np.array([1.0, 2.0, 3.0]))  # too few values for an interval
    assert mean == 2.0 and math.isnan(low) and math.isnan(high)
    mean, low, high = A.mean_ci(np.array([1.0, 2.0, 3.0]), method="t")
    assert mean == 2.0 and math.isnan(low)
    values = np.arange(1.0, 7.0)
    mean, low, high = A.mean_ci(values, method="t")  # t: for unbounded quantities only
    assert high - mean == pytest.approx(2.570582 * values.std(ddof=1) / math.sqrt(6), rel=1e-5)
    mean, low, high = A.mean_ci(values)
    assert 1.0 <= low < mean == 3.5 < high <= 6.0
    occ = A.mean_ci_by(traj_rows([H], noise_level=0.1, occupation=0.5), "occupation")
    assert occ.loc[0, "mean"] == 0.5 and math.isnan(occ.loc[0, "ci_low"])


def test_at_checkpoints_equals_runs_stopped_at_that_horizon():
    from stelab.engine import run_experiment
    from tests.helpers import make_config

    record = {"trajectory": True, "loss_trajectory": True}
    long = run_experiment(make_config(train={"n": 40, "steps": 30},
                                      record={**record, "checkpoints": [4, 12, 30]}))
    short = run_experiment(make_config(train={"n": 40, "steps": 12}, record=record))
    expanded = A.at_checkpoints(long)
    assert len(expanded) == 3 * len(long)
    at12 = expanded[expanded.steps == 12].reset_index(drop=True)
    assert (at12["run_steps"] == 30).all()
    for column in ("success_last", "success_ergodic", "success_best", "occupation",
                   "first_hit_step", "n_exits", "n_returns", "max_excursion", "min_hamming",
                   "final_hamming", "ergodic_hamming", "final_loss"):
        np.testing.assert_allclose(at12[column].to_numpy(float), short[column].to_numpy(float),
                                   err_msg=column)
    table = A.success_by_steps(expanded)
    assert sorted(set(table["steps"])) == [4, 12, 30]
    with pytest.raises(DataError, match="checkpoints"):
        A.at_checkpoints(short)


def test_missing_trajectories_raise_clear_error():
    with pytest.raises(DataError, match="trajectory = true"):
        A.recurrence_table(pd.DataFrame({"trial": [0]}))


# ---------------------------------------------------------------- plots


def synthetic_rows(rng) -> pd.DataFrame:
    records = []
    for d in (8, 16):
        for n in (10, 20, 40, 80):
            for p in (0.0, 0.1):
                for steps in (20, 40):
                    for trial in range(4):
                        h = np.maximum(0, d // 2 - np.arange(steps + 1) * n // 20
                                       + rng.integers(0, 2, steps + 1) * (p > 0)).astype(np.int32)
                        records.append({
                            "d": d, "n": n, "noise_level": p, "steps": steps, "trial": trial,
                            "distribution": "gaussian", "normalization": "none",
                            "teacher_balance": 0.5, "hamming_trajectory": h,
                            "loss_trajectory": (h / d).astype(np.float32),
                            # success independent of the paths: a threshold near n = 2d
                            "success_last": bool(rng.random() < expit(3 * np.log(n / (2 * d)))),
                            "success_ergodic": bool(h[-1] == 0),
                            "success_best": bool((h[1:] == 0).any()),
                            "occupation": float((h[1:] == 0).mean()),
                        })
    return pd.DataFrame(records)


def test_plots_write_png_files(tmp_path):
    rows = synthetic_rows(np.random.default_rng(8))
    base = rows[(rows.noise_level == 0) & (rows.steps == 40)]
    noisy = rows[(rows.d == 8) & (rows.n == 20) & (rows.steps == 40)]
    checkpointed = base[base.d == 8].assign(
        checkpoint_steps=[np.array([10, 40])] * 16,
        ergodic_hamming_at=[np.array([1, 0])] * 16)
    outputs = [
        e1_plots.plot_success_heatmap(base, tmp_path / "heat.png"),
        e1_plots.plot_success_curves(base, tmp_path / "curves.png"),
        e1_plots.plot_n50_scaling(base, tmp_path / "n50.png", n_boot=50),
        e2.plot_trajectories(base[base.d == 8], tmp_path / "traj.png"),
        e2.plot_success_vs_horizon(rows[(rows.noise_level == 0) & (rows.d == 8)],
                                   tmp_path / "horizon.png", by="n"),
        e2.plot_success_vs_horizon(base[base.d == 8], tmp_path / "horizon_t.png", by="n"),
        e2.plot_success_vs_horizon(checkpointed, tmp_path / "horizon_c.png", by="n"),
        e3.plot_recurrence_paths(noisy, tmp_path / "paths.png"),
        e3.plot_returns_vs_horizon(noisy, tmp_path / "returns.png"),
        e3.plot_return_time_histogram(noisy, tmp_path / "hist.png"),
        e3.plot_occupation_vs_noise(noisy, tmp_path / "occ.png"),
        e4.plot_e4_heatmap(rows.assign(distribution=np.where(rows.trial % 2, "exponential", "t"),
                                       normalization=np.where(rows.trial < 2, "none", "center")),
                           tmp_path / "sub" / "e4.png"),
    ]
    for path in outputs:
        assert path.exists() and path.stat().st_size > 1000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_summary_gives_means_with_bootstrap_intervals_in_range():
    from rich.console import Console

    from stelab.results import summarize

    rows = pd.DataFrame({"success_last": [True, False, True] * 2, "final_hamming": [0, 2, 4] * 2})
    console = Console(width=120, record=True)
    console.print(summarize(rows))
    text = console.export_text()
    low, high = A.mean_ci(rows["final_hamming"].to_numpy())[1:]
    assert 0 <= low < 2 < high <= 4  # a t interval would be [0.7, 3.3]; this one is in [0, 4]
    assert f"[{low:.4g}, {high:.4g}]" in text
    assert "4 / 6" in text
    console.print(summarize(rows.iloc[:3]))
    assert "too few trials for an interval" in console.export_text()


def test_analysis_imports_nothing_from_the_engine():
    """Analysis is a function of stored rows: importing it loads no engine module (the outcome
    definitions it shares with the engine live in stelab.outcomes)."""
    import subprocess
    import sys

    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, stelab.analysis; "
         "print(sorted(m for m in sys.modules if m.startswith('stelab.engine')))"],
        capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
