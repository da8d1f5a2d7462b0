"""Verdicts on the paper's claims C1-C4, computed from measured evidence by written rules.

Every rule is stated in :data:`RULES` (copied into claims.json and the report) and implemented by
one function below; nothing is typed in. Verdicts: "supported", "not supported", "inconclusive".
The bounds of the paper are sufficient conditions (upper bounds on the sample size needed), so
measured thresholds that grow more slowly than the bound are consistent with the claim, and only
a failure where the bound promises success, or growth faster than the bound, contradicts it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"

CLAIMS: dict[str, str] = {
    "C1": "Ergodic sample complexity: with n large enough in terms of d (bound of order d^2), "
    "the time average of the STE-gradient iterates reaches the teacher's weights w*.",
    "C2": "Non-ergodic sample complexity: with n large enough (bound of order d^4), the last "
    "iterate converges to w*.",
    "C3": "Recurrence: with label noise, the iterates keep escaping from and returning to w*.",
    "C4": "STE fails on general non-Gaussian data, and normalization restores it.",
}

#: success rates at or above this (Wilson lower bound) count as reaching the optimum
HIGH = 0.8
#: success rates below this (Wilson upper bound) count as failure
LOW = 0.5
#: thresholds must be identified at this many d for an exponent to be usable
MIN_IDENTIFIED = 3
#: below this lack-of-fit p-value a single power law is rejected for the local exponent
LACK_OF_FIT = 0.05

RULES: dict[str, str] = {
    "C1": (
        "Per E1 case, with ergodic success: NOT SUPPORTED if at some d with n_max >= d^2 the "
        f"success rate's 95% Wilson upper bound is < {LOW}, or if n50 is identified at >= "
        f"{MIN_IDENTIFIED} d and the exponent's 95% CI lies wholly above 2; SUPPORTED if n50 is "
        f"identified at >= {MIN_IDENTIFIED} d, the exponent's CI upper end is <= 2 and at every d "
        f"the success rate at the largest n has Wilson lower bound >= {HIGH}; else INCONCLUSIVE. "
        "The exponent is the global fit of n50 = C d^alpha, or, where that fit fails its "
        f"lack-of-fit test (p < {LACK_OF_FIT}), the local exponent between the two largest d. "
        "Overall: not supported if any case is, supported if all cases are, else inconclusive."
    ),
    "C2": "As C1 with last-iterate success and the bound d^4.",
    "C3": (
        "From E3: a noise level p > 0 is RECURRENT when the number of returns to w* keeps growing "
        "with the horizon (95% CI of the growth rate over the second half of the run wholly above "
        f"0) and the trials are not absorbed (Wilson upper bound of the absorbed share < {LOW}). "
        "SUPPORTED if some p > 0 is recurrent and p = 0 (when run) is absorbed (Wilson lower bound "
        f">= {HIGH}); NOT SUPPORTED if no trial at any p > 0 returns to w* at all, or every p > 0 "
        "has a growth-rate CI wholly at or below 0; else INCONCLUSIVE."
    ),
    "C4": (
        "From E4 (last-iterate success): a raw (normalization 'none') cell FAILS when its "
        f"success Wilson upper bound is < {LOW} while the Gaussian raw cell at the same teacher "
        f"balance has Wilson lower bound >= {HIGH}; a failure is RESTORED when some normalization "
        f"reaches Wilson lower bound >= {HIGH}. SUPPORTED if at least one raw cell fails and "
        ">= 75% of failures are restored; NOT SUPPORTED if no raw cell fails or < 25% are "
        "restored; else INCONCLUSIVE."
    ),
}


@dataclass
class Verdict:
    """A claim's verdict with the reason and the evidence it rests on."""

    id: str
    verdict: str
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "claim": CLAIMS[self.id],
            "verdict": self.verdict,
            "reason": self.reason,
            "rule": RULES[self.id],
            "evidence": self.evidence,
        }


@dataclass
class ReachAtLargestN:
    """Success at the largest n of one d: Wilson interval of the rate."""

    d: int
    n_max: int
    rate: float
    ci_low: float
    ci_high: float


@dataclass
class CaseScaling:
    """Evidence for one E1 case and one success notion.

    ``alpha*`` is the global power-law fit; ``lack_of_fit_p`` its test; ``local*`` the exponent
    between the two largest identified d (nan when fewer than two)."""

    case: str
    alpha: float
    alpha_low: float
    alpha_high: float
    identified: int  # number of d with a finite n50
    reach: list[ReachAtLargestN]
    lack_of_fit_p: float = math.nan
    local: float = math.nan
    local_low: float = math.nan
    local_high: float = math.nan

    def exponent(self) -> tuple[float, float, float, str]:
        """The exponent the rule compares with the bound: the global fit, or, when a single
        power law does not fit (lack-of-fit p < LACK_OF_FIT), the local exponent at the largest
        d (the asymptotically relevant end)."""
        if _finite(self.lack_of_fit_p) and self.lack_of_fit_p < LACK_OF_FIT and _finite(
            self.local, self.local_low, self.local_high
        ):
            return self.local, self.local_low, self.local_high, "local exponent at the largest d"
        return self.alpha, self.alpha_low, self.alpha_high, "exponent"


def _finite(*values: float) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


def case_sample_complexity(case: CaseScaling, bound: float) -> tuple[str, str]:
    """The C1/C2 rule for one case against the bound n ~ d^bound."""
    for r in case.reach:
        if r.n_max >= r.d**bound and r.ci_high < LOW:
            return NOT_SUPPORTED, (
                f"{case.case}: at d={r.d}, n={r.n_max} >= d^{bound:g} but success is only "
                f"{r.rate:.2f} (CI {r.ci_low:.2f}-{r.ci_high:.2f})"
            )
    alpha, low, high, name = case.exponent()
    usable = case.identified >= MIN_IDENTIFIED and _finite(low, high)
    if usable and low > bound:
        return NOT_SUPPORTED, (
            f"{case.case}: {name} {alpha:.2f} (CI {low:.2f}-{high:.2f}) exceeds the bound's "
            f"{bound:g}"
        )
    reached = bool(case.reach) and all(r.ci_low >= HIGH for r in case.reach)
    if usable and high <= bound and reached:
        return SUPPORTED, (
            f"{case.case}: {name} {alpha:.2f} (CI {low:.2f}-{high:.2f}) <= {bound:g} and "
            "success reached at every d"
        )
    why = []
    if not usable:
        why.append(f"n50 identified at only {case.identified} d or exponent CI undefined")
    elif high > bound:
        why.append(f"{name} CI upper end {high:.2f} above {bound:g}")
    if not reached:
        why.append("success not reached at the largest n of every d")
    return INCONCLUSIVE, f"{case.case}: " + "; ".join(why)


def sample_complexity_verdict(
    claim_id: str, cases: list[CaseScaling], bound: float, evidence: dict[str, Any]
) -> Verdict:
    """Combine the per-case rule: any not supported -> not supported; all supported -> supported."""
    results = [case_sample_complexity(case, bound) for case in cases]
    verdicts = [v for v, _ in results]
    if not results:
        overall = INCONCLUSIVE
    elif NOT_SUPPORTED in verdicts:
        overall = NOT_SUPPORTED
    elif all(v == SUPPORTED for v in verdicts):
        overall = SUPPORTED
    else:
        overall = INCONCLUSIVE
    reason = " | ".join(r for _, r in results) or "no E1 cases"
    evidence = {
        **evidence,
        "per_case": {c.case: v for c, (v, _) in zip(cases, results, strict=True)},
    }
    return Verdict(claim_id, overall, reason, evidence)


@dataclass
class NoiseLevelRecurrence:
    """E3 evidence at one noise level."""

    p: float
    trials: int
    any_return: bool  # some trial returned to w* at least once
    growth: float  # returns per step over the second half of the run
    growth_low: float
    growth_high: float
    absorbed_rate: float
    absorbed_low: float
    absorbed_high: float


def recurrence_verdict(levels: list[NoiseLevelRecurrence], evidence: dict[str, Any]) -> Verdict:
    """The C3 rule."""
    noisy = [lv for lv in levels if lv.p > 0]
    clean = [lv for lv in levels if lv.p == 0]
    recurrent = [
        lv
        for lv in noisy
        if _finite(lv.growth_low) and lv.growth_low > 0 and lv.absorbed_high < LOW
    ]
    absorbed_clean = all(lv.absorbed_low >= HIGH for lv in clean)
    if recurrent and absorbed_clean:
        ps = ", ".join(f"{lv.p:g}" for lv in recurrent)
        return Verdict(
            "C3",
            SUPPORTED,
            f"returns keep growing with T at p = {ps}; p = 0 is absorbed"
            if clean
            else f"returns keep growing at p = {ps}",
            evidence,
        )
    if not noisy:
        return Verdict("C3", INCONCLUSIVE, "no noise level p > 0 was run", evidence)
    if not any(lv.any_return for lv in noisy):
        return Verdict("C3", NOT_SUPPORTED, "no trial at any p > 0 ever returned to w*", evidence)
    if all(_finite(lv.growth_high) and lv.growth_high <= 0 for lv in noisy):
        return Verdict("C3", NOT_SUPPORTED, "returns stop growing at every p > 0", evidence)
    reason = "no p > 0 with a growth CI above 0 and non-absorbed trials"
    if recurrent and not absorbed_clean:
        reason = "recurrence seen, but p = 0 was not absorbed"
    return Verdict("C3", INCONCLUSIVE, reason, evidence)


@dataclass
class SuccessCell:
    """E4 success of one (distribution, normalization, teacher balance) cell."""

    distribution: str
    normalization: str
    balance: float
    rate: float
    ci_low: float
    ci_high: float


def normalization_verdict(cells: list[SuccessCell], evidence: dict[str, Any]) -> Verdict:
    """The C4 rule."""
    raw = {(c.distribution, c.balance): c for c in cells if c.normalization == "none"}
    failures = []
    for (dist, balance), c in sorted(raw.items()):
        reference = raw.get(("gaussian", balance))
        if dist != "gaussian" and reference and reference.ci_low >= HIGH and c.ci_high < LOW:
            failures.append((dist, balance))
    restored = {}
    for dist, balance in failures:
        fixes = sorted(
            c.normalization
            for c in cells
            if c.distribution == dist
            and c.balance == balance
            and c.normalization != "none"
            and c.ci_low >= HIGH
        )
        restored[f"{dist}@{balance:g}"] = fixes
    share = sum(1 for fixes in restored.values() if fixes) / len(failures) if failures else 0.0
    evidence = {
        **evidence,
        "raw_failures": [f"{d}@{b:g}" for d, b in failures],
        "restored_by": restored,
        "restored_share": share,
    }
    if not failures:
        return Verdict(
            "C4", NOT_SUPPORTED, "no distribution failed raw where Gaussian succeeded", evidence
        )
    summary = f"{len(failures)} raw failures, {share:.0%} restored by some normalization"
    if share >= 0.75:
        return Verdict("C4", SUPPORTED, summary, evidence)
    if share < 0.25:
        return Verdict("C4", NOT_SUPPORTED, summary, evidence)
    return Verdict("C4", INCONCLUSIVE, summary, evidence)
