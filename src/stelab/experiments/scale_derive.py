"""The scale experiment's derived tables and figures, from its stored rows only.

* ``scale_thresholds``: n50 per (case, d, success) at the d of each ladder, with
  alpha50 = n50 / d and n50 / (d ln d) and their CIs (:func:`stelab.analysis.threshold_ratios`);
* ``scale_local_exponents``: the slope of ln n50 between neighbouring d, with its CI;
* ``scale_laws``: n50 = a g(d) for each law g of :data:`LAWS`, pooled over d >= :data:`LAW_D_MIN`
  (lack of fit, AIC_w; :func:`stelab.analysis.compare_scaling_models`), with each law's verdict
  (:func:`stelab.analysis.law_verdicts`);
* ``scale_horizon``: last-iterate n50 per (case, d, T) read at the checkpoint horizons;
* ``scale_design``: for each d measured both ways, the trials and worker-seconds the adaptive
  design and the fixed grid spent, their CI widths, and what the fixed grid would need for the
  design's width (its trials and seconds scaled by (width_fixed / width_design)^2, the 1/N law
  of a CI's width).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from stelab import analysis
from stelab.experiments.e1_plots import plot_n50_scaling, plot_success_curves
from stelab.experiments.registry import Figures, Frames
from stelab.experiments.scale_plots import plot_normalized_thresholds

SUCCESS = ("success_last", "success_ergodic")
LAWS = (*analysis.LAW_MODELS, "d^4")
LAW_D_MIN = 64
PROVIDES = ("scale_thresholds", "scale_local_exponents", "scale_laws", "scale_horizon",
            "scale_design")


def _ladder_thresholds(rows: pd.DataFrame, n_boot: int) -> pd.DataFrame:
    """n50 per (case, d, success) with the normalized columns (several seeds per d: the design's
    points are independent cells)."""
    thresholds = analysis.thresholds_by(rows, by=("case", "d"), success=SUCCESS, n_boot=n_boot,
                                        vary=("seed",))
    return analysis.threshold_ratios(thresholds)


def _per_notion(thresholds: pd.DataFrame, fn) -> pd.DataFrame:
    parts = [fn(group.drop(columns=["case", "success"])).assign(case=case, success=success)
             for (case, success), group in thresholds.groupby(["case", "success"])]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _laws(thresholds: pd.DataFrame, n_boot: int) -> pd.DataFrame:
    pooled = thresholds[thresholds["n50"].notna()]
    return _per_notion(pooled, lambda t: analysis.law_verdicts(analysis.compare_scaling_models(
        t, models=LAWS, n_boot=n_boot, d_min=LAW_D_MIN)) if (t["d"] >= LAW_D_MIN).sum() >= 3
        else pd.DataFrame())


def _horizon(rows: pd.DataFrame, n_boot: int) -> pd.DataFrame:
    at = analysis.at_checkpoints(rows)
    return analysis.thresholds_by(at, by=("case", "d", "steps"), success="success_last",
                                  n_boot=n_boot, vary=("run_steps", "seed"))


def _spent(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.groupby(["case", "d"]).agg(trials=("trial", "size"),
                                           seconds=("wall_seconds", "sum")).reset_index()


def _design_saving(adaptive: pd.DataFrame, fixed: pd.DataFrame, adaptive_rows: pd.DataFrame,
                   fixed_rows: pd.DataFrame) -> pd.DataFrame:
    """Trials and seconds of both designs at the d they share, and the fixed grid's cost scaled
    to the design's CI width."""
    keys = ["case", "d", "success"]
    width = {name: frame.assign(width=np.log(frame["ci_high"] / frame["ci_low"]))[
        [*keys, "n50", "ci_low", "ci_high", "width"]] for name, frame in
        (("design", adaptive), ("fixed", fixed))}
    spent = {"design": _spent(adaptive_rows), "fixed": _spent(fixed_rows)}
    both = width["design"].merge(spent["design"], on=["case", "d"]).merge(
        width["fixed"].merge(spent["fixed"], on=["case", "d"]), on=keys,
        suffixes=("_design", "_fixed"))
    factor = (both["width_fixed"] / both["width_design"]) ** 2
    both["fixed_trials_same_width"] = both["trials_fixed"] * factor
    both["fixed_seconds_same_width"] = both["seconds_fixed"] * factor
    both["trial_saving"] = both["fixed_trials_same_width"] / both["trials_design"]
    both["seconds_saving"] = both["fixed_seconds_same_width"] / both["seconds_design"]
    return both


def _keep_ladders(thresholds: pd.DataFrame) -> pd.DataFrame:
    """Drop a notion's n50 at a d beyond its ladder: there every trial sat at the other notion's
    n (e.g. last-iterate at the largest ergodic d), so the fit only says 'not reached'."""
    reached = thresholds["n50"].notna() | (thresholds["d"] <= _largest_fitted(thresholds))
    return thresholds[reached].reset_index(drop=True)


def _largest_fitted(thresholds: pd.DataFrame) -> pd.Series:
    largest = thresholds[thresholds["n50"].notna()].groupby(["case", "success"])["d"].max()
    index = pd.MultiIndex.from_frame(thresholds[["case", "success"]])
    return pd.Series(largest.reindex(index).to_numpy(), index=thresholds.index).fillna(math.inf)


def derive(tables: Frames, n_boot: int) -> Frames:
    """Every derived table of the module docstring that the stored tables allow."""
    rows = tables["scale"]
    thresholds = _keep_ladders(_ladder_thresholds(rows, n_boot))
    derived = {
        "scale_thresholds": thresholds,
        "scale_local_exponents": _per_notion(thresholds, analysis.local_exponents),
        "scale_laws": _laws(thresholds, n_boot),
        "scale_horizon": pd.DataFrame(),
        "scale_design": pd.DataFrame(),
    }
    if "scale_horizon" in tables:
        derived["scale_horizon"] = _horizon(tables["scale_horizon"], n_boot)
    if "scale_fixed" in tables:
        fixed_rows = tables["scale_fixed"]
        fixed = _ladder_thresholds(fixed_rows, n_boot)
        derived["scale_design"] = _design_saving(thresholds, fixed, rows, fixed_rows)
    return derived


def figures(tables: Frames, derived: Frames, folder: Path) -> Figures:
    """n50 vs d with the fitted power law, n50 / d and n50 / (d ln d) vs d, and the success
    curves at the largest d of every case."""
    rows = tables["scale"]
    thresholds = derived["scale_thresholds"]
    out: Figures = {}
    for case, group in rows.groupby("case"):
        own = thresholds[thresholds["case"] == case].drop(columns="case")
        out[f"scale_n50_{case}"] = plot_n50_scaling(
            group, folder / f"scale_n50_{case}.png", success=SUCCESS, thresholds=own)
        out[f"scale_normalized_{case}"] = plot_normalized_thresholds(
            own, folder / f"scale_normalized_{case}.png")
        top = group[group["d"] == group["d"].max()]
        out[f"scale_curves_{case}"] = plot_success_curves(
            top, folder / f"scale_curves_{case}.png", success="success_ergodic", by="d")
    return out
