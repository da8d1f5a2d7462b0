"""E6 estimator comparison: which straight-through estimator needs the fewest samples?

The paper analyses one STE (identity surrogate, identity weight STE); practitioners choose among
several. For every surrogate sigma~' of the registry (:data:`stelab.quantizers.SURROGATES`) x
weight STE Q~' (:data:`stelab.quantizers.WEIGHT_STES`) and every case of the profile's
``[[e6.case]]`` (E1's: m = 1 sign, m = 4 sign, m = 4 step; the surrogate axis replaces E1's
per-case default), success vs n = r d on a grid of n/d for several d, as in E1.

Derived, per estimator (case, surrogate, weight STE) and success notion (ergodic, last iterate):
n50 per d (Firth-penalized logistic fit in log n, bootstrap CI), the exponent of n50 = C d^alpha
and local exponents between neighbouring d (the statistics of E1), and a summary row that says
when an estimator fails outright (no success at any n and d): such estimators are kept in the
tables and the figures, never dropped. Non-{0,1}-valued surrogates (approx_sign, swish) run on
the dense engine, which is slower: size the profile's d and trials with that in mind.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

from stelab import analysis
from stelab.config import Config
from stelab.errors import ConfigError
from stelab.experiments.cases import label_cases
from stelab.experiments.profile import cell, sample_size, section
from stelab.experiments.registry import Experiment, Figures, Frames, SectionContext, Table
from stelab.quantizers import SURROGATES, WEIGHT_STES
from stelab.render import plotting
from stelab.render.markdown import interval, table

SUCCESS = ("success_ergodic", "success_last")
KEYS = ("case", "ste", "weight_ste")
FAILS = "fails outright"


def _chosen(spec: dict[str, Any], key: str, registry: dict) -> list[str]:
    """The profile's list for ``key``; "all" (the default) means the whole registry."""
    chosen = spec.get(key, "all")
    if chosen == "all":
        return list(registry)
    if isinstance(chosen, str) or not isinstance(chosen, list):
        raise ConfigError(f"[e6] {key}: {chosen!r} is not allowed; allowed: \"all\" or a list "
                          f"of names from {', '.join(registry)}")
    return chosen


def build_cells(profile: dict[str, Any]) -> list[Config]:
    """Every case x surrogate x weight STE x d x n."""
    spec = section(profile, "e6")
    return [
        cell(
            profile,
            model={**case.get("model", {}), "d": d},
            train={**case.get("train", {}), "ste": ste, "weight_ste": weight_ste,
                   "n": sample_size(d, ratio), "steps": spec["steps"]},
            run={"trials": spec["trials"]},
        )
        for case in spec["case"]
        for ste in _chosen(spec, "surrogates", SURROGATES)
        for weight_ste in _chosen(spec, "weight_stes", WEIGHT_STES)
        for d in (case["d"] if "d" in case else spec["d"])
        for ratio in spec["n_over_d"]
    ]


def label_rows(profile: dict[str, Any], rows: pd.DataFrame) -> pd.DataFrame:
    """The profile's E6 case names in a ``case`` column of the per-trial table."""
    return label_cases(rows, section(profile, "e6")["case"])


def with_labels(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows with their ``case``: the stored column (the profile's names); for a table stored
    without one, the label m<m>_<activation>."""
    if "case" in rows and rows["case"].notna().all():
        return rows
    return rows.assign(case="m" + rows["m"].astype(str) + "_" + rows["activation"])


def _per_group(thresholds: pd.DataFrame, fit) -> pd.DataFrame:
    """``fit`` (thresholds of one estimator and success -> table) for every group, labelled."""
    parts = [fit(group.drop(columns=[*KEYS, "success"])).assign(
                 **dict(zip((*KEYS, "success"), key, strict=True)))
             for key, group in thresholds.groupby([*KEYS, "success"])]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _summary_row(key: tuple, rows: pd.DataFrame, thr: pd.DataFrame, fit: pd.Series,
                 local: pd.DataFrame) -> dict[str, Any]:
    """One estimator and success notion: n50 at the largest d, exponents, and its status."""
    success = key[-1]
    rates = rows.groupby(["d", "n"])[success].mean()
    top = thr.sort_values("d").iloc[-1]
    last_local = local.sort_values("d_high").iloc[-1] if len(local) else None
    if rows[success].sum() == 0:
        status = FAILS + " (no success at any n and d)"
    elif math.isfinite(top["n50"]):
        status = "ok"
    else:
        status = f"n50 not identified at d={int(top['d'])}: {top['reason']}"
    return {
        **dict(zip((*KEYS, "success"), key, strict=True)),
        "status": status,
        "fails_outright": bool(rows[success].sum() == 0),
        "successes": int(rows[success].sum()),
        "trials": int(len(rows)),
        "best_cell_rate": float(rates.max()),
        "d_max": int(top["d"]),
        "n50_at_d_max": float(top["n50"]),
        "n50_ci_low": float(top["ci_low"]),
        "n50_ci_high": float(top["ci_high"]),
        "identified_d": int(thr["identified"].sum()),
        "alpha": float(fit["alpha"]),
        "alpha_ci_low": float(fit["alpha_ci_low"]),
        "alpha_ci_high": float(fit["alpha_ci_high"]),
        "alpha_reason": fit["reason"],
        "local_alpha": float(last_local["local_alpha"]) if last_local is not None else math.nan,
        "local_ci_low": float(last_local["ci_low"]) if last_local is not None else math.nan,
        "local_ci_high": float(last_local["ci_high"]) if last_local is not None else math.nan,
    }


def _rank(summary: pd.DataFrame) -> pd.DataFrame:
    """Rank per (case, success) by n50 at the largest d (1 = fewest samples; estimators without
    an n50 there are unranked), and whether each one's CI overlaps the best one's."""
    summary = summary.copy()
    summary["rank"] = summary.groupby(["case", "success"])["n50_at_d_max"].rank(method="min")
    best = (summary[summary["rank"] == 1].groupby(["case", "success"])
            [["n50_ci_low", "n50_ci_high"]].min()
            .rename(columns={"n50_ci_low": "best_low", "n50_ci_high": "best_high"}))
    joined = summary.join(best, on=["case", "success"])
    summary["overlaps_best"] = (
        np.isfinite(summary["n50_at_d_max"])
        & (joined["n50_ci_low"] <= joined["best_high"])
        & (joined["n50_ci_high"] >= joined["best_low"])
    )
    return summary


def derive(tables: Frames, n_boot: int) -> Frames:
    """n50 per (estimator, d), exponents and local exponents per estimator, and the summary
    with the ranking and the estimators that fail outright."""
    rows = with_labels(tables["e6"])
    thresholds = analysis.thresholds_by(rows, by=(*KEYS, "d"), success=SUCCESS, n_boot=n_boot)
    scaling = analysis.scaling_by(thresholds, by=(*KEYS, "success"), model="power", n_boot=n_boot)
    local = _per_group(thresholds, analysis.local_exponents)
    fits = scaling.set_index([*KEYS, "success"])
    by_estimator = dict(list(rows.groupby(list(KEYS))))
    locals_ = dict(list(local.groupby([*KEYS, "success"]))) if len(local) else {}
    records = [_summary_row(key, by_estimator[key[:-1]], thr, fits.loc[key],
                            locals_.get(key, pd.DataFrame()))
               for key, thr in thresholds.groupby([*KEYS, "success"])]
    return {
        "e6_thresholds": thresholds,
        "e6_scaling": scaling,
        "e6_local_exponents": local,
        "e6_estimators": _rank(pd.DataFrame(records)),
    }


def _estimator(r) -> str:
    return f"{r.ste} / {r.weight_ste}"


def plot_estimator_ranking(summary: pd.DataFrame, path: str | Path) -> Path:
    """n50 at the largest d with its 95% CI per estimator (surrogate / weight STE), one panel per
    case and success notion; estimators without n50 there are marked at the right edge (x:
    failing outright, o: not identified)."""
    plotting.need(summary, *KEYS, "success", "n50_at_d_max", "status")
    panels = list(plotting.groups(summary, ["case", "success"]))
    fig, axes = plotting.figure(len(panels), width=5.6, height=0.32 * summary.groupby(
        ["case", "success"]).size().max() + 1.6, max_cols=2)
    for ax, ((case, success), group) in zip(axes, panels, strict=True):
        group = group.sort_values(["ste", "weight_ste"]).reset_index(drop=True)
        y = np.arange(len(group))
        ok = group[np.isfinite(group["n50_at_d_max"])]
        values = group[["n50_at_d_max", "n50_ci_high"]].to_numpy(dtype=float)
        edge = float(values[np.isfinite(values)].max()) if np.isfinite(values).any() else 1.0
        if len(ok):
            n50, bars = plotting.interval_bars(ok.rename(columns={"n50_ci_low": "ci_low",
                                                                  "n50_ci_high": "ci_high"}),
                                               "n50_at_d_max")
            ax.errorbar(n50, y[ok.index], xerr=bars, fmt="o", color="C0", capsize=3)
        for i, r in group.iterrows():
            if not math.isfinite(r["n50_at_d_max"]):
                marker = "x" if r["fails_outright"] else "o"
                ax.plot([edge * 1.5], [i], marker, color="C3", mfc="none")
        ax.set_yticks(y, [_estimator(r) for r in group.itertuples()], fontsize=7)
        ax.invert_yaxis()
        ax.set_xscale("log")
        # ticks at 1, 2, 5 x 10^k written plainly: a narrow range crowds labels like 1.2x10^2
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        d_max = int(group["d_max"].max())
        ax.set_xlabel(f"n50 at d = {d_max} (95% bootstrap CI)")
        ax.set_title(f"{case}, {plotting.label(success)}\n"
                     "red x: no success at any n; red o: n50 not identified", fontsize=9)
    fig.suptitle("E6: which STE needs the fewest samples (surrogate / weight STE)")
    return plotting.save(fig, path)


def plot_n50_by_estimator(thresholds: pd.DataFrame, path: str | Path, case: str) -> Path:
    """n50 vs d (log-log, 95% CIs) of every estimator of ``case``: colour = surrogate, line
    style = weight STE; one panel per success notion."""
    plotting.need(thresholds, *KEYS, "d", "n50", "success")
    sub = thresholds[thresholds["case"] == case]
    surrogates = list(dict.fromkeys(sub.sort_values("ste")["ste"]))
    colors = dict(zip(surrogates, plotting.colors(len(surrogates)), strict=True))
    styles = {"identity": "-", "clipped": "--"}
    fig, axes = plotting.figure(2, max_cols=2)
    for ax, success in zip(axes, SUCCESS, strict=True):
        for (ste, weight_ste), line in sub[sub["success"] == success].groupby(["ste",
                                                                               "weight_ste"]):
            ok = line[np.isfinite(line["n50"].to_numpy(dtype=float))].sort_values("d")
            if ok.empty:
                continue
            n50, bars = plotting.interval_bars(ok)
            ax.errorbar(ok["d"], n50, yerr=bars, ls=styles.get(weight_ste, ":"), marker="o",
                        color=colors[ste], capsize=2, label=f"{ste} / {weight_ste}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        d_values = np.sort(sub["d"].unique())
        ax.set_xticks(d_values, [f"{v:g}" for v in d_values])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("dimension d")
        ax.set_ylabel("threshold n50")
        ax.set_title(f"{case}: {plotting.label(success)} (estimators without n50 not drawn)",
                     fontsize=9)
        plotting.legend(ax, 7)
    return plotting.save(fig, path)


def figures(tables: Frames, derived: Frames, folder: Path) -> Figures:
    out = {"e6_ranking": plot_estimator_ranking(derived["e6_estimators"],
                                                folder / "e6_ranking.png")}
    for case in derived["e6_thresholds"]["case"].unique():
        out[f"e6_n50_{case}"] = plot_n50_by_estimator(derived["e6_thresholds"],
                                                      folder / f"e6_n50_{case}.png", case)
    return out


def _cell(r) -> tuple[str, str]:
    """(n50 at the largest d [CI] or why not, alpha [CI]) of one summary row."""
    if r is None:
        return "—", "—"
    if r.fails_outright:
        return "**fails** (no success)", "—"
    n50 = (interval(r.n50_at_d_max, r.n50_ci_low, r.n50_ci_high) if math.isfinite(r.n50_at_d_max)
           else "not identified")
    return n50, interval(r.alpha, r.alpha_ci_low, r.alpha_ci_high, 2)


def _verdict_lines(summary: pd.DataFrame) -> list[str]:
    lines = []
    for (case, success), group in summary.groupby(["case", "success"], sort=False):
        ranked = group[group["rank"].notna()].sort_values("rank")
        failing = [_estimator(r) for r in group.itertuples() if r.fails_outright]
        unidentified = [_estimator(r) for r in group.itertuples()
                        if not r.fails_outright and not math.isfinite(r.n50_at_d_max)]
        text = f"- {case}, {plotting.label(success)}: "
        if len(ranked):
            best = ranked.iloc[0]
            tied = [_estimator(r) for r in ranked.iloc[1:].itertuples() if r.overlaps_best]
            n50 = interval(best["n50_at_d_max"], best["n50_ci_low"], best["n50_ci_high"])
            text += (f"fewest samples at d = {int(best['d_max'])}: {_estimator(best)} (n50 {n50})"
                     "; not distinguishable from it (95% CIs overlap): "
                     + (", ".join(tied) or "none"))
        else:
            text += "no estimator has an n50 at the largest d"
        text += f"; fail outright: {', '.join(failing) or 'none'}"
        if unidentified:
            text += f"; n50 not identified at the largest d: {', '.join(unidentified)}"
        lines.append(text + ".")
    return lines


def report_section(ctx: SectionContext) -> str:
    summary = ctx.derived["e6_estimators"]
    parts = [
        "## E6 Which STE needs the fewest samples (estimator comparison)\n",
        "Every surrogate derivative of the registry x weight STE, for the cases of E1, on a grid "
        "of n/d at several d. n50 at the largest d with its 95% bootstrap CI, and the exponent "
        "alpha of n50 = C d^alpha over the d range with its CI (as in E1). An estimator that "
        "never succeeds, at any n and d, **fails outright**: it is listed, not dropped.\n",
    ]
    for case, group in summary.groupby("case", sort=False):
        cells = {(r.ste, r.weight_ste, r.success): r for r in group.itertuples()}
        keys = list(dict.fromkeys((r.ste, r.weight_ste) for r in group.itertuples()))
        d_max = int(group["d_max"].max())
        rows = [(ste, weight_ste,
                 *_cell(cells.get((ste, weight_ste, "success_ergodic"))),
                 *_cell(cells.get((ste, weight_ste, "success_last"))))
                for ste, weight_ste in keys]
        parts += [f"### Case {case}\n",
                  table(("surrogate", "weight STE", f"ergodic n50 at d={d_max} [CI]",
                         "ergodic alpha [CI]", f"last-iterate n50 at d={d_max} [CI]",
                         "last-iterate alpha [CI]"), rows),
                  "", ctx.image(f"e6_n50_{case}", f"{case}: n50 vs d per estimator")]
    parts += ["### Which STE needs the fewest samples\n", *_verdict_lines(summary), "",
              ctx.image("e6_ranking", "n50 at the largest d per estimator"), ""]
    return "\n".join(parts)


EXPERIMENT = Experiment(
    name="e6",
    title="E6 estimator comparison: every surrogate x weight STE, n50 vs d",
    profile_table="e6",
    tables=(Table("e6", "E6 estimator comparison: every surrogate x weight STE, n50 vs d",
                  cells=build_cells, label=label_rows),),
    derive=derive,
    provides=("e6_thresholds", "e6_scaling", "e6_local_exponents", "e6_estimators"),
    figures=figures,
    section=report_section,
)
