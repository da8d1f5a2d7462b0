"""E5 real data (claim C4 in practice): binary networks trained with STE on scikit-learn's
bundled digits, raw pixels vs normalized inputs (test accuracy per seed), and exact recovery of
random binary teachers with the digit images as inputs (per normalization, next to
``stelab diagnose``'s prediction). The work is done by :mod:`stelab.realdata`: training on real
data is not a sweep of engine cells, so both tables have their own runner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stelab.analysis import mean_ci_by
from stelab.experiments.profile import section
from stelab.experiments.registry import Experiment, Figures, Frames, SectionContext, Table
from stelab.realdata import digits_teacher_recovery, run_digits, summarize_digits
from stelab.render import plotting
from stelab.render.markdown import fmt, interval, table


def run_accuracy(profile: dict[str, Any]) -> pd.DataFrame:
    """Test accuracy of the paper's network and a small binary MLP, per task, normalization and
    seed (``[e5] seeds``, ``quick``)."""
    spec = section(profile, "e5")
    return run_digits(seeds=spec.get("seeds", 10), quick=spec.get("quick", True))


def recovery_wanted(profile: dict[str, Any]) -> bool:
    """Whether the profile asks for teacher-recovery trials (``[e5] recovery_trials`` > 0)."""
    return section(profile, "e5").get("recovery_trials", 0) > 0


def run_recovery(profile: dict[str, Any]) -> pd.DataFrame:
    """Teacher recovery from the digit images (``[e5] recovery_trials``, ``recovery_steps``)."""
    spec = section(profile, "e5")
    return digits_teacher_recovery(trials=spec["recovery_trials"],
                                   steps=spec.get("recovery_steps", 500))


def derive(tables: Frames, n_boot: int) -> Frames:
    """Mean test accuracy over seeds with a 95% t interval; the recovery table as it is."""
    derived = {"e5_summary": summarize_digits(tables["e5"])}
    if "e5_recovery" in tables:
        derived["e5_recovery"] = tables["e5_recovery"]
    return derived


def plot_digits_accuracy(rows: pd.DataFrame, path: str | Path) -> Path:
    """E5: test accuracy (mean and 95% t interval over seeds, seeds as dots) per normalization,
    one panel per (task, model), with chance level."""
    plotting.need(rows, "task", "model", "normalization", "test_accuracy")
    panels = list(plotting.groups(rows, ["task", "model"]))
    fig, axes = plotting.figure(len(panels), width=4.8, height=3.8, max_cols=4)
    for ax, (key, group) in zip(axes, panels, strict=True):
        norms = list(dict.fromkeys(group["normalization"]))
        stats = mean_ci_by(group, "test_accuracy", by="normalization").set_index("normalization")
        for i, norm in enumerate(norms):
            values = group.loc[group["normalization"] == norm, "test_accuracy"].to_numpy(float)
            ax.scatter(np.full(values.size, i) + 0.12, values, s=8, color="gray", alpha=0.6)
            mean, low, high = stats.loc[norm, ["mean", "ci_low", "ci_high"]]
            ax.errorbar([i], [mean], yerr=plotting.yerr([mean], [low], [high]), fmt="o",
                        color="C0", capsize=4)
        if "chance" in group:
            ax.axhline(float(group["chance"].iloc[0]), color="red", ls=":", lw=1, label="chance")
        ax.set_xticks(range(len(norms)), norms)
        ax.set_ylabel("test accuracy")
        ax.set_title(plotting.group_label(["task", "model"], key), fontsize=10)
        plotting.legend(ax, 8)
    return plotting.save(fig, path)


def figures(tables: Frames, derived: Frames, folder: Path) -> Figures:
    return {"e5_accuracy": plot_digits_accuracy(tables["e5"], folder / "e5_accuracy.png")}


def report_section(ctx: SectionContext) -> str:
    derived = ctx.derived
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
        ctx.image("e5_accuracy", "digits test accuracy"),
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


EXPERIMENT = Experiment(
    name="e5",
    title="E5 real data: binary networks on scikit-learn's digits (C4 in practice)",
    profile_table="e5",
    tables=(
        Table("e5", "E5 real data: binary networks on scikit-learn's digits", run=run_accuracy,
              columns=("task", "model", "normalization", "test_accuracy")),
        Table("e5_recovery", "teacher recovery with digit images as inputs", run=run_recovery,
              wanted=recovery_wanted,
              columns=("normalization", "teacher_balance", "success_rate", "ci_low", "ci_high"),
              optional=True),
    ),
    derive=derive,
    provides=("e5_summary", "e5_recovery"),
    figures=figures,
    section=report_section,
    claims=("C4",),
)
