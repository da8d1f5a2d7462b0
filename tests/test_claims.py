"""The written verdict rules on hand-made evidence."""

from __future__ import annotations

import math

from stelab.claims import (
    NOT_SUPPORTED,
    SUPPORTED,
    CaseScaling,
    NoiseLevelRecurrence,
    ReachAtLargestN,
    SuccessCell,
    normalization_verdict,
    recurrence_verdict,
    sample_complexity_verdict,
)


def _reach(rate_low: float, d: int = 64, n_max: int = 4096) -> list[ReachAtLargestN]:
    return [ReachAtLargestN(d=d, n_max=n_max, rate=1.0, ci_low=rate_low, ci_high=1.0)]


def test_sample_complexity_rules():
    good = CaseScaling("a", 1.1, 0.9, 1.3, identified=5, reach=_reach(0.9))
    fast = CaseScaling("b", 3.0, 2.5, 3.5, identified=5, reach=_reach(0.9))
    few = CaseScaling("c", 1.0, 0.5, 1.5, identified=2, reach=_reach(0.9))
    assert sample_complexity_verdict("C1", [good], 2, {}).verdict == SUPPORTED
    assert sample_complexity_verdict("C1", [good, fast], 2, {}).verdict == NOT_SUPPORTED
    assert sample_complexity_verdict("C1", [good, few], 2, {}).verdict == "inconclusive"
    failing = CaseScaling(
        "d",
        1.0,
        0.9,
        1.1,
        identified=5,
        reach=[ReachAtLargestN(d=8, n_max=64, rate=0.1, ci_low=0.0, ci_high=0.3)],
    )
    assert sample_complexity_verdict("C1", [failing], 2, {}).verdict == NOT_SUPPORTED
    assert sample_complexity_verdict("C2", [failing], 4, {}).verdict == "inconclusive"


def test_curved_scaling_is_judged_by_the_local_exponent_at_the_largest_d():
    curved = CaseScaling("e", 1.8, 1.7, 1.9, identified=5, reach=_reach(0.9),
                         lack_of_fit_p=0.001, local=2.6, local_low=2.3, local_high=2.9)
    assert sample_complexity_verdict("C1", [curved], 2, {}).verdict == NOT_SUPPORTED
    assert "local exponent" in sample_complexity_verdict("C1", [curved], 2, {}).reason
    straight = CaseScaling("f", 1.8, 1.7, 1.9, identified=5, reach=_reach(0.9),
                           lack_of_fit_p=0.5, local=2.6, local_low=2.3, local_high=2.9)
    assert sample_complexity_verdict("C1", [straight], 2, {}).verdict == SUPPORTED


def _level(p, growth_low, absorbed_high, any_return=True, absorbed_low=0.0):
    return NoiseLevelRecurrence(
        p, 16, any_return, 1.0, growth_low, growth_low + 1, 0.0, absorbed_low, absorbed_high
    )


def test_recurrence_rules():
    clean = _level(0.0, math.nan, 1.0, absorbed_low=0.9)
    assert recurrence_verdict([clean, _level(0.05, 0.2, 0.1)], {}).verdict == SUPPORTED
    assert (
        recurrence_verdict([clean, _level(0.05, -2, 0.1, any_return=False)], {}).verdict
        == NOT_SUPPORTED
    )
    assert recurrence_verdict([clean, _level(0.05, -0.5, 0.1)], {}).verdict == "inconclusive"


def test_normalization_rules():
    def c(dist, norm, low, high, balance=0.75):
        return SuccessCell(dist, norm, balance, (low + high) / 2, low, high)

    cells = [
        c("gaussian", "none", 0.9, 1.0),
        c("exponential", "none", 0.0, 0.1),
        c("exponential", "center", 0.9, 1.0),
        c("uniform", "none", 0.9, 1.0),
    ]
    verdict = normalization_verdict(cells, {})
    assert verdict.verdict == SUPPORTED
    assert verdict.evidence["restored_by"] == {"exponential@0.75": ["center"]}
    unrestored = [cells[0], cells[1], c("exponential", "center", 0.0, 0.2)]
    assert normalization_verdict(unrestored, {}).verdict == NOT_SUPPORTED
    assert normalization_verdict([cells[0], cells[3]], {}).verdict == NOT_SUPPORTED
