"""E1's axes at one d (claim C2): step size c x n, with the ergodic average and the last iterate
at checkpoint horizons T, from the profile's ``[e1.horizon]`` table. Does the last-iterate
threshold move with c or with T?"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stelab import analysis
from stelab.config import Config
from stelab.experiments.profile import cell, sample_size, section
from stelab.experiments.registry import Experiment, Figures, Frames, SectionContext, Table
from stelab.render import plotting
from stelab.render.markdown import interval, pivot, table

SUCCESS = ("success_last", "success_ergodic")


def build_cells(profile: dict[str, Any]) -> list[Config]:
    """The C2 axes at one d: step size x n, with checkpoints over the horizon."""
    spec = section(profile, "e1")["horizon"]
    d = spec["d"]
    return [
        cell(
            profile,
            model={"d": d},
            train={"n": sample_size(d, ratio), "steps": spec["steps"], "step_size": c},
            run={"trials": spec["trials"]},
            record={"trajectory": True, "checkpoints": spec["checkpoints"]},
        )
        for c in spec["step_size"]
        for ratio in spec["n_over_d"]
    ]


def derive(tables: Frames, n_boot: int) -> Frames:
    """Thresholds at one d per (step size c, horizon T)."""
    at_horizon = analysis.at_checkpoints(tables["e1_horizon"])
    thresholds = analysis.thresholds_by(
        at_horizon, by=("step_size", "steps"), success=SUCCESS, n_boot=n_boot, vary=("run_steps",)
    )
    return {"e1_horizon_thresholds": thresholds}


def plot_threshold_vs_horizon(
    thresholds: pd.DataFrame,
    path: str | Path,
    by: str = "step_size",
    success: Sequence[str] = SUCCESS,
) -> Path:
    """n50 (with 95% CI) vs horizon T, one line per value of ``by`` and one panel per success
    notion, from a :func:`stelab.analysis.thresholds_by` table grouped by (``by``, "steps")."""
    plotting.need(thresholds, by, "steps", "n50", "success")
    metrics = plotting.as_list(success)
    fig, axes = plotting.figure(len(metrics))
    for ax, metric in zip(axes, metrics, strict=True):
        sub = thresholds[thresholds["success"] == metric]
        values = sorted(sub[by].unique())
        for color, value in zip(plotting.colors(len(values)), values, strict=True):
            line = sub[sub[by] == value].sort_values("steps")
            ok = line[np.isfinite(line["n50"].to_numpy(dtype=float))]
            if ok.empty:
                continue
            n50, bars = plotting.interval_bars(ok)
            ax.errorbar(ok["steps"], n50, yerr=bars, marker="o", color=color, capsize=3,
                        label=f"{by}={value:g}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("horizon T (iterations)")
        ax.set_ylabel("threshold n50")
        ax.set_title(f"n50 vs horizon: {plotting.label(metric)}")
        plotting.legend(ax, 8)
    return plotting.save(fig, path)


def figures(tables: Frames, derived: Frames, folder: Path) -> Figures:
    return {
        "e1_horizon_n50": plot_threshold_vs_horizon(
            derived["e1_horizon_thresholds"], folder / "e1_horizon_n50.png", by="step_size"
        )
    }


def report_section(ctx: SectionContext) -> str:
    thr = ctx.derived["e1_horizon_thresholds"].sort_values(["success", "step_size", "steps"])
    columns, rows = pivot(thr, ["success", "step_size"], "steps",
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
            ctx.image("e1_horizon_n50", "n50 vs horizon per step size"),
        ]
    )


EXPERIMENT = Experiment(
    name="e1_horizon",
    title="E1 axes at one d: step size c and horizon T (C2)",
    profile_table="e1",
    tables=(Table("e1_horizon", "E1 axes at one d: step size c and horizon T (C2)",
                  cells=build_cells),),
    derive=derive,
    provides=("e1_horizon_thresholds",),
    figures=figures,
    section=report_section,
    claims=("C2",),
)
