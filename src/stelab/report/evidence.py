"""From derived tables to the claims' evidence and verdicts (rules in :mod:`stelab.claims`).

The claims read derived tables by name, never an experiment: whichever experiment provides
``e1_scaling`` (and the other tables of :data:`CLAIM_EVIDENCE`) gives C1 its evidence."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from stelab.claims import (
    CaseScaling,
    NoiseLevelRecurrence,
    ReachAtLargestN,
    SuccessCell,
    Verdict,
    normalization_verdict,
    recurrence_verdict,
    sample_complexity_verdict,
)

#: the bound exponent of each sample-complexity claim and the success notion it concerns
BOUNDS = {"C1": (2.0, "success_ergodic"), "C2": (4.0, "success_last")}
#: the derived tables the sample-complexity claims read (``e1_horizon_thresholds`` when present)
SAMPLE_COMPLEXITY_TABLES = ("e1_scaling", "e1_thresholds", "e1_reach", "e1_local_exponents")


def _num(value: Any) -> float | None:
    """JSON-friendly float (None for nan)."""
    value = float(value)
    return None if math.isnan(value) else round(value, 6)


def _case_scaling(derived: dict[str, pd.DataFrame], case: str, success: str) -> CaseScaling:
    fit = derived["e1_scaling"]
    fit = fit[(fit["case"] == case) & (fit["success"] == success)].iloc[0]
    thr = derived["e1_thresholds"]
    thr = thr[(thr["case"] == case) & (thr["success"] == success)]
    reach = derived["e1_reach"]
    reach = reach[(reach["case"] == case) & (reach["metric"] == success)]
    local = derived["e1_local_exponents"]
    local = local[(local["case"] == case) & (local["success"] == success)]
    top = local.sort_values("d_high").iloc[-1] if len(local) else None
    return CaseScaling(
        case=case,
        alpha=float(fit["alpha"]),
        alpha_low=float(fit["alpha_ci_low"]),
        alpha_high=float(fit["alpha_ci_high"]),
        lack_of_fit_p=float(fit["lack_of_fit_p"]),
        local=float(top["local_alpha"]) if top is not None else math.nan,
        local_low=float(top["ci_low"]) if top is not None else math.nan,
        local_high=float(top["ci_high"]) if top is not None else math.nan,
        identified=int(thr["identified"].sum()),
        reach=[
            ReachAtLargestN(int(r.d), int(r.n), float(r.rate), float(r.ci_low), float(r.ci_high))
            for r in reach.itertuples()
        ],
    )


def _threshold_evidence(derived: dict[str, pd.DataFrame], success: str) -> dict[str, Any]:
    thr = derived["e1_thresholds"]
    thr = thr[thr["success"] == success]
    out: dict[str, Any] = {}
    for case, group in thr.groupby("case"):
        out[case] = {
            str(int(r.d)): {
                "n50": _num(r.n50),
                "ci": [_num(r.ci_low), _num(r.ci_high)],
                "n50_over_d": _num(r.n50 / r.d),
                "reason": r.reason or None,
            }
            for r in group.itertuples()
        }
    return out


def sample_complexity_claim(claim_id: str, derived: dict[str, pd.DataFrame]) -> Verdict:
    """C1 (ergodic, bound d^2) or C2 (last iterate, bound d^4) from E1."""
    bound, success = BOUNDS[claim_id]
    cases = sorted(derived["e1_scaling"]["case"].unique())
    per_case = [_case_scaling(derived, case, success) for case in cases]
    evidence: dict[str, Any] = {
        "success_notion": success,
        "bound_exponent": bound,
        "exponent": {
            c.case: {
                "alpha": _num(c.alpha),
                "ci": [_num(c.alpha_low), _num(c.alpha_high)],
                "lack_of_fit_p": _num(c.lack_of_fit_p),
                "local_alpha_at_largest_d": _num(c.local),
                "local_ci": [_num(c.local_low), _num(c.local_high)],
            }
            for c in per_case
        },
        "n50": _threshold_evidence(derived, success),
    }
    if claim_id == "C2" and "e1_horizon_thresholds" in derived:
        horizon = derived["e1_horizon_thresholds"]
        horizon = horizon[horizon["success"] == success]
        evidence["n50_by_step_size_and_horizon"] = {
            f"c={r.step_size:g},T={int(r.steps)}": {
                "n50": _num(r.n50),
                "ci": [_num(r.ci_low), _num(r.ci_high)],
            }
            for r in horizon.itertuples()
        }
    return sample_complexity_verdict(claim_id, per_case, bound, evidence)


def recurrence_claim(derived: dict[str, pd.DataFrame]) -> Verdict:
    """C3 from E3."""
    growth = derived["e3_growth"].set_index("noise_level")
    absorbed = derived["e3_absorbed"]
    absorbed = absorbed[absorbed["metric"] == "absorbed"].set_index("noise_level")
    occupation = derived["e3_occupation"].set_index("noise_level")
    levels = []
    for p in growth.index:
        g, a = growth.loc[p], absorbed.loc[p]
        levels.append(
            NoiseLevelRecurrence(
                p=float(p),
                trials=int(g["trials"]),
                any_return=bool(g["returns_mean"] > 0),
                growth=float(g["late_rate"]),
                growth_low=float(g["late_rate_ci_low"]),
                growth_high=float(g["late_rate_ci_high"]),
                absorbed_rate=float(a["rate"]),
                absorbed_low=float(a["ci_low"]),
                absorbed_high=float(a["ci_high"]),
            )
        )
    evidence = {
        f"p={lv.p:g}": {
            "returns_mean": _num(growth.loc[lv.p, "returns_mean"]),
            "late_return_rate_per_step": _num(lv.growth),
            "late_rate_ci": [_num(lv.growth_low), _num(lv.growth_high)],
            "absorbed": _num(lv.absorbed_rate),
            "absorbed_ci": [_num(lv.absorbed_low), _num(lv.absorbed_high)],
            "occupation": _num(occupation.loc[lv.p, "mean"]),
            "occupation_ci": [
                _num(occupation.loc[lv.p, "ci_low"]),
                _num(occupation.loc[lv.p, "ci_high"]),
            ],
        }
        for lv in levels
    }
    return recurrence_verdict(levels, {"per_noise_level": evidence})


def normalization_claim(derived: dict[str, pd.DataFrame]) -> Verdict:
    """C4 from E4 (and, as extra evidence, E5 real data when present)."""
    table = derived["e4_success"]
    table = table[table["metric"] == "success_last"]
    cells = [
        SuccessCell(
            r.distribution,
            r.normalization,
            float(r.teacher_balance),
            float(r.rate),
            float(r.ci_low),
            float(r.ci_high),
        )
        for r in table.itertuples()
    ]
    evidence: dict[str, Any] = {}
    if "e5_summary" in derived:
        evidence["real_data_e5_accuracy"] = derived["e5_summary"].to_dict(orient="records")
    if "e5_recovery" in derived:
        evidence["real_data_e5_teacher_recovery"] = derived["e5_recovery"].to_dict(orient="records")
    return normalization_verdict(cells, evidence)


#: claim id -> (the derived tables its evidence reads, the function that judges it). A claim is
#: judged when every table it reads was derived (the experiments declare which tables they
#: provide: ``Experiment.provides``).
CLAIM_EVIDENCE: dict[str, tuple[tuple[str, ...], Callable[[dict[str, pd.DataFrame]], Verdict]]] = {
    "C1": (SAMPLE_COMPLEXITY_TABLES, lambda derived: sample_complexity_claim("C1", derived)),
    "C2": (SAMPLE_COMPLEXITY_TABLES, lambda derived: sample_complexity_claim("C2", derived)),
    "C3": (("e3_growth", "e3_absorbed", "e3_occupation"), recurrence_claim),
    "C4": (("e4_success",), normalization_claim),
}


def verdicts(derived: dict[str, pd.DataFrame]) -> list[Verdict]:
    """Every claim whose evidence was derived, in claim order."""
    return [judge(derived) for needs, judge in CLAIM_EVIDENCE.values()
            if all(name in derived for name in needs)]
