"""The pooled law comparison over d >= d_min, its verdicts, and the per-dimension ratios."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pandas as pd
import pytest

from stelab import analysis as A
from stelab.analysis import clustered, exponents, laws, scaling
from stelab.analysis.scaling import parse_shape, shape_values
from stelab.errors import DataError

D = 2.0 ** np.arange(6, 13)  # 64 ... 4096


def dlogd_thresholds(sigma: float, noise: float = 0.0, seed: int = 0,
                     d: np.ndarray = D) -> pd.DataFrame:
    """Thresholds n50 = 0.5 d ln d (times exp(noise N(0, 1)) when noise > 0), each with 2000
    bootstrap replicates whose log has s.d. sigma around the estimate."""
    rng = np.random.default_rng(seed)
    n50 = 0.5 * d * np.log(d) * np.exp(noise * rng.standard_normal(d.size))
    boot = [v * np.exp(sigma * rng.standard_normal(2000)) for v in n50]
    return pd.DataFrame({"d": d, "n50": n50, "boot_n50": boot})


def verdicts(table: pd.DataFrame) -> dict[str, str]:
    models = A.compare_scaling_models(table, models=A.LAW_MODELS, n_boot=500, d_min=64)
    return dict(zip(models["model"], A.law_verdicts(models)["verdict"], strict=True))


def test_small_noise_excludes_the_d_law_and_keeps_d_log_d():
    exact = verdicts(dlogd_thresholds(sigma=0.02))
    assert exact["d"] == "excluded" and exact["d^2"] == "excluded"
    assert exact["d^2logd"] == "excluded"
    assert exact["dlogd"] == "not excluded"
    assert verdicts(dlogd_thresholds(sigma=0.01, noise=0.01, seed=3))["d"] == "excluded"


def test_large_noise_cannot_exclude_the_d_law():
    wide = verdicts(dlogd_thresholds(sigma=0.3))
    assert wide["d"] == "not excluded" and wide["dlogd"] == "not excluded"
    assert wide["d^2"] == "excluded"  # a whole power of d apart: excluded even so


def test_the_verdict_rules_and_their_numbers():
    models = A.compare_scaling_models(dlogd_thresholds(sigma=0.02), models=A.LAW_MODELS,
                                      n_boot=200, d_min=64)
    table = A.law_verdicts(models).set_index("model")
    d_law = table.loc["d"]
    assert d_law["lack_of_fit_p"] < 1e-10 and d_law["delta_aic_w"] > 10
    assert "lack of fit p = " in d_law["rule"] and "AIC_w" in d_law["rule"]
    assert table.loc["dlogd", "delta_aic_w"] == 0.0  # the true law is the best
    # AIC_w = chi2 + 2 k and the lack of fit is chi2 at the weighted fit
    assert models["aic_w"].tolist() == pytest.approx(
        (models["lack_of_fit_chi2"] + 2 * models["n_params"]).tolist())
    sentence = A.law_sentence(table.reset_index())
    assert sentence.startswith("exclude ") and ", d (lack of fit p = " in sentence
    assert sentence.endswith("; cannot exclude dlogd.")
    # a rule that fires on AIC alone
    only_aic = A.law_verdicts(pd.DataFrame({"model": ["d"], "lack_of_fit_p": [0.5],
                                            "delta_aic_w": [12.0]}))
    assert only_aic["verdict"].item() == "excluded"
    assert only_aic["rule"].item() == "AIC_w 12.0 above the best law's (> 10)"


def test_missing_statistics_are_undetermined_never_a_verdict():
    models = A.compare_scaling_models(dlogd_thresholds(sigma=0.02), models=A.LAW_MODELS,
                                      n_boot=0, d_min=64)
    table = A.law_verdicts(models)
    assert (table["verdict"] == "undetermined").all()
    assert A.law_sentence(table).startswith("undetermined: power (no lack-of-fit test")
    nan_row = pd.DataFrame({"model": ["d"], "lack_of_fit_p": [math.nan], "delta_aic_w": [3.0]})
    assert A.law_verdicts(nan_row)["verdict"].item() == "undetermined"


def test_law_verdicts_refuse_bad_input():
    with pytest.raises(DataError, match=r"^models.delta_aic_w: column missing"):
        A.law_verdicts(pd.DataFrame({"model": ["d"], "lack_of_fit_p": [0.1]}))
    table = pd.DataFrame({"model": ["d"], "lack_of_fit_p": [0.1], "delta_aic_w": [0.0]})
    with pytest.raises(DataError, match=r"^p_level: 1.5 outside"):
        A.law_verdicts(table, p_level=1.5)
    with pytest.raises(DataError, match=r"^aic_margin: "):
        A.law_verdicts(table, aic_margin=0.0)


def test_d_min_pools_only_the_large_d():
    table = dlogd_thresholds(sigma=0.02, noise=0.01, d=2.0 ** np.arange(4, 13))
    table.loc[0, "n50"] = 1e6  # d = 16: an outlier the pooled fit must not see
    models = A.compare_scaling_models(table, models=A.LAW_MODELS, n_boot=100, d_min=64)
    assert (models["n_points"] == 7).all() and (models["d_min"] == 64).all()
    assert models["reason"].eq("").all()
    assert A.fit_scaling(table, "dlogd", n_boot=0, d_min=64).C == pytest.approx(0.5, rel=0.02)
    with pytest.raises(DataError, match=r"^d_min: nan"):
        A.fit_scaling(table, "dlogd", n_boot=0, d_min=math.nan)


def test_shape_parser():
    assert parse_shape("d") == (1.0, False) and parse_shape("d^2logd") == (2.0, True)
    d = np.array([8.0, 64.0])
    assert shape_values(d, "d^2logd") == pytest.approx(d**2 * np.log(d))
    assert shape_values(d, "d^1.5logd") == pytest.approx(d**1.5 * np.log(d))
    assert shape_values(d, "d") == pytest.approx(d)
    for bad in ("logd", "d^", "d^2log", "dd"):
        with pytest.raises(DataError, match=r"^model: "):
            parse_shape(bad)
    table = dlogd_thresholds(sigma=0.02)
    assert A.fit_scaling(table, "d", n_boot=0).alpha == 1.0
    assert math.isnan(A.fit_scaling(table, "d^2logd", n_boot=0).alpha)


def test_threshold_ratios_transform_the_interval_ends():
    table = pd.DataFrame({"d": [1, 16, 64], "n50": [3.0, 40.0, math.nan],
                          "ci_low": [2.0, 30.0, math.nan], "ci_high": [4.0, 50.0, math.nan]})
    out = A.threshold_ratios(table)
    assert out["alpha50"].tolist()[:2] == [3.0, 2.5]
    assert out.loc[1, ["alpha50_ci_low", "alpha50_ci_high"]].tolist() == [30 / 16, 50 / 16]
    g = 16 * math.log(16)
    assert out.loc[1, ["n50_per_dlogd", "n50_per_dlogd_ci_low", "n50_per_dlogd_ci_high"]] \
        .tolist() == pytest.approx([40 / g, 30 / g, 50 / g])
    assert math.isnan(out.loc[0, "n50_per_dlogd"])  # d ln d = 0 at d = 1: no ratio
    assert out.loc[2, ["alpha50", "alpha50_ci_low"]].isna().all()  # not identified stays nan
    assert "alpha50" not in table  # a copy
    with pytest.raises(DataError, match=r"^thresholds.n50: column missing"):
        A.threshold_ratios(pd.DataFrame({"d": [16]}))


def test_local_exponents_give_the_ci_width():
    local = A.local_exponents(dlogd_thresholds(sigma=0.02))
    assert local["ci_width"].to_numpy() == pytest.approx(
        (local["ci_high"] - local["ci_low"]).to_numpy())
    # independent ends with log s.d. 0.02 over one doubling: width ~ 2 * 1.96 * 0.028 / ln 2
    assert local["ci_width"].to_numpy() == pytest.approx(0.16, rel=0.15)


@pytest.mark.parametrize("module", [laws, scaling, exponents, clustered])
def test_docstring_examples(module):
    assert doctest.testmod(module, raise_on_error=False).failed == 0


def test_when_every_law_is_excluded_the_sentence_names_the_least_bad():
    table = pd.DataFrame({"model": ["power", "d", "dlogd"], "lack_of_fit_p": [1e-4, 1e-9, 1e-3],
                          "delta_aic_w": [14.7, 500.0, 0.0]})
    sentence = A.law_sentence(A.law_verdicts(table))
    assert sentence.endswith("no law compared fits within the bootstrap noise; the least bad "
                             "by AIC_w is dlogd (next: power, +14.7).")


def test_too_few_d_for_a_law_is_said():
    table = dlogd_thresholds(sigma=0.05, noise=0.02, d=np.array([64.0, 128.0]))
    models = A.compare_scaling_models(table, models=("power", "dlogd"), n_boot=100)
    out = A.law_verdicts(models).set_index("model")
    assert out.loc["power", "verdict"] == "undetermined"
    assert out.loc["power", "rule"] == ("no lack-of-fit test (no residual degree of freedom: "
                                        "too few d for its parameters)")
    assert "no law compared fits" not in A.law_sentence(out.reset_index())
