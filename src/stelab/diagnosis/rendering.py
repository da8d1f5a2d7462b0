"""Diagnose's output: rich tables for the terminal and strict JSON for machines."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.table import Table

if TYPE_CHECKING:  # annotations only: prediction builds a Diagnosis and renders it with this
    from stelab.diagnosis.prediction import Diagnosis

__all__ = ["diagnosis_json", "diagnosis_renderables"]


def diagnosis_json(data: dict[str, Any]) -> str:
    """Strict JSON of a diagnosis dict (RFC 8259 has no NaN or Infinity): a non-finite number is
    written as null, e.g. ``label_offset`` when every projection x.w* is equal (sd 0) or
    ``covariance_condition`` of a covariance with a single positive eigenvalue direction."""
    return json.dumps(_finite_or_null(data), indent=2, default=_json_default, allow_nan=False)


def diagnosis_renderables(dg: Diagnosis, title: str = "dataset") -> list[Any]:
    """Rich renderables: the geometry table, the prediction table, a recommendation line."""
    geometry = Table(title=f"{title}: {dg.n} samples x {dg.d} features")
    geometry.add_column("statistic")
    geometry.add_column("value", justify="right")
    geometry.add_column("Gaussian", justify="right")
    for label, value, ref in [
        ("mean offset |mu|/sd (mean, max)",
         f"{dg.mean_offset:.3g}, {dg.max_offset:.3g}", "0"),
        ("feature sd (min, max)", f"{dg.scale_min:.3g}, {dg.scale_max:.3g}", "equal"),
        ("constant features", f"{dg.constant_features}", "0"),
        ("|skewness| (mean, max)",
         f"{dg.skewness_mean_abs:.3g}, {dg.skewness_max_abs:.3g}", "0"),
        ("excess kurtosis (mean, max)",
         f"{dg.excess_kurtosis_mean:.3g}, {dg.excess_kurtosis_max:.3g}", "0"),
        ("KS of random projections", f"{dg.projection_ks_mean:.3g}",
         f"< {dg.projection_ks_reference:.2g}"),
        ("covariance condition number", f"{dg.covariance_condition:.3g}", "1"),
    ]:
        geometry.add_row(label, value, ref)
    prediction = Table(
        title=f"STE health (m = 1, identity STE, T = {dg.steps}, d = {dg.d_analysed}"
        f"{' non-constant' if dg.d_analysed < dg.d else ''}; "
        f"Gaussian n50 = {dg.gaussian_n50:.0f})"
    )
    columns = ("norm.", "bal.", "n_eff", "disc/nbr", "unpinned", "minority", "offset", "cos0",
               "verdict")
    measured = any(c.measured_success is not None for c in dg.checks)
    if measured:
        columns = (*columns, "measured")
    for col in columns:
        prediction.add_column(col, justify="left" if col == "norm." else "right")
    for c in dg.checks:
        verdict = "[green]ok[/]" if c.predicted_healthy else "[red]FAILS[/]"
        prediction.add_row(
            c.normalization, f"{c.teacher_balance:g}", f"{c.n_eff:.0f}",
            f"{c.discriminating_mean:.1f}", f"{c.unpinned_share:.2f}",
            f"{c.minority_label_share:.3f}", f"{c.label_offset:.2f}",
            f"{c.start_alignment:.2f}", verdict,
            *([] if not measured else [
                "-" if c.measured_success is None else f"{c.measured_success:.2f}"
            ]),
        )
    legend = (
        "n_eff: Gaussian-equivalent sample size; disc/nbr: samples telling w* from a "
        "one-flip neighbour; unpinned: share of neighbours no sample tells apart (ok: n_eff >= "
        "Gaussian n50 and (1 - unpinned)^d >= 1/2); "
        "minority: share of the rarer label; offset: |mean(x.w*)|/sd(x.w*); cos0: cosine of "
        "-g(q0) with w* at a random start"
    )
    if dg.healthy_raw:
        advice = "raw inputs are predicted healthy: no normalization needed (recommended: none)"
    elif dg.predicted(dg.recommended):
        advice = f"recommended normalization: {dg.recommended}"
    else:
        advice = (
            f"no normalization is predicted healthy; best: {dg.recommended} "
            "(more samples needed)"
        )
    if dg.d_analysed < dg.d:
        advice += (
            f"\n{dg.d - dg.d_analysed} constant feature(s) left out: no sample can tell "
            "the teacher's weights on them, under any normalization"
        )
    scope = (
        "what this predicts: one layer of binary weights trained with the identity STE on these "
        "inputs as given (m = 1, labels from random binary teachers). It does not apply to a "
        "network with batch norm (or another normalization) after its first layer: there the "
        "normalization of the inputs matters little, so do not expect this advice to help it"
    )
    return [geometry, prediction, legend, advice, scope]


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_null(v) for v in value]
    if isinstance(value, float | np.floating) and not math.isfinite(value):
        return None
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
