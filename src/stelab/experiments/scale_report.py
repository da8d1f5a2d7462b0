"""The scale experiment's report section, written from its derived tables only."""

from __future__ import annotations

import math

import pandas as pd

from stelab.analysis import law_sentence
from stelab.experiments.registry import SectionContext
from stelab.render.markdown import fmt, interval, table

NOTION = {"success_ergodic": "ergodic", "success_last": "last iterate"}


def _threshold_table(thresholds: pd.DataFrame) -> str:
    rows = []
    for r in thresholds.sort_values(["success", "d"]).itertuples():
        rows.append((NOTION.get(r.success, r.success), str(int(r.d)),
                     interval(r.n50, r.ci_low, r.ci_high),
                     interval(r.alpha50, r.alpha50_ci_low, r.alpha50_ci_high),
                     interval(r.n50_per_dlogd, r.n50_per_dlogd_ci_low, r.n50_per_dlogd_ci_high),
                     fmt(math.log(r.ci_high / r.ci_low), 2), str(int(r.n_trials))))
    return table(("success", "d", "n50 [95% CI]", "alpha50 = n50/d", "n50/(d ln d)",
                  "CI width of ln n50", "trials"), rows)


def _local_table(local: pd.DataFrame) -> str:
    return table(("case", "success", "d range", "local exponent [95% CI]", "CI width"),
                 [(r.case, NOTION.get(r.success, r.success), f"{fmt(r.d_low)}–{fmt(r.d_high)}",
                   interval(r.local_alpha, r.ci_low, r.ci_high), fmt(r.ci_high - r.ci_low, 2))
                  for r in local.itertuples()])


def _laws_table(laws: pd.DataFrame) -> str:
    return table(("case", "success", "law", "alpha [95% CI]", "lack-of-fit p", "delta AIC_w",
                  "d range", "verdict"),
                 [(r.case, NOTION.get(r.success, r.success), r.model,
                   interval(r.alpha, r.alpha_ci_low, r.alpha_ci_high), fmt(r.lack_of_fit_p, 2),
                   fmt(r.delta_aic_w, 3), f"{fmt(r.d_min)}–{fmt(r.d_max)}", r.verdict)
                  for r in laws.itertuples()])


def _law_sentences(laws: pd.DataFrame) -> str:
    return "\n".join(f"- {case}, {NOTION.get(success, success)}: the thresholds "
                     f"{law_sentence(group)}"
                     for (case, success), group in laws.groupby(["case", "success"]))


def _horizon_table(horizon: pd.DataFrame) -> str:
    return table(("case", "d", "T", "last-iterate n50 [95% CI]", "n50/d"),
                 [(r.case, str(int(r.d)), str(int(r.steps)), interval(r.n50, r.ci_low, r.ci_high),
                   fmt(r.n50 / r.d)) for r in horizon.sort_values(["case", "d", "steps"])
                  .itertuples()])


def _design_table(design: pd.DataFrame) -> str:
    return table(("case", "d", "success", "design: trials, s, CI width", "fixed: trials, s, "
                  "CI width", "fixed trials for the design's width", "saving (trials, s)"),
                 [(r.case, str(int(r.d)), NOTION.get(r.success, r.success),
                   f"{int(r.trials_design)}, {fmt(r.seconds_design)}, {fmt(r.width_design, 2)}",
                   f"{int(r.trials_fixed)}, {fmt(r.seconds_fixed)}, {fmt(r.width_fixed, 2)}",
                   fmt(r.fixed_trials_same_width), f"{fmt(r.trial_saving, 2)}x, "
                   f"{fmt(r.seconds_saving, 2)}x") for r in design.itertuples()])


def report_section(ctx: SectionContext) -> str:
    derived = ctx.derived
    thresholds = derived["scale_thresholds"]
    parts = ["## Scale: thresholds to large d and the law they follow\n",
             "Each threshold comes from the adaptive design (stelab.adaptive): rounds of "
             "independent cells placed around the current n20-n80 until the 95% CI of ln n50 "
             "reaches the profile's target or the trial budget is spent. n50 from a "
             "Firth-penalized logistic fit in ln n, 95% bootstrap CI.\n"]
    for case, group in thresholds.groupby("case"):
        parts += [f"### Case {case}\n", _threshold_table(group), "",
                  ctx.image(f"scale_n50_{case}", f"{case}: n50 vs d"),
                  ctx.image(f"scale_normalized_{case}", f"{case}: n50/d and n50/(d ln d)"),
                  ctx.image(f"scale_curves_{case}", f"{case}: ergodic success at the largest d")]
    parts += ["### Local exponents\n",
              "Slope of ln n50 between neighbouring d; d ln d has local exponent "
              "about 1 + 1/ln(d sqrt 2) between d and 2d (1.125 at 2048-4096), d has 1.\n",
              _local_table(derived["scale_local_exponents"]), ""]
    laws = derived["scale_laws"]
    if len(laws):
        parts += ["### Which law\n",
                  "n50 = a g(d) fitted in ln n50 over d >= 64, each residual weighed by its "
                  "n50's bootstrap variance; a law is excluded when its lack-of-fit p < 0.05 "
                  "or its AIC_w is more than 10 above the best law's "
                  "(stelab.analysis.law_verdicts).\n", _laws_table(laws), "",
                  _law_sentences(laws), ""]
    if len(derived["scale_horizon"]):
        parts += ["### The last-iterate threshold and the horizon T\n",
                  _horizon_table(derived["scale_horizon"]), ""]
    if len(derived["scale_design"]):
        parts += ["### What the adaptive design saves\n",
                  "Against E1's fixed n/d grid at the same d: the fixed grid's trials and "
                  "worker-seconds scaled by (its CI width / the design's)^2 give what it would "
                  "spend for the design's width.\n", _design_table(derived["scale_design"]), ""]
    return "\n".join(parts)
