"""E6, the estimator comparison: its cells cover the registry of surrogates x weight STEs, and
its derivation keeps an estimator that never succeeds (reported as failing outright, never
dropped) next to ones with a known threshold."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from stelab.errors import ConfigError
from stelab.experiments import SectionContext, e6
from stelab.experiments.profile import load_profile
from stelab.quantizers import SURROGATES, WEIGHT_STES

PROFILE = {
    "base": {"run": {"seed": 1, "device": "cpu"}},
    "e6": {"d": [8, 16], "n_over_d": [1, 4], "steps": 10, "trials": 2,
           "case": [{"name": "m1_sign", "model": {"m": 1, "activation": "sign"}},
                    {"name": "m4_step", "model": {"m": 4, "activation": "step"}, "d": [8]}]},
}


def test_cells_cover_every_surrogate_and_weight_ste():
    cells = e6.build_cells(PROFILE)
    per_estimator = 2 * 2 + 1 * 2  # m1_sign: 2 d x 2 n; m4_step: its own d = [8] x 2 n
    assert len(cells) == len(SURROGATES) * len(WEIGHT_STES) * per_estimator
    assert {(c.train.ste, c.train.weight_ste) for c in cells} == {
        (s, w) for s in SURROGATES for w in WEIGHT_STES}
    assert {(c.model.m, c.model.activation, c.model.d) for c in cells} == {
        (1, "sign", 8), (1, "sign", 16), (4, "step", 8)}


def test_a_surrogate_outside_the_registry_is_refused_naming_the_field():
    profile = {**PROFILE, "e6": {**PROFILE["e6"], "surrogates": ["identity", "tanh"]}}
    with pytest.raises(ConfigError, match="ste: unknown value 'tanh'; allowed: approx_sign"):
        e6.build_cells(profile)


def test_a_single_name_instead_of_a_list_is_refused():
    profile = {**PROFILE, "e6": {**PROFILE["e6"], "weight_stes": "clipped"}}
    with pytest.raises(ConfigError, match=r'\[e6\] weight_stes: .clipped. is not allowed; '
                                          r'allowed: "all" or a list of names from identity'):
        e6.build_cells(profile)


def test_embedded_profiles_hold_every_estimator():
    for name in ("quick", "full"):
        cells = e6.build_cells(load_profile(name))
        assert {(c.train.ste, c.train.weight_ste) for c in cells} == {
            (s, w) for s in SURROGATES for w in WEIGHT_STES}
        assert {(c.model.m, c.model.activation) for c in cells} == {
            (1, "sign"), (4, "sign"), (4, "step")}


def synthetic_rows(rng: np.random.Generator) -> pd.DataFrame:
    """Two estimators of one case: identity/identity with a threshold n50 = 2d (ergodic) and
    4d (last iterate), and swish/clipped that never succeeds."""
    records = []
    for d in (8, 16, 32):
        for n in (d // 2, d, 2 * d, 4 * d, 8 * d, 16 * d):
            for trial in range(24):
                for ste, weight_ste, works in (("identity", "identity", True),
                                               ("swish", "clipped", False)):
                    p_erg = expit(4 * np.log(n / (2 * d))) if works else 0.0
                    p_last = expit(4 * np.log(n / (4 * d))) if works else 0.0
                    records.append({"d": d, "n": n, "m": 1, "activation": "sign", "ste": ste,
                                    "weight_ste": weight_ste, "trial": trial,
                                    "success_ergodic": bool(rng.random() < p_erg),
                                    "success_last": bool(rng.random() < p_last)})
    return pd.DataFrame(records)


@pytest.fixture(scope="module")
def derived() -> dict[str, pd.DataFrame]:
    return e6.derive({"e6": synthetic_rows(np.random.default_rng(0))}, n_boot=200)


def test_an_estimator_that_never_succeeds_is_reported_not_dropped(derived):
    summary = derived["e6_estimators"].set_index(["ste", "success"])
    assert len(summary) == 4  # 2 estimators x 2 success notions, the failing one included
    for success in ("success_ergodic", "success_last"):
        failing = summary.loc[("swish", success)]
        assert failing["fails_outright"] and failing["status"].startswith("fails outright")
        assert failing["successes"] == 0 and failing["trials"] == 3 * 6 * 24
        assert math.isnan(failing["n50_at_d_max"]) and math.isnan(failing["rank"])
        assert math.isnan(failing["alpha"])
        working = summary.loc[("identity", success)]
        assert not working["fails_outright"] and working["status"] == "ok"
        assert working["rank"] == 1 and working["d_max"] == 32
    thresholds = derived["e6_thresholds"]
    assert len(thresholds) == 2 * 3 * 2  # every estimator x d x success, failing rows kept
    assert thresholds[thresholds["ste"] == "swish"]["reason"].str.startswith(
        "no successes at any n").all()


def test_thresholds_and_exponents_recover_the_known_curve(derived):
    summary = derived["e6_estimators"].set_index(["ste", "success"])
    for success, factor in (("success_ergodic", 2), ("success_last", 4)):
        row = summary.loc[("identity", success)]
        assert row["n50_ci_low"] <= factor * 32 <= row["n50_ci_high"]
        assert row["alpha_ci_low"] <= 1.0 <= row["alpha_ci_high"]  # n50 = factor * d^1
        assert row["identified_d"] == 3


def test_the_report_names_the_failing_estimator(derived, tmp_path):
    figures = e6.figures({}, derived, tmp_path / "figures")
    assert set(figures) == {"e6_ranking", "e6_n50_m1_sign"}
    assert all(path.stat().st_size > 1000 for path in figures.values())
    text = e6.report_section(SectionContext(derived, figures, tmp_path))
    assert "| swish | clipped | **fails** (no success) | — | **fails** (no success) | — |" in text
    assert "fewest samples at d = 32: identity / identity" in text
    assert "fail outright: swish / clipped." in text
    assert "![n50 at the largest d per estimator](figures/e6_ranking.png)" in text

