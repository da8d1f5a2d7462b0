"""Threshold and scaling fits against closed forms.

* Two grid points, no penalty: the maximum-likelihood curve passes through both observed rates,
  so F^-1(k_j/m_j) = a + b log n_j gives b and n50 = exp(-a/b) by hand (logit and probit).
* Two grid points, Firth (logit): the model is saturated (hat values 1), and the penalized score
  sum_j x_j (k_j + h_j/2 - (m_j + h_j) p_j) is the plain score with k + 1/2 successes out of m + 1.
* Scaling: ordinary least squares in log space (numpy.polyfit), the AIC/AICc and lack-of-fit
  formulas of the module docstring, weighted least squares with weights 1/Var.
Plus every refusal and reason text the fits promise.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit, ndtri
from scipy.stats import chi2

from stelab import analysis as A
from stelab.analysis.scaling import shape_values
from stelab.analysis.threshold import check_fixed_setting, fit_binomial_curves
from stelab.errors import DataError


def trials(counts: dict[float, tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-trial arrays for {n: (successes, trials)}."""
    n = np.concatenate([np.full(m, v) for v, (_, m) in counts.items()])
    s = np.concatenate([np.arange(m) < k for _, (k, m) in counts.items()])
    return n, s


def two_point_n50(n1, p1, n2, p2, inverse) -> tuple[float, float]:
    """(slope, n50) of the curve through (log n1, F^-1(p1)) and (log n2, F^-1(p2))."""
    b = (inverse(p2) - inverse(p1)) / (math.log(n2) - math.log(n1))
    return b, math.exp(math.log(n1) - inverse(p1) / b)


@pytest.mark.parametrize("link, inverse", [("logit", logit), ("probit", ndtri)])
@pytest.mark.parametrize("k1, k2", [(3, 15), (6, 13), (1, 19)])
def test_two_point_mle_passes_through_the_rates(link, inverse, k1, k2):
    n, s = trials({40.0: (k1, 20), 160.0: (k2, 20)})
    fit = A.fit_threshold(n, s, link=link, penalty="none", n_boot=0)
    slope, n50 = two_point_n50(40, k1 / 20, 160, k2 / 20, inverse)
    assert fit.converged and fit.identified == (40 <= n50 <= 160)
    assert fit.slope == pytest.approx(slope, rel=1e-7)
    assert fit.n50_fit == pytest.approx(n50, rel=1e-7)
    assert fit.predict(np.array([40.0, 160.0])) == pytest.approx([k1 / 20, k2 / 20], abs=1e-9)
    assert fit.intercept == pytest.approx(-slope * math.log(n50), rel=1e-7)
    assert (fit.n_min, fit.n_max, fit.n_points, fit.n_trials) == (40.0, 160.0, 2, 40)
    assert (fit.link, fit.penalty, fit.bootstrap, fit.separated) == (link, "none", "trials", False)


@pytest.mark.parametrize("k1, k2", [(3, 15), (0, 20), (0, 4), (5, 20)])
def test_two_point_firth_logit_adds_half_a_success_and_half_a_failure(k1, k2):
    n, s = trials({40.0: (k1, 20), 160.0: (k2, 20)})
    fit = A.fit_threshold(n, s, link="logit", penalty="firth", n_boot=0)
    slope, n50 = two_point_n50(40, (k1 + 0.5) / 21, 160, (k2 + 0.5) / 21, logit)
    assert fit.converged
    assert fit.slope == pytest.approx(slope, rel=1e-6)
    assert fit.n50_fit == pytest.approx(n50, rel=1e-6)
    # quasi-complete separation: with two points, either one pure (all fail or all succeed)
    separated = k1 == 0 or k2 == 20
    assert fit.separated == separated
    assert fit.note == ("separated data (no failure above a success in n): n50 is the penalized "
                        "estimate inside the gap; CI from the parametric bootstrap"
                        if separated else "")


def test_fit_binomial_curves_fits_many_data_sets_at_once_and_checks_names():
    x = np.log([40.0, 160.0]) - np.log([40.0, 160.0]).mean()
    k = np.array([[3, 15], [6, 13], [10, 10]])
    beta, conv = fit_binomial_curves(x, k, np.array([20.0, 20.0]), "logit", "none")
    assert conv.all()
    for row, (k1, k2) in zip(beta, k, strict=True):
        assert row[0] + row[1] * x == pytest.approx(logit(np.array([k1, k2]) / 20), abs=1e-8)
    with pytest.raises(DataError, match=r"^link: 'cauchit' is not known; allowed: logit, probit$"):
        fit_binomial_curves(x, k, np.array([20.0, 20.0]), "cauchit")
    with pytest.raises(DataError, match=r"^penalty: 'ridge' is not known; allowed: firth, none$"):
        fit_binomial_curves(x, k, np.array([20.0, 20.0]), "logit", "ridge")
    # a data set without any information (all successes everywhere, no penalty) does not converge
    _, conv = fit_binomial_curves(x, np.array([[20, 20]]), np.array([20.0, 20.0]), "logit", "none")
    assert not conv[0]


@pytest.mark.parametrize("counts, reason", [
    ({40.0: (0, 10), 80.0: (0, 10)},
     "no successes at any n: the grid does not reach the threshold (n50 > max n)"),
    ({40.0: (10, 10), 80.0: (10, 10)},
     "all trials succeed at every n: the grid starts above the threshold (n50 < min n)"),
    ({40.0: (4, 10)}, "only one value of n: the slope is not identified"),
    ({40.0: (8, 10), 80.0: (2, 10)}, "slope not positive: success does not increase with n"),
])
def test_unidentified_fits_say_why(counts, reason):
    fit = A.fit_threshold(*trials(counts), n_boot=10)
    assert fit.reason == reason
    assert math.isnan(fit.n50) and not fit.identified
    assert math.isnan(fit.ci_low) and math.isnan(fit.ci_high)


def test_a_fit_that_does_not_converge_says_so():
    """A jump from 0/1000 to 999/1000 within 1e-5 in log n needs a slope beyond the clip of the
    linear predictor: scoring stops without converging."""
    fit = A.fit_threshold(*trials({10.0: (0, 1000), 10.0001: (999, 1000)}), n_boot=0)
    assert (fit.converged, fit.reason) == (False, "the fit did not converge")
    assert math.isnan(fit.n50) and not fit.identified


def test_separated_data_without_penalty_is_refused_with_its_reason():
    fit = A.fit_threshold(*trials({40.0: (0, 10), 80.0: (10, 10)}), penalty="none", n_boot=0)
    assert fit.reason == ("complete separation: the maximum-likelihood estimate does not exist; "
                          "use penalty='firth'")
    assert fit.bootstrap == "parametric" and fit.separated


def test_extrapolated_n50_is_not_identified():
    low = A.fit_threshold(*trials({40.0: (17, 20), 160.0: (19, 20)}), penalty="none", n_boot=0)
    assert low.reason == "n50 extrapolated below the smallest n of the grid: not identified"
    high = A.fit_threshold(*trials({40.0: (1, 20), 160.0: (4, 20)}), penalty="none", n_boot=0)
    assert high.reason == "n50 extrapolated above the largest n of the grid: not identified"
    for fit in (low, high):
        assert math.isnan(fit.n50) and math.isfinite(fit.n50_fit) and not fit.identified
    assert low.n50_fit < 40 and high.n50_fit > 160


@pytest.mark.parametrize("kwargs, message", [
    ({"bootstrap": "jackknife"},
     "bootstrap: 'jackknife' is not known; allowed: auto, clustered, trials, parametric"),
    ({"confidence": 1.0}, "confidence: 1.0 outside (0, 1)"),
    ({"confidence": 0.0}, "confidence: 0.0 outside (0, 1)"),
])
def test_fit_threshold_refuses_bad_options(kwargs, message):
    with pytest.raises(DataError) as err:
        A.fit_threshold(*trials({40.0: (3, 10), 80.0: (7, 10)}), **kwargs)
    assert str(err.value) == message


def test_fit_threshold_refuses_bad_data():
    with pytest.raises(DataError, match="^success: needs one indicator per trial"):
        A.fit_threshold(np.ones(3), np.ones(2, dtype=bool))
    with pytest.raises(DataError, match="^rows: no trials"):
        A.fit_threshold(np.zeros(0), np.zeros(0, dtype=bool))
    for bad in (0.0, -5.0, np.nan, np.inf):
        with pytest.raises(DataError, match="^n: sample sizes must be finite and positive$"):
            A.fit_threshold(np.array([10.0, bad]), np.array([True, False]))


def test_bootstrap_interval_is_the_percentile_of_the_replicates():
    """Trials bootstrap: replicate j is Binomial(m, k/m) at each n (the module docstring); the
    CI ends are order statistics floor(tail B) and ceil((1 - tail) B) - 1 of the B replicates."""
    n, s = trials({20.0: (2, 30), 40.0: (9, 30), 80.0: (20, 30), 160.0: (28, 30)})
    fit = A.fit_threshold(n, s, n_boot=400, seed=3, confidence=0.9)
    assert fit.bootstrap == "trials" and fit.n_boot == 400 and fit.boot_n50.shape == (400,)
    assert (fit.n_min, fit.n_max, fit.n_points, fit.n_trials) == (20.0, 160.0, 4, 120)
    assert fit.n_boot_failed == 0 and fit.boot_converged_share == 1.0
    ordered = np.sort(fit.boot_n50)
    assert fit.ci_low == ordered[math.floor(0.05 * 400)]
    assert fit.ci_high == ordered[math.ceil(0.95 * 400) - 1]
    assert fit.ci_low < fit.n50 < fit.ci_high
    # the replicates' spread is the binomial one: their sd of log n50 is within 30% of the
    # delta-method standard error at the fit (400 replicates: the sd is known to ~3.5%)
    p = fit.predict(np.array([20.0, 40.0, 80.0, 160.0]))
    se = 1.0 / (fit.slope * math.sqrt((30 * p * (1 - p)).sum()))
    assert np.log(fit.boot_n50).std() == pytest.approx(se, rel=0.3)
    again = A.fit_threshold(n, s, n_boot=400, seed=3, confidence=0.9)
    assert np.array_equal(again.boot_n50, fit.boot_n50)
    other = A.fit_threshold(n, s, n_boot=400, seed=4, confidence=0.9)
    assert not np.array_equal(other.boot_n50, fit.boot_n50)


def test_too_many_failed_replicates_withhold_the_interval():
    n, s = trials({20.0: (1, 4), 40.0: (2, 4), 80.0: (3, 4)})
    fit = A.fit_threshold(n, s, n_boot=200, seed=0, penalty="none", bootstrap="trials")
    assert fit.n_boot_failed > 0.025 * 200
    assert fit.reason == (f"{fit.n_boot_failed}/200 bootstrap replicates have no n50: "
                          "CI not reported")
    assert math.isnan(fit.ci_low) and math.isnan(fit.ci_high) and math.isfinite(fit.n50)


def test_rows_helpers_check_the_setting_and_seed_each_group():
    rng = np.random.default_rng(0)
    n, s = trials({40.0: (3, 20), 80.0: (10, 20), 160.0: (17, 20)})
    rows = pd.DataFrame({"n": np.tile(n, 2), "d": np.repeat([8, 16], n.size),
                         "success_last": np.tile(s, 2), "success_ergodic": np.tile(s[::-1], 2),
                         "steps": 50})
    table = A.thresholds_by(rows, "d", n_boot=30, seed=7)
    assert list(zip(table["d"], table["success"], strict=True)) == [
        (8, "success_last"), (8, "success_ergodic"), (16, "success_last"),
        (16, "success_ergodic")]
    for i, (g, s_i) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        column = ("success_last", "success_ergodic")[s_i]
        alone = A.fit_threshold(n, rows[column].to_numpy()[: n.size], n_boot=30,
                                seed=7 + 1000 * g + s_i)
        assert np.array_equal(table["boot_n50"][i], alone.boot_n50)
    with pytest.raises(DataError) as err:
        check_fixed_setting(rows)
    assert str(err.value) == ("rows.d: several values ['16', '8'] in one threshold fit; "
                              "group by 'd' or filter the rows")
    # a column name given as one string is one column, whatever its length
    named = A.thresholds_by(rows.rename(columns={"d": "dim"}), "dim", n_boot=0, vary=("dim",))
    assert list(named["dim"]) == [8, 8, 16, 16]
    with pytest.raises(DataError, match=r"^by: column 'm' not in rows$"):
        A.thresholds_by(rows, "m")
    check_fixed_setting(rows.assign(steps=rng.integers(0, 3, len(rows))), vary=("n", "d", "steps"))


# ------------------------------------------------------------------ scaling


def thresholds_table(d, n50, boot=None):
    table = pd.DataFrame({"d": d, "n50": n50})
    if boot is not None:
        table["boot_n50"] = list(boot)
    return table


def test_shapes():
    d = np.array([2.0, 8.0])
    assert shape_values(d, "power", 1.5) == pytest.approx(d**1.5)
    assert shape_values(d, "dlogd") == pytest.approx(d * np.log(d))
    assert shape_values(d, "d^2") == pytest.approx(d**2)
    assert shape_values(d, "d^2.5") == pytest.approx(d**2.5)
    with pytest.raises(DataError) as err:
        shape_values(d, "d^x")
    assert str(err.value) == ("model: 'd^x' is not known; allowed: power, d^<k> or d^<k>logd "
                              "(e.g. d, dlogd, d^2, d^2logd)")


def test_power_fit_is_ordinary_least_squares_in_log_space_with_its_aic():
    d = np.array([8.0, 16.0, 32.0, 64.0, 128.0])
    n50 = 3.0 * d**1.7 * np.exp([0.1, -0.05, 0.02, -0.12, 0.06])
    fit = A.fit_scaling(thresholds_table(d, n50), n_boot=0)
    slope, intercept = np.polyfit(np.log(d), np.log(n50), 1)
    assert fit.alpha == pytest.approx(slope, rel=1e-12)
    assert fit.C == pytest.approx(math.exp(intercept), rel=1e-12)
    rss = float(((np.log(n50) - intercept - slope * np.log(d)) ** 2).sum())
    assert fit.rss_log == pytest.approx(rss, rel=1e-9)
    assert fit.aic == pytest.approx(5 * math.log(rss / 5) + 2 * 3)
    assert fit.aicc == pytest.approx(fit.aic + 2 * 3 * 4 / (5 - 2 - 2))
    assert (fit.n_params, fit.n_points, fit.d_min, fit.d_max) == (2, 5, 8.0, 128.0)
    assert fit.reason == "no bootstrap replicates of n50 (n = 0 or missing): CI not reported" \
        .replace("(n = 0", "(n_boot = 0")
    assert math.isnan(fit.alpha_ci_low) and math.isnan(fit.lack_of_fit_p)
    assert fit.predict(10.0) == pytest.approx(fit.C * 10.0**fit.alpha)
    as_dict = fit.as_dict()
    assert as_dict["alpha"] == fit.alpha and "boot_alpha" in as_dict


def test_fixed_shapes_fit_the_constant_only():
    d = np.array([8.0, 16.0, 32.0])
    n50 = np.array([100.0, 420.0, 1500.0])
    for model, g in (("d^2", d**2), ("dlogd", d * np.log(d)), ("d^4", d**4)):
        fit = A.fit_scaling(thresholds_table(d, n50), model=model, n_boot=0)
        assert fit.C == pytest.approx(math.exp(np.mean(np.log(n50) - np.log(g))), rel=1e-12)
        assert fit.n_params == 1
        rss = float(((np.log(n50) - np.log(fit.C * g)) ** 2).sum())
        assert fit.rss_log == pytest.approx(rss, rel=1e-9)
        assert fit.aic == pytest.approx(3 * math.log(rss / 3) + 2 * 2)
        assert math.isnan(fit.aicc)  # N - k - 2 = 0
    assert A.fit_scaling(thresholds_table(d, n50), model="d^2", n_boot=0).alpha == 2.0
    assert math.isnan(A.fit_scaling(thresholds_table(d, n50), model="dlogd", n_boot=0).alpha)


def test_exact_power_law_has_no_aic_and_too_few_points_are_said():
    d = np.array([8.0, 16.0, 32.0])
    fit = A.fit_scaling(thresholds_table(d, 2.0 * d**1.5), n_boot=0)
    assert fit.alpha == pytest.approx(1.5, rel=1e-12) and fit.C == pytest.approx(2.0, rel=1e-12)
    assert math.isnan(fit.aic) and math.isnan(fit.aicc)
    assert "no residual degrees of freedom (or an exact fit): AIC not defined" in fit.reason
    short = A.fit_scaling(thresholds_table([8.0, 16.0], [math.nan, 50.0]), n_boot=0)
    assert short.reason == ("1 d value(s) without identified n50 left out; "
                            "1 identified point(s): too few for model 'power'")
    assert math.isnan(short.C) and short.n_points == 1
    # d = 1 is left out (log d = 0 carries no scale information)
    assert A.fit_scaling(thresholds_table([1.0, 8.0, 16.0], [3.0, 40.0, 90.0]),
                         n_boot=0).n_points == 2


def test_bootstrap_lack_of_fit_and_weighted_fit_follow_their_formulas():
    rng = np.random.default_rng(2)
    d = np.array([8.0, 16.0, 32.0, 64.0])
    n50 = 2.0 * d**1.5 * np.exp([0.05, -0.04, 0.03, -0.02])
    sd = np.array([0.05, 0.08, 0.1, 0.2])
    boot = [np.exp(np.log(v) + s * rng.standard_normal(500)) for v, s in zip(n50, sd,
                                                                             strict=True)]
    fit = A.fit_scaling(thresholds_table(d, n50, boot), n_boot=800, seed=1)
    y, x = np.log(n50), np.log(d)
    slope, intercept = np.polyfit(x, y, 1)
    var = np.array([np.log(b).var(ddof=1) for b in boot])
    # the lack of fit is the minimum chi2: at the weighted least-squares fit
    wslope, wintercept = np.polyfit(x, y, 1, w=1 / np.sqrt(var))
    lof = float((((y - wintercept - wslope * x) ** 2) / var).sum())
    assert lof < float((((y - intercept - slope * x) ** 2) / var).sum())
    assert fit.lack_of_fit_chi2 == pytest.approx(lof, rel=1e-9)
    assert fit.lack_of_fit_p == pytest.approx(chi2.sf(lof, 2), rel=1e-9)
    assert fit.aic_w == pytest.approx(lof + 4, rel=1e-9)
    assert fit.aicc_w == pytest.approx(lof + 4 + 12, rel=1e-9)  # 2 k (k + 1) / (N - k - 1)
    assert fit.wls_alpha == pytest.approx(wslope, rel=1e-9)
    w = 1 / var
    xw = (w * x).sum() / w.sum()
    assert fit.wls_alpha_se == pytest.approx(math.sqrt(1 / (w * (x - xw) ** 2).sum()), rel=1e-9)
    assert fit.boot_alpha.shape == (800,) and fit.boot_C.shape == (800,)
    assert (fit.alpha_ci_low, fit.alpha_ci_high) == pytest.approx(
        tuple(np.percentile(fit.boot_alpha, [2.5, 97.5])))
    assert (fit.C_ci_low, fit.C_ci_high) == pytest.approx(
        tuple(np.percentile(fit.boot_C, [2.5, 97.5])))
    # the bootstrap sd of alpha is the OLS propagation of the per-d sds (500 replicates: ~5%)
    xc = x - x.mean()
    assert fit.boot_alpha.std() == pytest.approx(
        math.sqrt(((xc / (xc @ xc)) ** 2 * sd**2).sum()), rel=0.15)
    assert fit.reason == ""


def test_scaling_tables_refuse_ambiguous_input():
    with pytest.raises(DataError, match=r"^thresholds.n50: column missing"):
        A.fit_scaling(pd.DataFrame({"d": [8, 16]}))
    with pytest.raises(DataError, match=r"^thresholds.success: several success notions"):
        A.fit_scaling(pd.DataFrame({"d": [8, 16], "n50": [1.0, 2.0], "success": ["a", "b"]}))
    with pytest.raises(DataError, match=r"^thresholds.d: repeated values"):
        A.fit_scaling(pd.DataFrame({"d": [8, 8], "n50": [1.0, 2.0]}))


def test_model_comparison_scaling_by_and_local_exponents():
    d = np.array([8.0, 16.0, 32.0, 64.0])
    n50 = 2.0 * d**1.5 * np.exp([0.05, -0.04, 0.03, -0.02])
    table = A.compare_scaling_models(thresholds_table(d, n50), n_boot=0)
    assert list(table["model"]) == ["power", "dlogd", "d^2", "d^4"]
    assert table["delta_aic"].tolist() == pytest.approx((table["aic"] - table["aic"].min()).tolist())
    assert table.loc[table["delta_aic"] == 0, "model"].item() == "power"
    assert "boot_alpha" not in table

    both = pd.concat([thresholds_table(d, n50).assign(success="a"),
                      thresholds_table(d, n50 * d).assign(success="b")])
    by = A.scaling_by(both, n_boot=0).set_index("success")
    assert by.loc["b", "alpha"] == pytest.approx(by.loc["a", "alpha"] + 1)

    boot = [v * np.exp(0.1 * np.random.default_rng(i).standard_normal(300))
            for i, v in enumerate(n50)]
    local = A.local_exponents(thresholds_table(d, n50, boot))
    assert local[["d_low", "d_high"]].to_numpy().tolist() == [[8, 16], [16, 32], [32, 64]]
    expected = np.diff(np.log(n50)) / np.diff(np.log(d))
    assert local["local_alpha"].to_numpy() == pytest.approx(expected)
    first = np.log(boot[1] / boot[0]) / math.log(2)
    assert (local["ci_low"][0], local["ci_high"][0]) == pytest.approx(
        tuple(np.percentile(first, [2.5, 97.5])))
    no_boot = A.local_exponents(thresholds_table(d, n50))
    assert no_boot["ci_low"].isna().all()


def test_reference_curves_and_ratios():
    d = np.array([8.0, 16.0, 32.0])
    assert A.reference_curve(d, "d^2", 16.0, 100.0) == pytest.approx([25.0, 100.0, 400.0])
    assert A.reference_curve(d, "dlogd", 8.0, 10.0) == pytest.approx(
        10.0 * d * np.log(d) / (8 * math.log(8)))
    table = pd.DataFrame({"d": d, "n50": [64.0, 256.0, 2048.0], "ci_low": [32.0, 128.0, 1024.0],
                          "ci_high": [128.0, 512.0, 4096.0], "extra": 1})
    ratios = A.reference_ratios(table, shapes=("d^2", "dlogd"))
    assert ratios["ratio_d2"].tolist() == [1.0, 1.0, 2.0]
    assert ratios["ratio_d2_low"].tolist() == [0.5, 0.5, 1.0]
    assert ratios["ratio_d2_high"].tolist() == [2.0, 2.0, 4.0]
    assert ratios["ratio_dlogd"].to_numpy() == pytest.approx(table["n50"] / (d * np.log(d)))
    assert "extra" not in ratios
    with pytest.raises(DataError, match=r"^thresholds.n50: column missing"):
        A.reference_ratios(pd.DataFrame({"d": d}))
