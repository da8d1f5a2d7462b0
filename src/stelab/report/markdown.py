"""The Markdown report: verdicts, rules, one section per experiment, tables with CIs, figures."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from stelab.claims import RULES, Verdict


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a table: nan -> '—', floats to ``digits`` significant digits."""
    if value is None:
        return "—"
    if isinstance(value, float | int) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            return "—"
        if float(value).is_integer() and abs(value) < 1e7:
            return str(int(value))
        return f"{value:.{digits}g}"
    return str(value)


def interval(estimate: float, low: float, high: float, digits: int = 3) -> str:
    """'est [low, high]' (or '—')."""
    if not math.isfinite(float(estimate)):
        return "—"
    if math.isfinite(float(low)) and math.isfinite(float(high)):
        return f"{fmt(estimate, digits)} [{fmt(low, digits)}, {fmt(high, digits)}]"
    return f"{fmt(estimate, digits)} [CI —]"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in r) + " |" for r in rows
    ]
    return "\n".join(lines)


def image(figures: dict[str, Path], name: str, out: Path, caption: str) -> str:
    if name not in figures:
        return ""
    return f"![{caption}]({figures[name].relative_to(out).as_posix()})\n"


def verdict_section(verdicts: list[Verdict]) -> str:
    rows = [(v.id, v.as_json()["claim"], f"**{v.verdict}**", v.reason) for v in verdicts]
    rules = "\n".join(f"- **{cid}**: {RULES[cid]}" for cid in sorted(RULES))
    return (
        "## Verdicts\n\n"
        + table(("claim", "statement", "verdict", "why"), rows)
        + "\n\nVerdicts are computed from the measurements by these rules (code: "
        "`stelab/claims.py`; the evidence, with every number and interval, is in "
        "`claims.json`):\n\n" + rules + "\n"
    )


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


def e1_section(derived: dict[str, pd.DataFrame], figures: dict[str, Path], out: Path) -> str:
    thr = derived["e1_thresholds"]
    parts = [
        "## E1 Sample complexity (C1, C2)\n",
        "Success probability vs n on a grid of n/d for several d. n50 is the n of 50% "
        "success from a Firth-penalized logistic fit in log n, with a 95% bootstrap CI "
        "(`—`: not identified by the grid). The exponent alpha fits n50 = C d^alpha.\n",
    ]
    for case, group in thr.groupby("case"):
        wide = {}
        for r in group.itertuples():
            wide.setdefault(int(r.d), {})[r.success] = r
        rows = []
        for d in sorted(wide):
            erg, last = wide[d].get("success_ergodic"), wide[d].get("success_last")
            rows.append(
                (
                    str(d),
                    interval(erg.n50, erg.ci_low, erg.ci_high) if erg else "—",
                    fmt(erg.n50 / d) if erg else "—",
                    interval(last.n50, last.ci_low, last.ci_high) if last else "—",
                    fmt(last.n50 / d) if last else "—",
                    fmt(last.n50 / d**2) if last else "—",
                )
            )
        parts.append(f"### Case {case}\n")
        parts.append(
            table(
                (
                    "d",
                    "n50 ergodic [95% CI]",
                    "n50/d",
                    "n50 last iterate [95% CI]",
                    "n50/d",
                    "n50/d^2",
                ),
                rows,
            )
        )
        parts.append("")
        for name, caption in (
            (f"e1_heatmap_{case}", "success heatmap"),
            (f"e1_n50_{case}", "n50 vs d"),
            (f"e1_curves_{case}_success_last", "last-iterate success vs n"),
            (f"e1_curves_{case}_success_ergodic", "ergodic success vs n"),
        ):
            parts.append(image(figures, name, out, f"{case}: {caption}"))
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
    models = derived["e1_models"]
    parts.append(
        "Model comparison (AIC of log n50; lower is better; d^2 and d^4 fit only the "
        "constant, testing the shape):\n"
    )
    parts.append(
        table(
            ("case", "success", "model", "alpha", "delta AIC"),
            [
                (r.case, r.success, r.model, fmt(r.alpha), fmt(r.delta_aic))
                for r in models.itertuples()
            ],
        )
    )
    local = derived["e1_local_exponents"]
    parts.append("\nLocal exponents between neighbouring d (slope of log n50; a drifting "
                 "local exponent means no single power law describes the range):\n")
    parts.append(table(
        ("case", "success", "d range", "local alpha [95% CI]"),
        [(r.case, r.success, f"{fmt(r.d_low)}–{fmt(r.d_high)}",
          interval(r.local_alpha, r.ci_low, r.ci_high)) for r in local.itertuples()],
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


def _pivot(frame: pd.DataFrame, index: list[str], column: str, cell) -> tuple[list, list]:
    """Rows of a wide table: one per ``index`` key, one cell per value of ``column``."""
    columns = sorted(frame[column].unique())
    cells = {(tuple(getattr(r, i) for i in index), getattr(r, column)): cell(r)
             for r in frame.itertuples()}
    keys = list(dict.fromkeys(tuple(getattr(r, i) for i in index) for r in frame.itertuples()))
    rows = [(*[fmt(k) for k in key], *[cells.get((key, c), "—") for c in columns])
            for key in keys]
    return columns, rows


def e1_horizon_section(
    derived: dict[str, pd.DataFrame], figures: dict[str, Path], out: Path
) -> str:
    thr = derived["e1_horizon_thresholds"].sort_values(["success", "step_size", "steps"])
    columns, rows = _pivot(thr, ["success", "step_size"], "steps",
                           lambda r: interval(r.n50, r.ci_low, r.ci_high))
    return "\n".join(
        [
            "## E1 axes: step size c and horizon T (C2)\n",
            "At one d, n50 [95% CI] for every step size c (rows) and horizon T (columns). With "
            "the identity weight STE the binary iterates depend on c only through "
            "c / init_scale (scale invariance), so c is varied across that ratio. A last-iterate "
            "threshold that falls with T toward the ergodic one means the gap between the two "
            "notions is a finite-horizon effect at that d.\n",
            table(("success", "c", *[f"T={int(c)}" for c in columns]), rows),
            "",
            image(figures, "e1_horizon_n50", out, "n50 vs horizon per step size"),
        ]
    )


def e2_section(derived: dict[str, pd.DataFrame], figures: dict[str, Path], out: Path) -> str:
    tab = derived["e2_success_vs_horizon"]
    parts = [
        "## E2 Convergence\n",
        "Hamming distance and loss vs iteration (median and 10–90% band), and ergodic vs "
        "last-iterate success vs horizon T. Where the ergodic rate is high but the "
        "last-iterate rate is not, the last iterate cycles although the time average is "
        "already right.\n",
        image(figures, "e2_trajectories", out, "Hamming distance and loss vs iteration"),
        image(figures, "e2_success_vs_horizon", out, "success vs horizon"),
    ]
    for metric, name in (("success_ergodic", "Ergodic"), ("success_last", "Last-iterate")):
        sub = tab[tab["metric"] == metric].sort_values(["steps", "n"])
        columns, rows = _pivot(sub, ["steps"], "n",
                               lambda r: interval(r.rate, r.ci_low, r.ci_high, 2))
        parts += [f"{name} success rate [95% Wilson CI] by horizon T (rows) and n (columns):\n",
                  table(("T", *[f"n={int(c)}" for c in columns]), rows), ""]
    return "\n".join(parts)


def e3_section(derived: dict[str, pd.DataFrame], figures: dict[str, Path], out: Path) -> str:
    growth = derived["e3_growth"].set_index("noise_level")
    occ = derived["e3_occupation"].set_index("noise_level")
    absorbed = derived["e3_absorbed"]
    absorbed = absorbed[absorbed["metric"] == "absorbed"].set_index("noise_level")
    times = derived["e3_return_times"]
    times = times[times["kind"] == "return_time"].set_index("noise_level")
    rows = []
    for p in growth.index:
        g = growth.loc[p]
        rows.append(
            (
                fmt(p),
                str(int(g["T"])),
                interval(g["returns_mean"], g["returns_ci_low"], g["returns_ci_high"]),
                interval(g["late_rate"], g["late_rate_ci_low"], g["late_rate_ci_high"]),
                interval(occ.loc[p, "mean"], occ.loc[p, "ci_low"], occ.loc[p, "ci_high"]),
                interval(
                    absorbed.loc[p, "rate"], absorbed.loc[p, "ci_low"], absorbed.loc[p, "ci_high"]
                ),
                fmt(times.loc[p, "median"]) if p in times.index else "—",
            )
        )
    return "\n".join(
        [
            "## E3 Recurrence under label noise (C3)\n",
            table(
                (
                    "p",
                    "T",
                    "returns to w* (mean) [CI]",
                    "late return rate per step [CI]",
                    "occupation [CI]",
                    "absorbed [Wilson CI]",
                    "median return time",
                ),
                rows,
            ),
            "",
            image(figures, "e3_paths", out, "Hamming paths"),
            image(figures, "e3_returns_vs_T", out, "returns vs T"),
            image(figures, "e3_return_times", out, "return times"),
            image(figures, "e3_excursions", out, "excursion lengths"),
            image(figures, "e3_occupation", out, "occupation vs p"),
        ]
    )


def e4_section(
    derived: dict[str, pd.DataFrame], verdict: Verdict | None, figures: dict[str, Path], out: Path
) -> str:
    tab = derived["e4_success"]
    tab = tab[tab["metric"] == "success_last"]
    norms = list(dict.fromkeys(tab["normalization"]))
    parts = [
        "## E4 Non-Gaussian data and normalization (C4)\n",
        "Last-iterate success rate [95% Wilson CI] per distribution and normalization.\n",
    ]
    for balance, group in tab.groupby("teacher_balance"):
        cells = {(r.distribution, r.normalization): r for r in group.itertuples()}
        rows = [
            (
                dist,
                *[
                    interval(
                        cells[(dist, n)].rate, cells[(dist, n)].ci_low, cells[(dist, n)].ci_high, 2
                    )
                    if (dist, n) in cells
                    else "—"
                    for n in norms
                ],
            )
            for dist in sorted(group["distribution"].unique())
        ]
        parts.append(f"### Teacher balance {balance:g}\n")
        parts.append(table(("distribution", *norms), rows))
        parts.append("")
    if verdict is not None:
        failures = verdict.evidence.get("raw_failures", [])
        restored = verdict.evidence.get("restored_by", {})
        parts.append("Distributions that break STE raw, and what restores each:\n")
        parts += [
            f"- {f}: restored by {', '.join(restored.get(f, [])) or 'nothing tried'}"
            for f in failures
        ] or ["- none"]
        parts.append("")
    parts.append(image(figures, "e4_success_last", out, "E4 last-iterate success"))
    parts.append(image(figures, "e4_success_ergodic", out, "E4 ergodic success"))
    return "\n".join(parts)


def e5_section(derived: dict[str, pd.DataFrame], figures: dict[str, Path], out: Path) -> str:
    summary = derived["e5_summary"]
    norms = list(dict.fromkeys(summary["normalization"]))
    cells = {(r.task, r.model, r.normalization): r for r in summary.itertuples()}
    keys = list(dict.fromkeys((r.task, r.model, r.chance) for r in summary.itertuples()))
    rows = [
        (task, model, fmt(chance, 2),
         *[interval(cells[(task, model, n)].test_accuracy, cells[(task, model, n)].ci_low,
                    cells[(task, model, n)].ci_high) if (task, model, n) in cells else "—"
           for n in norms])
        for task, model, chance in keys
    ]
    parts = [
        "## E5 Real data: scikit-learn digits (C4 in practice)\n",
        "Binary networks trained with STE on the bundled digits, raw pixels vs normalized "
        "inputs: mean test accuracy over seeds [95% t interval]. `two_layer` is the paper's "
        "network (binary weights, sign activations, identity STE, fixed averaging output); `mlp` "
        "a small binary MLP.\n",
        table(("task", "model", "chance", *norms), rows),
        "",
        image(figures, "e5_accuracy", out, "digits test accuracy"),
    ]
    if "e5_recovery" in derived:
        rec = derived["e5_recovery"]
        parts += [
            "Exact recovery of random binary teachers when the inputs are the digit images "
            "(last iterate, Wilson 95% CI), with `stelab diagnose`'s prediction:\n",
            table(("normalization", "teacher balance", "success [CI]", "predicted healthy"),
                  [(r.normalization, fmt(r.teacher_balance),
                    interval(r.success_rate, r.ci_low, r.ci_high, 2), str(r.predicted_healthy))
                   for r in rec.itertuples()]),
            "",
        ]
    return "\n".join(parts)
