"""E1 sample complexity (claims C1, C2): success probability vs n for several d.

Cells: for every case (m, activation, surrogate) of the profile's ``[[e1.case]]`` and every d,
n = r d for r in ``n_over_d``. The ergodic average is also evaluated at the ``checkpoints``
horizons, so thresholds at several horizons T come from one run. Derived: n50 per (case, d)
(Firth-penalized logistic fit in log n, clustered bootstrap CI) with alpha50 = n50 / d and
n50 / (d ln d), the exponent of n50 = C d^alpha per case and success notion, a pooled comparison
over d >= 64 of the laws a d^alpha, a d, a d ln d, a d^2, a d^2 ln d (and the d^4 shape) with
verdicts (:mod:`stelab.analysis.laws`), local exponents between neighbouring d, n50 per
checkpoint horizon, and the success at the largest n (the claims' reach).
The step-size and horizon axes at one d are the sibling experiment :mod:`e1_horizon`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from stelab import analysis
from stelab.config import Config
from stelab.experiments.cases import label_cases
from stelab.experiments.e1_plots import plot_n50_scaling, plot_success_curves, plot_success_heatmap
from stelab.experiments.profile import cell, sample_size, section
from stelab.experiments.registry import Experiment, Figures, Frames, SectionContext, Table
from stelab.render.markdown import fmt, interval, table

SUCCESS = ("success_last", "success_ergodic")
SCALING_MODELS = (*analysis.LAW_MODELS, "d^4")
#: the smallest d of the pooled law comparison (small d carry finite-size corrections)
LAW_D_MIN = 64


def grid_cells(
    profile: dict[str, Any], spec: dict[str, Any], case: dict[str, Any]
) -> list[Config]:
    """The fixed grid of one case: n = ceil(r d) for r in ``spec["n_over_d"]`` at every d of
    ``case["d"]``, ``spec["trials"]`` trials of ``spec["steps"]`` steps each (one seed, so trial
    k shares its streams across n)."""
    cells = []
    for d in case["d"]:
        for ratio in spec["n_over_d"]:
            cells.append(
                cell(
                    profile,
                    model={**case.get("model", {}), "d": d},
                    train={
                        **case.get("train", {}),
                        "n": sample_size(d, ratio),
                        "steps": spec["steps"],
                    },
                    run={"trials": spec["trials"]},
                    record={"trajectory": True, "checkpoints": spec.get("checkpoints", [])},
                )
            )
    return cells


def build_cells(profile: dict[str, Any]) -> list[Config]:
    """The E1 grid: every case x d x n."""
    spec = section(profile, "e1")
    return [c for case in spec["case"] for c in grid_cells(profile, spec, case)]


def label_rows(profile: dict[str, Any], rows: pd.DataFrame) -> pd.DataFrame:
    """The profile's E1 case names in a ``case`` column of the per-trial table."""
    return label_cases(rows, section(profile, "e1")["case"])


def with_case(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows with their ``case``: the stored column (the profile's names); for a table stored
    without one (before it existed), the label m<m>_<activation>_<surrogate>."""
    if "case" in rows and rows["case"].notna().all():
        return rows
    rows = rows.copy()
    rows["case"] = "m" + rows["m"].astype(str) + "_" + rows["activation"] + "_" + rows["ste"]
    return rows


def derive(tables: Frames, n_boot: int) -> Frames:
    """Thresholds per (case, d), exponents per (case, success) (global fit, model comparison and
    local exponents between neighbouring d), thresholds per horizon T (from the checkpoints) and
    the success at the largest n of every (case, d)."""
    rows = with_case(tables["e1"])
    thresholds = analysis.threshold_ratios(
        analysis.thresholds_by(rows, by=("case", "d"), success=SUCCESS, n_boot=n_boot))
    scaling = analysis.scaling_by(thresholds, by=("case", "success"), model="power", n_boot=n_boot)
    models = analysis.law_verdicts(pd.concat(
        [
            analysis.compare_scaling_models(
                group.drop(columns=["case", "success"]), models=SCALING_MODELS, n_boot=n_boot,
                d_min=LAW_D_MIN,
            ).assign(case=case, success=success)
            for (case, success), group in thresholds.groupby(["case", "success"])
        ],
        ignore_index=True,
    ))
    local = pd.concat(
        [
            analysis.local_exponents(group.drop(columns=["case", "success"]))
            .assign(case=case, success=success)
            for (case, success), group in thresholds.groupby(["case", "success"])
        ],
        ignore_index=True,
    )
    at_horizon = analysis.at_checkpoints(rows)
    by_horizon = analysis.threshold_ratios(analysis.thresholds_by(
        at_horizon, by=("case", "d", "steps"), success=SUCCESS, n_boot=n_boot, vary=("run_steps",)
    ))
    largest = rows[rows["n"] == rows.groupby(["case", "d"])["n"].transform("max")]
    reach = analysis.success_table(largest, by=("case", "d", "n"), success=SUCCESS)
    return {
        "e1_thresholds": thresholds,
        "e1_scaling": scaling,
        "e1_models": models,
        "e1_local_exponents": local,
        "e1_thresholds_by_horizon": by_horizon,
        "e1_reach": reach,
    }


def figures(tables: Frames, derived: Frames, folder: Path) -> Figures:
    rows = with_case(tables["e1"])
    out: Figures = {}
    for case, group in rows.groupby("case"):
        out[f"e1_heatmap_{case}"] = plot_success_heatmap(
            group, folder / f"e1_heatmap_{case}.png", success=SUCCESS
        )
        for success in SUCCESS:
            out[f"e1_curves_{case}_{success}"] = plot_success_curves(
                group, folder / f"e1_curves_{case}_{success}.png", success=success, by="d"
            )
        thresholds = derived["e1_thresholds"]
        thresholds = thresholds[thresholds["case"] == case].drop(columns="case")
        out[f"e1_n50_{case}"] = plot_n50_scaling(
            group, folder / f"e1_n50_{case}.png", success=SUCCESS, thresholds=thresholds
        )
    return out


def _bound_sentence(scaling: pd.DataFrame) -> str:
    """Plain statement of how the measured exponents compare with d^2 (C1) and d^4 (C2)."""
    sentences = []
    bounds = {"success_ergodic": ("ergodic", 2), "success_last": ("last-iterate", 4)}
    for r in scaling.itertuples():
        name, bound = bounds.get(r.success, (r.success, math.nan))
        if not math.isfinite(r.alpha):
            sentences.append(f"- {r.case}, {name}: exponent not identified ({r.reason}).")
            continue
        if math.isfinite(r.alpha_ci_high) and r.alpha_ci_high < bound:
            relation = f"well below the bound's order d^{bound}"
        elif math.isfinite(r.alpha_ci_low) and r.alpha_ci_low > bound:
            relation = f"ABOVE the bound's order d^{bound}"
        else:
            relation = f"not distinguishable from the bound's order d^{bound}"
        sentences.append(
            f"- {r.case}, {name} success: n50 grows like d^{r.alpha:.2f} (95% CI "
            f"{fmt(r.alpha_ci_low)}–{fmt(r.alpha_ci_high)}), {relation}; lack-of-fit p = "
            f"{fmt(r.lack_of_fit_p, 2)}."
        )
    return "\n".join(sentences)


def _horizon_sentence(by_horizon: pd.DataFrame) -> str:
    """Whether the last-iterate thresholds at the largest d are still falling at the horizon."""
    last = by_horizon[by_horizon["success"] == "success_last"]
    lines = ["Does the last-iterate threshold still move with the horizon? At the largest d of "
             "each case, n50 at the two longest checkpoint horizons:"]
    for case, group in last.groupby("case"):
        top = group[group["d"] == group["d"].max()].sort_values("steps")
        if len(top) < 2:
            continue
        before, after = top.iloc[-2], top.iloc[-1]
        falling = after["ci_high"] < before["ci_low"]
        verdict = ("still falling (95% CIs disjoint): the measured last-iterate thresholds at "
                   "large d are upper estimates of the long-horizon ones, and the last-iterate "
                   "exponent may be inflated by the finite horizon" if falling else
                   "95% CIs overlap: no significant change between these two horizons")
        lines.append(
            f"- {case}, d={int(after['d'])}: T={int(before['steps'])}: "
            f"{interval(before['n50'], before['ci_low'], before['ci_high'])}; "
            f"T={int(after['steps'])}: {interval(after['n50'], after['ci_low'], after['ci_high'])}"
            f" — {verdict}."
        )
    return "\n".join(lines)


def _threshold_table(group: pd.DataFrame) -> str:
    """One case's thresholds by d: n50, alpha50 = n50/d and n50/(d ln d) with their CIs."""
    wide: dict[int, dict[str, Any]] = {}
    for r in group.itertuples():
        wide.setdefault(int(r.d), {})[r.success] = r
    rows = []
    for d in sorted(wide):
        cells = [str(d)]
        for notion in ("success_ergodic", "success_last"):
            r = wide[d].get(notion)
            cells += ([interval(r.n50, r.ci_low, r.ci_high),
                       interval(r.alpha50, r.alpha50_ci_low, r.alpha50_ci_high),
                       interval(r.n50_per_dlogd, r.n50_per_dlogd_ci_low,
                                r.n50_per_dlogd_ci_high)] if r else ["—"] * 3)
        rows.append(tuple(cells))
    return table(("d", "n50 ergodic [95% CI]", "n50/d", "n50/(d ln d)",
                  "n50 last iterate [95% CI]", "n50/d", "n50/(d ln d)"), rows)


def _law_section(models: pd.DataFrame) -> list[str]:
    """The pooled law comparison (table and one verdict sentence per case and notion)."""
    names = {"success_ergodic": "ergodic", "success_last": "last iterate"}
    parts = [
        f"Which law does n50 follow? Pooled fits over d >= {LAW_D_MIN} of n50 = a d^alpha, "
        "a d, a d ln d, a d^2, a d^2 ln d (and the d^4 shape); lack of fit against the "
        "bootstrap variance of each log n50, AIC_w = chi2 + 2 k. A law is excluded when its "
        "lack-of-fit p < 0.05 or its AIC_w is more than 10 above the best law's "
        "(`stelab.analysis.law_verdicts`); \"not excluded\" is not \"confirmed\".\n",
        table(
            ("case", "success", "model", "alpha", "lack-of-fit p", "delta AIC_w", "verdict"),
            [(r.case, r.success, r.model, fmt(r.alpha), fmt(r.lack_of_fit_p, 2),
              fmt(r.delta_aic_w), r.verdict) for r in models.itertuples()],
        ),
        "",
    ]
    for (case, success), group in models.groupby(["case", "success"], sort=True):
        points = int(group["n_points"].max())
        parts.append(f"- {case}, {names.get(success, success)} ({points} d >= {LAW_D_MIN}): "
                     f"the data {analysis.law_sentence(group)}")
    return parts


def report_section(ctx: SectionContext) -> str:
    derived = ctx.derived
    thr = derived["e1_thresholds"]
    parts = [
        "## E1 Sample complexity (C1, C2)\n",
        "Success probability vs n on a grid of n/d for several d. n50 is the n of 50% "
        "success from a Firth-penalized logistic fit in log n, with a 95% bootstrap CI that "
        "resamples whole trials across every n (they share their random streams) "
        "(`—`: not identified by the grid). n50/d is alpha50, the samples per dimension. "
        "The exponent alpha fits n50 = C d^alpha.\n",
    ]
    for case, group in thr.groupby("case"):
        parts.append(f"### Case {case}\n")
        parts.append(_threshold_table(group))
        parts.append("")
        for name, caption in (
            (f"e1_heatmap_{case}", "success heatmap"),
            (f"e1_n50_{case}", "n50 vs d"),
            (f"e1_curves_{case}_success_last", "last-iterate success vs n"),
            (f"e1_curves_{case}_success_ergodic", "ergodic success vs n"),
        ):
            parts.append(ctx.image(name, f"{case}: {caption}"))
    scaling = derived["e1_scaling"]
    parts.append("### Exponents and the bounds\n")
    parts.append(
        table(
            ("case", "success", "alpha [95% CI]", "C", "lack-of-fit p", "d range"),
            [
                (
                    r.case,
                    r.success,
                    interval(r.alpha, r.alpha_ci_low, r.alpha_ci_high),
                    fmt(r.C),
                    fmt(r.lack_of_fit_p, 2),
                    f"{fmt(r.d_min)}–{fmt(r.d_max)}",
                )
                for r in scaling.itertuples()
            ],
        )
    )
    parts.append(
        "\nHow the measured thresholds compare with the bounds (d^2 for ergodic, d^4 "
        "for last-iterate convergence; the bounds are sufficient sample sizes, so "
        "thresholds growing more slowly are consistent with them):\n"
    )
    parts.append(_bound_sentence(scaling) + "\n")
    parts += _law_section(derived["e1_models"])
    local = derived["e1_local_exponents"]
    parts.append("\nLocal exponents between neighbouring d (slope of log n50; a drifting "
                 "local exponent means no single power law describes the range):\n")
    parts.append(table(
        ("case", "success", "d range", "local alpha [95% CI]", "CI width"),
        [(r.case, r.success, f"{fmt(r.d_low)}–{fmt(r.d_high)}",
          interval(r.local_alpha, r.ci_low, r.ci_high), fmt(r.ci_width, 2))
         for r in local.itertuples()],
    ))
    horizon = derived["e1_thresholds_by_horizon"]
    parts.append("\n" + _horizon_sentence(horizon) + "\n")
    parts.append("\nThresholds at the checkpoint horizons T (same runs; last iterate):\n")
    last = horizon[horizon["success"] == "success_last"]
    parts.append(
        table(
            ("case", "d", "T", "n50 last [95% CI]"),
            [
                (r.case, str(int(r.d)), str(int(r.steps)), interval(r.n50, r.ci_low, r.ci_high))
                for r in last.itertuples()
            ],
        )
    )
    parts.append("")
    return "\n".join(parts)


EXPERIMENT = Experiment(
    name="e1",
    title="E1 sample complexity: success vs n for several d (C1, C2)",
    profile_table="e1",
    tables=(Table("e1", "E1 sample complexity: success vs n for several d (C1, C2)",
                  cells=build_cells, label=label_rows),),
    derive=derive,
    provides=("e1_thresholds", "e1_scaling", "e1_models", "e1_local_exponents",
              "e1_thresholds_by_horizon", "e1_reach"),
    figures=figures,
    section=report_section,
    claims=("C1", "C2"),
)
