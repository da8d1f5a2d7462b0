"""The profile's case names on per-trial rows: one name for a case everywhere.

A profile lists an experiment's cases as ``[[<experiment>.case]]`` tables, each with a ``name``
and the settings that define it (``model = {...}``, ``train = {...}``, ``d = [...]``). Their
rows are labelled with that name in a ``case`` column before the table is stored, so the
per-trial tables, the derived tables, the figures and the claims all say ``m1_sign`` where the
profile says ``m1_sign``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

__all__ = ["label_cases"]


def label_cases(rows: pd.DataFrame, cases: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """``rows`` with a ``case`` column: the name of the first profile case whose settings the
    row has (each ``model`` / ``train`` key that is a row column must be equal, and ``d`` among
    the case's ``d`` where it lists them); rows of no case get ``None``.

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows (columns as :meth:`stelab.config.Config.flat`).
    cases : sequence of dict
        The profile's case tables (``name``, optional ``model``, ``train``, ``d``).

    Returns
    -------
    DataFrame
        A copy of ``rows`` with ``case`` (str or None) as its first column.
    """
    out = rows.drop(columns="case", errors="ignore").copy()
    names = pd.Series([None] * len(out), index=out.index, dtype=object)
    for case in cases:
        match = pd.Series(True, index=out.index)
        for key, value in {**case.get("model", {}), **case.get("train", {})}.items():
            if key in out:
                match &= out[key] == value
        if "d" in case and "d" in out:
            match &= out["d"].isin(list(case["d"]))
        names[match & names.isna()] = case["name"]
    out.insert(0, "case", names)
    return out
