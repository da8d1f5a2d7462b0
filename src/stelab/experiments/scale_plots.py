"""The scale experiment's own figure: thresholds divided by the candidate laws' shapes.

If n50 = a d then n50 / d is flat in d; if n50 = a d ln d then n50 / (d ln d) is. Plotting both
normalizations with their CIs shows at a glance which one levels off at large d.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from stelab.render import plotting


def plot_normalized_thresholds(thresholds: pd.DataFrame, path: str | Path | None
                               ) -> Path | Figure:
    """n50 / d (left) and n50 / (d ln d) (right) vs d with 95% CIs, one series per notion.

    ``thresholds``: :func:`stelab.experiments.scale_derive.derive`'s ``scale_thresholds`` rows
    of one case (columns d, success and ``{n50,ci_low,ci_high}_over_{d,dlnd}``).
    """
    plotting.need(thresholds, "d", "success", "n50_over_d", "n50_over_dlnd")
    fig, axes = plotting.figure(2)
    notions = sorted(thresholds["success"].unique())
    for ax, (suffix, name) in zip(axes, (("over_d", "n50 / d"),
                                         ("over_dlnd", "n50 / (d ln d)")), strict=True):
        for color, notion in zip(plotting.colors(len(notions)), notions, strict=True):
            sub = thresholds[(thresholds["success"] == notion)
                             & np.isfinite(thresholds[f"n50_{suffix}"])].sort_values("d")
            if sub.empty:
                continue
            center = sub[f"n50_{suffix}"].to_numpy(dtype=float)
            low = np.where(np.isfinite(sub[f"ci_low_{suffix}"]), sub[f"ci_low_{suffix}"], center)
            high = np.where(np.isfinite(sub[f"ci_high_{suffix}"]), sub[f"ci_high_{suffix}"],
                            center)
            ax.errorbar(sub["d"], center, yerr=plotting.yerr(center, low, high), fmt="o-",
                        color=color, capsize=3, label=f"{plotting.label(notion)} (95% CI)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("dimension d")
        ax.set_ylabel(name)
        ax.set_title(f"{name}: flat where n50 follows that law")
        plotting.legend(ax, 7)
    return plotting.save(fig, path)
