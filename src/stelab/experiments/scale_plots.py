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

    ``thresholds``: :func:`stelab.analysis.threshold_ratios` rows of one case (columns d,
    success, ``alpha50`` and ``n50_per_dlogd`` with their ``_ci_low``/``_ci_high``).
    """
    plotting.need(thresholds, "d", "success", "alpha50", "n50_per_dlogd")
    fig, axes = plotting.figure(2)
    notions = sorted(thresholds["success"].unique())
    for ax, (column, name) in zip(axes, (("alpha50", "n50 / d"),
                                         ("n50_per_dlogd", "n50 / (d ln d)")), strict=True):
        for color, notion in zip(plotting.colors(len(notions)), notions, strict=True):
            sub = thresholds[(thresholds["success"] == notion)
                             & np.isfinite(thresholds[column])].sort_values("d")
            if sub.empty:
                continue
            center = sub[column].to_numpy(dtype=float)
            low = np.where(np.isfinite(sub[f"{column}_ci_low"]), sub[f"{column}_ci_low"], center)
            high = np.where(np.isfinite(sub[f"{column}_ci_high"]), sub[f"{column}_ci_high"],
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
