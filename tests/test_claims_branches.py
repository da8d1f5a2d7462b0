"""Every branch of the written claims rules, at the boundaries the rules state, on hand-built
evidence; then the evidence that report/evidence.py derives from rows whose truth is known.

The rules use strict and non-strict comparisons on purpose (RULES in stelab.claims): a Wilson
bound *below* LOW fails, one *at or above* HIGH reaches, an exponent CI *at* the bound is still
consistent with it. The boundary cases below pin each of those choices.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stelab import analysis
from stelab.claims import (
    CLAIMS,
    HIGH,
    INCONCLUSIVE,
    LACK_OF_FIT,
    LOW,
    MIN_IDENTIFIED,
    NOT_SUPPORTED,
    RULES,
    SUPPORTED,
    CaseScaling,
    NoiseLevelRecurrence,
    ReachAtLargestN,
    SuccessCell,
    Verdict,
    case_sample_complexity,
    normalization_verdict,
    recurrence_verdict,
    sample_complexity_verdict,
)
from stelab.report import evidence


def test_rule_constants_are_the_documented_ones():
    assert (HIGH, LOW, MIN_IDENTIFIED, LACK_OF_FIT) == (0.8, 0.5, 3, 0.05)
    assert set(RULES) == set(CLAIMS) == {"C1", "C2", "C3", "C4"}


# ------------------------------------------------------------------ C1 / C2 (one case)


def reach(ci_low=0.9, ci_high=1.0, d=64, n_max=4096, rate=0.95):
    return ReachAtLargestN(d=d, n_max=n_max, rate=rate, ci_low=ci_low, ci_high=ci_high)


def case(alpha=1.5, low=1.2, high=1.8, identified=5, reaches=None, **extra) -> CaseScaling:
    return CaseScaling("k", alpha, low, high, identified=identified,
                       reach=[reach()] if reaches is None else reaches, **extra)


def test_failure_where_the_bound_promises_success_is_not_supported_with_its_reason():
    failing = reach(ci_low=0.0, ci_high=0.3, d=8, n_max=64, rate=0.1)  # n_max = d^2 exactly
    assert case_sample_complexity(case(reaches=[failing]), 2) == (
        NOT_SUPPORTED, "k: at d=8, n=64 >= d^2 but success is only 0.10 (CI 0.00-0.30)")
    # one sample below d^2 the bound promises nothing: the failure does not count
    below = reach(ci_low=0.0, ci_high=0.3, d=8, n_max=63, rate=0.1)
    assert case_sample_complexity(case(reaches=[below]), 2)[0] == INCONCLUSIVE
    # an upper bound exactly at LOW is not "below LOW"
    at_low = reach(ci_low=0.2, ci_high=LOW, d=8, n_max=64)
    assert case_sample_complexity(case(reaches=[at_low]), 2)[0] == INCONCLUSIVE
    just_below = reach(ci_low=0.2, ci_high=LOW - 1e-9, d=8, n_max=64)
    assert case_sample_complexity(case(reaches=[just_below]), 2)[0] == NOT_SUPPORTED


def test_exponent_wholly_above_the_bound_is_not_supported_and_at_the_bound_is_not():
    assert case_sample_complexity(case(3.0, 2.5, 3.5), 2) == (
        NOT_SUPPORTED, "k: exponent 3.00 (CI 2.50-3.50) exceeds the bound's 2")
    # CI lower end exactly at the bound: not wholly above it
    assert case_sample_complexity(case(2.5, 2.0, 3.0), 2) == (
        INCONCLUSIVE, "k: exponent CI upper end 3.00 above 2")


def test_supported_with_the_upper_end_exactly_at_the_bound():
    assert case_sample_complexity(case(1.5, 1.0, 2.0), 2) == (
        SUPPORTED, "k: exponent 1.50 (CI 1.00-2.00) <= 2 and success reached at every d")
    assert case_sample_complexity(case(1.5, 1.0, 2.0 + 1e-9), 2)[0] == INCONCLUSIVE


def test_identification_needs_min_identified_d():
    assert case_sample_complexity(case(identified=MIN_IDENTIFIED), 2)[0] == SUPPORTED
    assert case_sample_complexity(case(identified=MIN_IDENTIFIED - 1), 2) == (
        INCONCLUSIVE, "k: n50 identified at only 2 d or exponent CI undefined")
    # too few d: a CI above the bound is not evidence against the claim either
    assert case_sample_complexity(case(3.0, 2.5, 3.5, identified=2), 2)[0] == INCONCLUSIVE
    # an undefined CI end makes the exponent unusable
    for low, high in ((math.nan, 1.8), (1.2, math.nan), (1.2, math.inf)):
        assert case_sample_complexity(case(1.5, low, high), 2)[0] == INCONCLUSIVE


def test_reach_needs_every_d_at_high_and_at_least_one_d():
    assert case_sample_complexity(case(reaches=[reach(ci_low=HIGH)]), 2)[0] == SUPPORTED
    not_reached = [reach(ci_low=0.95), reach(ci_low=HIGH - 1e-9, d=32)]
    assert case_sample_complexity(case(reaches=not_reached), 2) == (
        INCONCLUSIVE, "k: success not reached at the largest n of every d")
    assert case_sample_complexity(case(reaches=[]), 2)[0] == INCONCLUSIVE
    # both reasons are given, in order
    assert case_sample_complexity(case(identified=1, reaches=[]), 2)[1] == (
        "k: n50 identified at only 1 d or exponent CI undefined; "
        "success not reached at the largest n of every d")


def test_local_exponent_replaces_the_global_fit_only_when_the_fit_is_rejected():
    local = dict(local=2.6, local_low=2.3, local_high=2.9)
    rejected = case(1.5, 1.2, 1.8, lack_of_fit_p=0.001, **local)
    assert rejected.exponent() == (2.6, 2.3, 2.9, "local exponent at the largest d")
    assert case_sample_complexity(rejected, 2) == (
        NOT_SUPPORTED,
        "k: local exponent at the largest d 2.60 (CI 2.30-2.90) exceeds the bound's 2")
    # p exactly at the level is not a rejection; nan p (no bootstrap) neither
    for p in (LACK_OF_FIT, math.nan):
        kept = case(1.5, 1.2, 1.8, lack_of_fit_p=p, **local)
        assert kept.exponent() == (1.5, 1.2, 1.8, "exponent")
    # a rejected fit without a usable local exponent keeps the global one
    no_local = case(1.5, 1.2, 1.8, lack_of_fit_p=0.001, local=2.6, local_low=math.nan,
                    local_high=2.9)
    assert no_local.exponent()[3] == "exponent"


def test_claim_level_combination_and_evidence():
    good, fast = case(), case(3.0, 2.5, 3.5)
    few = case(identified=2)
    v = sample_complexity_verdict("C1", [good, fast], 2, {"x": 1})
    assert v.verdict == NOT_SUPPORTED
    assert v.evidence == {"x": 1, "per_case": {"k": NOT_SUPPORTED}}  # one name: last wins
    assert v.reason.count(" | ") == 1
    assert sample_complexity_verdict("C1", [good, good], 2, {}).verdict == SUPPORTED
    assert sample_complexity_verdict("C1", [good, few], 2, {}).verdict == INCONCLUSIVE
    assert sample_complexity_verdict("C1", [few, fast], 2, {}).verdict == NOT_SUPPORTED
    empty = sample_complexity_verdict("C2", [], 4, {})
    assert (empty.verdict, empty.reason) == (INCONCLUSIVE, "no E1 cases")
    as_json = v.as_json()
    assert as_json == {"id": "C1", "claim": CLAIMS["C1"], "verdict": NOT_SUPPORTED,
                       "reason": v.reason, "rule": RULES["C1"], "evidence": v.evidence}


# ------------------------------------------------------------------ C3


def level(p, growth_low=0.2, growth_high=0.6, absorbed_low=0.0, absorbed_high=0.1,
          any_return=True):
    return NoiseLevelRecurrence(p, 16, any_return, (growth_low + growth_high) / 2, growth_low,
                                growth_high, 0.0, absorbed_low, absorbed_high)


CLEAN = level(0.0, math.nan, math.nan, absorbed_low=0.9, absorbed_high=1.0, any_return=False)


def test_recurrence_supported_with_and_without_a_clean_level():
    v = recurrence_verdict([CLEAN, level(0.05), level(0.1, growth_low=-0.1)], {"e": 2})
    assert (v.verdict, v.reason, v.evidence) == (
        SUPPORTED, "returns keep growing with T at p = 0.05; p = 0 is absorbed", {"e": 2})
    v = recurrence_verdict([level(0.05), level(0.2)], {})
    assert (v.verdict, v.reason) == (SUPPORTED, "returns keep growing at p = 0.05, 0.2")
    # absorbed share's lower bound exactly at HIGH is absorbed
    at_high = level(0.0, math.nan, math.nan, absorbed_low=HIGH, absorbed_high=1.0)
    assert recurrence_verdict([at_high, level(0.05)], {}).verdict == SUPPORTED


def test_recurrence_boundaries_of_a_recurrent_level():
    # growth CI touching 0 is not wholly above 0; absorbed upper bound at LOW is not below LOW
    for noisy in (level(0.05, growth_low=0.0), level(0.05, absorbed_high=LOW),
                  level(0.05, growth_low=math.nan)):
        v = recurrence_verdict([CLEAN, noisy], {})
        assert (v.verdict, v.reason) == (
            INCONCLUSIVE, "no p > 0 with a growth CI above 0 and non-absorbed trials")
    assert recurrence_verdict([CLEAN, level(0.05, absorbed_high=LOW - 1e-9)], {}).verdict \
        == SUPPORTED


def test_recurrence_p0_not_absorbed_is_inconclusive():
    leaky = level(0.0, math.nan, math.nan, absorbed_low=HIGH - 0.01, absorbed_high=1.0)
    v = recurrence_verdict([leaky, level(0.05)], {})
    assert (v.verdict, v.reason) == (INCONCLUSIVE, "recurrence seen, but p = 0 was not absorbed")


def test_recurrence_not_supported_branches():
    never = recurrence_verdict([CLEAN, level(0.05, -0.5, 0.3, any_return=False)], {})
    assert (never.verdict, never.reason) == (
        NOT_SUPPORTED, "no trial at any p > 0 ever returned to w*")
    # every growth CI at or below 0 (0 exactly included)
    stop = recurrence_verdict(
        [CLEAN, level(0.05, -0.5, 0.0), level(0.1, -0.5, -0.1)], {})
    assert (stop.verdict, stop.reason) == (NOT_SUPPORTED, "returns stop growing at every p > 0")
    # one level with an undefined or positive upper end keeps it open
    for high in (math.nan, 1e-9):
        v = recurrence_verdict([CLEAN, level(0.05, -0.5, 0.0), level(0.1, -0.5, high)], {})
        assert v.verdict == INCONCLUSIVE
    # one level that returned is enough to leave the "never returned" branch
    mixed = recurrence_verdict([level(0.05, -0.5, 0.3, any_return=False),
                                level(0.1, -0.5, 0.3)], {})
    assert mixed.verdict == INCONCLUSIVE


def test_recurrence_without_noise_levels_is_inconclusive():
    v = recurrence_verdict([CLEAN], {})
    assert (v.id, v.verdict, v.reason) == ("C3", INCONCLUSIVE, "no noise level p > 0 was run")


# ------------------------------------------------------------------ C4


def cell(dist, norm, low, high, balance=0.75):
    return SuccessCell(dist, norm, balance, (low + high) / 2, low, high)


GAUSS = cell("gaussian", "none", 0.9, 1.0)


def _failing(dists, restored):
    cells = [GAUSS]
    for i, dist in enumerate(dists):
        cells.append(cell(dist, "none", 0.0, 0.2))
        cells.append(cell(dist, "center", 0.9, 1.0) if i < restored
                     else cell(dist, "center", 0.1, 0.4))
    return cells


@pytest.mark.parametrize("restored, verdict", [
    (4, SUPPORTED), (3, SUPPORTED), (2, INCONCLUSIVE), (1, INCONCLUSIVE), (0, NOT_SUPPORTED)])
def test_restored_share_bands(restored, verdict):
    """4 failures: shares 1, 0.75 (>= 0.75: supported), 0.5, 0.25 (the inconclusive band
    includes 0.25 exactly), 0."""
    v = normalization_verdict(_failing(["a", "b", "c", "e"], restored), {"z": 0})
    assert v.verdict == verdict
    assert v.evidence["restored_share"] == restored / 4
    assert v.evidence["raw_failures"] == ["a@0.75", "b@0.75", "c@0.75", "e@0.75"]
    assert v.reason == f"4 raw failures, {restored / 4:.0%} restored by some normalization"
    assert v.evidence["z"] == 0 and v.id == "C4"


def test_a_failure_needs_the_gaussian_reference_at_the_same_balance():
    lone = [cell("exponential", "none", 0.0, 0.1)]
    v = normalization_verdict(lone, {})
    assert (v.verdict, v.reason) == (
        NOT_SUPPORTED, "no distribution failed raw where Gaussian succeeded")
    assert v.evidence == {"raw_failures": [], "restored_by": {}, "restored_share": 0.0}
    other_balance = [cell("gaussian", "none", 0.9, 1.0, balance=0.5),
                     cell("exponential", "none", 0.0, 0.1)]
    assert normalization_verdict(other_balance, {}).evidence["raw_failures"] == []
    # reference exactly at HIGH counts; just below does not
    at_high = [cell("gaussian", "none", HIGH, 1.0), cell("exponential", "none", 0.0, 0.1)]
    assert normalization_verdict(at_high, {}).evidence["raw_failures"] == ["exponential@0.75"]
    below = [cell("gaussian", "none", HIGH - 1e-9, 1.0), cell("exponential", "none", 0.0, 0.1)]
    assert normalization_verdict(below, {}).evidence["raw_failures"] == []
    # a raw upper bound exactly at LOW is not a failure
    at_low = [GAUSS, cell("exponential", "none", 0.0, LOW)]
    assert normalization_verdict(at_low, {}).evidence["raw_failures"] == []
    # the Gaussian cell never fails against itself
    assert normalization_verdict([cell("gaussian", "none", 0.9, 0.3)], {}).evidence[
        "raw_failures"] == []


def test_restoration_lists_every_fix_at_high_and_only_those():
    cells = [GAUSS, cell("exponential", "none", 0.0, 0.1),
             cell("exponential", "whiten", HIGH, 1.0), cell("exponential", "center", 0.9, 1.0),
             cell("exponential", "standardize", HIGH - 1e-9, 1.0),
             cell("exponential", "batchnorm", 0.9, 1.0, balance=0.5),
             cell("lognormal", "center", 0.9, 1.0)]
    v = normalization_verdict(cells, {})
    assert v.evidence["restored_by"] == {"exponential@0.75": ["center", "whiten"]}
    assert v.verdict == SUPPORTED


# ------------------------------------------------------------------ evidence from known rows


def _e1_rows(alpha: float, rng: np.random.Generator) -> pd.DataFrame:
    """Per-trial success of a known curve P(n) = logistic(4 log(n / n50)), n50 = 2 d^alpha,
    on a grid n = n50 * 2^{-3..3}, 40 trials per n (two success notions drawn alike)."""
    records = []
    for d in (8, 16, 32, 64):
        n50 = 2.0 * d**alpha
        for n in np.round(n50 * 2.0 ** np.arange(-3, 4)):
            p = 1.0 / (1.0 + (n50 / n) ** 4)
            for s_last, s_erg in zip(rng.random(40) < p, rng.random(40) < p, strict=True):
                records.append({"case": "m1_sign_identity", "d": d, "n": int(n),
                                "success_last": s_last, "success_ergodic": s_erg})
    return pd.DataFrame(records)


def _derived(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    thresholds = analysis.thresholds_by(rows, by=("case", "d"), n_boot=300)
    local = pd.concat([
        analysis.local_exponents(g.drop(columns=["case", "success"])).assign(case=c, success=s)
        for (c, s), g in thresholds.groupby(["case", "success"])], ignore_index=True)
    largest = rows[rows["n"] == rows.groupby(["case", "d"])["n"].transform("max")]
    return {
        "e1_thresholds": thresholds,
        "e1_scaling": analysis.scaling_by(thresholds, by=("case", "success"), n_boot=300),
        "e1_local_exponents": local,
        "e1_reach": analysis.success_table(largest, by=("case", "d", "n"),
                                           success=("success_last", "success_ergodic")),
    }


@pytest.mark.parametrize("alpha, c1, c2", [(1.0, SUPPORTED, SUPPORTED),
                                           (3.0, NOT_SUPPORTED, SUPPORTED)])
def test_sample_complexity_claims_from_rows_of_a_known_exponent(alpha, c1, c2):
    """At the largest n (8 n50) P = 1 - 1/4097, so the 40 trials there succeed and the Wilson
    lower bound of 40/40 (0.912) is >= HIGH; the exponent CI from 4 d brackets alpha."""
    derived = _derived(_e1_rows(alpha, np.random.default_rng(3)))
    case_ = evidence._case_scaling(derived, "m1_sign_identity", "success_ergodic")
    assert case_.identified == 4
    assert case_.alpha_low < alpha < case_.alpha_high
    assert [r.d for r in sorted(case_.reach, key=lambda r: r.d)] == [8, 16, 32, 64]
    assert all(r.rate == 1.0 and r.ci_low == pytest.approx(0.9124, abs=1e-4)
               for r in case_.reach)
    assert math.isfinite(case_.local) and case_.local_low < case_.local_high
    v1 = evidence.sample_complexity_claim("C1", derived)
    v2 = evidence.sample_complexity_claim("C2", derived)
    assert (v1.verdict, v2.verdict) == (c1, c2)
    assert v1.evidence["success_notion"] == "success_ergodic"
    assert v2.evidence["success_notion"] == "success_last"
    assert v1.evidence["bound_exponent"] == 2.0 and v2.evidence["bound_exponent"] == 4.0
    n50 = v1.evidence["n50"]["m1_sign_identity"]
    assert set(n50) == {"8", "16", "32", "64"}
    for d, entry in n50.items():
        assert entry["ci"][0] <= entry["n50"] <= entry["ci"][1]
        assert abs(math.log(entry["n50"] / (2.0 * int(d) ** alpha))) < 0.35
        assert entry["n50_over_d"] == pytest.approx(entry["n50"] / int(d), rel=1e-5)
    exp = v1.evidence["exponent"]["m1_sign_identity"]
    assert exp["ci"][0] < alpha < exp["ci"][1]


def test_recurrence_and_normalization_claims_from_known_tables():
    growth = pd.DataFrame({"noise_level": [0.0, 0.05], "trials": [20, 20],
                           "returns_mean": [0.0, 3.5], "late_rate": [0.0, 0.01],
                           "late_rate_ci_low": [math.nan, 0.004],
                           "late_rate_ci_high": [math.nan, 0.02]})
    absorbed = pd.concat([
        analysis.success_table(pd.DataFrame({"noise_level": [0.0] * 20 + [0.05] * 20,
                                             "absorbed": [True] * 20 + [False] * 20}),
                               by="noise_level", success=("absorbed",)),
    ])
    occupation = pd.DataFrame({"noise_level": [0.0, 0.05], "mean": [1.0, 0.4],
                               "ci_low": [1.0, 0.3], "ci_high": [1.0, 0.5]})
    v = evidence.recurrence_claim({"e3_growth": growth, "e3_absorbed": absorbed,
                                   "e3_occupation": occupation})
    assert v.verdict == SUPPORTED
    per = v.evidence["per_noise_level"]
    assert per["p=0.05"]["late_rate_ci"] == [0.004, 0.02]
    assert per["p=0"]["absorbed"] == 1.0 and per["p=0.05"]["absorbed"] == 0.0
    assert per["p=0"]["absorbed_ci"][0] == pytest.approx(0.8389, abs=1e-4)  # Wilson 20/20
    assert per["p=0.05"]["occupation_ci"] == [0.3, 0.5]

    rows = pd.DataFrame({
        "distribution": ["gaussian"] * 30 + ["exponential"] * 60,
        "normalization": ["none"] * 30 + ["none"] * 30 + ["center"] * 30,
        "teacher_balance": [0.75] * 90,
        "success_last": [True] * 30 + [False] * 30 + [True] * 30,
    })
    table = analysis.success_table(rows, by=("distribution", "normalization", "teacher_balance"),
                                   success=("success_last",))
    v4 = evidence.normalization_claim({"e4_success": table})
    assert v4.verdict == SUPPORTED
    assert v4.evidence["restored_by"] == {"exponential@0.75": ["center"]}
    assert isinstance(v4, Verdict)


def test_every_branch_names_its_claim_and_keeps_the_evidence():
    leaky = level(0.0, math.nan, math.nan, absorbed_low=HIGH - 0.01, absorbed_high=1.0)
    branches = {
        SUPPORTED: [CLEAN, level(0.05)],
        "no noise": [CLEAN],
        "never": [CLEAN, level(0.05, -0.5, 0.3, any_return=False)],
        "stop": [CLEAN, level(0.05, -0.5, 0.0)],
        "leaky": [leaky, level(0.05)],
        "open": [CLEAN, level(0.05, -0.5, 0.3)],
        # neither recurrent nor absorbed at p = 0: the generic reason, not the p = 0 one
        "neither": [leaky, level(0.05, -0.5, 0.3)],
    }
    reasons = set()
    for levels in branches.values():
        given = {"marker": object()}
        v = recurrence_verdict(levels, given)
        assert v.id == "C3" and v.evidence is given
        reasons.add(v.reason)
    assert len(reasons) == len(branches) - 1  # "open" and "neither" share the generic reason
    assert recurrence_verdict(branches["neither"], {}).reason == (
        "no p > 0 with a growth CI above 0 and non-absorbed trials")
    for cells in ([GAUSS], _failing(["a"], 1), _failing(["a", "b"], 1), _failing(["a"], 0)):
        v = normalization_verdict(cells, {"k": 1})
        assert v.id == "C4" and v.evidence["k"] == 1


def test_reasons_name_exactly_what_is_missing():
    # an undefined CI end: unusable, whatever the other end says
    assert case_sample_complexity(case(1.5, 1.2, math.nan), 2)[1] == (
        "k: n50 identified at only 5 d or exponent CI undefined")
    # upper end exactly at the bound is not "above" it: only the reach is missing
    assert case_sample_complexity(case(1.5, 1.0, 2.0, reaches=[]), 2)[1] == (
        "k: success not reached at the largest n of every d")
    v = sample_complexity_verdict("C1", [case(), case(identified=1)], 2, {})
    assert v.reason == ("k: exponent 1.50 (CI 1.20-1.80) <= 2 and success reached at every d | "
                        "k: n50 identified at only 1 d or exponent CI undefined")


def test_local_exponent_needs_all_three_numbers():
    for local, low, high in ((2.6, 2.3, math.nan), (math.nan, 2.3, 2.9), (2.6, math.nan, 2.9)):
        c = case(1.5, 1.2, 1.8, lack_of_fit_p=0.001, local=local, local_low=low, local_high=high)
        assert c.exponent() == (1.5, 1.2, 1.8, "exponent")
