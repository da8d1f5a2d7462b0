"""Markdown helpers of the report: numbers and intervals, tables, image links, and the verdicts
section. Each experiment writes its own section with them (``stelab.experiments.<name>``)."""

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
    """A Markdown image line for figure ``name``, relative to ``out`` ('' when not drawn)."""
    if name not in figures:
        return ""
    return f"![{caption}]({figures[name].relative_to(out).as_posix()})\n"


def verdict_section(verdicts: list[Verdict]) -> str:
    """The verdicts table and the rules they follow."""
    rows = [(v.id, v.as_json()["claim"], f"**{v.verdict}**", v.reason) for v in verdicts]
    rules = "\n".join(f"- **{cid}**: {RULES[cid]}" for cid in sorted(RULES))
    return (
        "## Verdicts\n\n"
        + table(("claim", "statement", "verdict", "why"), rows)
        + "\n\nVerdicts are computed from the measurements by these rules (code: "
        "`stelab/claims.py`; the evidence, with every number and interval, is in "
        "`claims.json`):\n\n" + rules + "\n"
    )


def pivot(frame: pd.DataFrame, index: list[str], column: str, cell) -> tuple[list, list]:
    """Rows of a wide table: one per ``index`` key, one cell per value of ``column``."""
    columns = sorted(frame[column].unique())
    cells = {(tuple(getattr(r, i) for i in index), getattr(r, column)): cell(r)
             for r in frame.itertuples()}
    keys = list(dict.fromkeys(tuple(getattr(r, i) for i in index) for r in frame.itertuples()))
    rows = [(*[fmt(k) for k in key], *[cells.get((key, c), "—") for c in columns])
            for key in keys]
    return columns, rows
