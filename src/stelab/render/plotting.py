"""What every figure of the report shares (matplotlib, Agg, PNG at 120 dpi): panels, colours,
labels, error bars, saving.

The figure functions themselves live with their experiment (``stelab.experiments.<name>``): each
takes stored rows (a DataFrame) or a derived table, an output path and options, draws one PNG and
returns its path. Figures only recompute statistics (via :mod:`stelab.analysis`), never
experiments, so any figure can be redrawn from the stored tables. They are built with
``matplotlib.figure.Figure`` directly (no pyplot global state), so they are safe in worker
processes and never open a window.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from stelab.atomic import atomic_write
from stelab.errors import DataError

DPI = 120
LABELS = {
    "success_last": "last iterate",
    "success_ergodic": "ergodic (sign of time average)",
    "success_best": "best iterate",
    "absorbed": "absorbed",
    "hamming_trajectory": "Hamming distance H_t",
    "loss_trajectory": "training loss L(q_t)",
    "noise_level": "label-noise level p",
    "teacher_balance": "teacher balance",
}


def label(name: str) -> str:
    """The axis/legend label of a column name (the name itself when it has none)."""
    return LABELS.get(name, name)


def ordered(values, canonical: Sequence[str]) -> list:
    """``values`` in the order of ``canonical`` (unknown ones after, sorted)."""
    known = [v for v in canonical if v in set(values)]
    return known + sorted(v for v in values if v not in set(known))


def as_list(value: str | Sequence[str] | None) -> list[str]:
    """A column name or a sequence of them as a list (None -> [])."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def figure(
    panels: int = 1, width: float = 6.4, height: float = 4.6, max_cols: int = 3
) -> tuple[Figure, list]:
    """A figure of ``panels`` axes, at most ``max_cols`` a row (spare axes hidden)."""
    cols = min(panels, max_cols)
    nrows = math.ceil(panels / cols)
    fig = Figure(figsize=(width * cols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, cols, squeeze=False).ravel().tolist()
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig, axes[:panels]


def legend(ax, fontsize: int) -> None:
    """A legend, only when something is labelled."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=fontsize)


def save(fig: Figure, path: str | Path | None) -> Path | Figure:
    """Write ``fig`` as a PNG at :data:`DPI` (creating the folder), atomically and with its
    checksum (:func:`stelab.atomic.atomic_write`); return the path. With ``path=None``, return
    ``fig`` unsaved (how :mod:`stelab.figures` hands figures to a notebook)."""
    if path is None:
        return fig
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda fh: fig.savefig(fh, dpi=DPI, format="png"))


def colors(count: int) -> list:
    """``count`` distinguishable colours (tab10, or viridis steps beyond 10)."""
    cmap = colormaps["tab10"] if count <= 10 else colormaps["viridis"]
    if count <= 10:
        return [cmap(i) for i in range(count)]
    return [cmap(x) for x in np.linspace(0.0, 0.9, count)]


def group_label(by: list[str], key: tuple) -> str:
    """'col=value, ...' for a group key ('all' without grouping)."""
    return ", ".join(f"{c}={v:g}" if isinstance(v, int | float | np.number) else f"{c}={v}"
                     for c, v in zip(by, key, strict=True)) or "all"


def groups(frame: pd.DataFrame, by: list[str]) -> Iterator[tuple[tuple, pd.DataFrame]]:
    """(key tuple, group) per group of ``by`` (one group ``()`` without grouping)."""
    if not by:
        yield (), frame
        return
    for key, group in frame.groupby(by, sort=True):
        yield (key if isinstance(key, tuple) else (key,)), group


def yerr(center, low, high) -> np.ndarray:
    """Error-bar lengths (2, k); clipped at 0 because a percentile interval need not contain
    its point estimate, and rounding can leave an end a hair on the wrong side."""
    center = np.asarray(center, dtype=float)
    return np.clip(np.vstack([center - np.asarray(low, float), np.asarray(high, float) - center]),
                   0, None)


def need(rows: pd.DataFrame, *columns: str) -> None:
    """DataError naming the first missing column, or an empty table."""
    for column in columns:
        if column not in rows:
            raise DataError(f"rows.{column}: column missing")
    if len(rows) == 0:
        raise DataError("rows: empty table, nothing to plot")


def interval_bars(frame: pd.DataFrame, value: str = "n50") -> tuple[np.ndarray, np.ndarray]:
    """(values, error-bar lengths) of ``value`` with ``ci_low``/``ci_high``; a missing CI end
    is drawn as a zero-length bar."""
    center = frame[value].to_numpy(dtype=float)
    low = np.where(np.isfinite(frame["ci_low"]), frame["ci_low"], center)
    high = np.where(np.isfinite(frame["ci_high"]), frame["ci_high"], center)
    return center, yerr(center, low, high)
