"""Derived tables of a reproduce run: thresholds, exponents, recurrence and success tables.

Pure functions of the stored per-trial tables (``DIR/tables/<name>.parquet``); each returns
tidy DataFrames that the claims, figures and report read. Nothing here reruns an experiment.
"""

from __future__ import annotations

import pandas as pd

from stelab import analysis

SUCCESS = ("success_last", "success_ergodic")
SCALING_MODELS = ("power", "dlogd", "d^2", "d^4")


def with_case(rows: pd.DataFrame) -> pd.DataFrame:
    """Add the E1 ``case`` label m<m>_<activation>_<surrogate>."""
    rows = rows.copy()
    rows["case"] = "m" + rows["m"].astype(str) + "_" + rows["activation"] + "_" + rows["ste"]
    return rows


def e1_tables(rows: pd.DataFrame, n_boot: int) -> dict[str, pd.DataFrame]:
    """Thresholds per (case, d), exponents per (case, success) (global fit, model comparison and
    local exponents between neighbouring d), thresholds per horizon T (from the checkpoints) and
    the success at the largest n of every (case, d)."""
    rows = with_case(rows)
    thresholds = analysis.thresholds_by(rows, by=("case", "d"), success=SUCCESS, n_boot=n_boot)
    scaling = analysis.scaling_by(thresholds, by=("case", "success"), model="power", n_boot=n_boot)
    models = pd.concat(
        [
            analysis.compare_scaling_models(
                group.drop(columns=["case", "success"]), models=SCALING_MODELS, n_boot=n_boot
            ).assign(case=case, success=success)
            for (case, success), group in thresholds.groupby(["case", "success"])
        ],
        ignore_index=True,
    )
    local = pd.concat(
        [
            analysis.local_exponents(group.drop(columns=["case", "success"]))
            .assign(case=case, success=success)
            for (case, success), group in thresholds.groupby(["case", "success"])
        ],
        ignore_index=True,
    )
    at_horizon = analysis.at_checkpoints(rows)
    by_horizon = analysis.thresholds_by(
        at_horizon, by=("case", "d", "steps"), success=SUCCESS, n_boot=n_boot, vary=("run_steps",)
    )
    largest = rows[rows["n"] == rows.groupby(["case", "d"])["n"].transform("max")]
    reach = analysis.success_table(largest, by=("case", "d", "n"), success=SUCCESS)
    return {
        "e1_thresholds": thresholds,
        "e1_scaling": scaling,
        "e1_models": models,
        "e1_local_exponents": local,
        "e1_thresholds_by_horizon": by_horizon,
        "e1_reach": reach,
    }


def e1_horizon_tables(rows: pd.DataFrame, n_boot: int) -> dict[str, pd.DataFrame]:
    """Thresholds at one d per (step size c, horizon T)."""
    at_horizon = analysis.at_checkpoints(rows)
    thresholds = analysis.thresholds_by(
        at_horizon, by=("step_size", "steps"), success=SUCCESS, n_boot=n_boot, vary=("run_steps",)
    )
    return {"e1_horizon_thresholds": thresholds}


def e2_tables(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Ergodic vs last-iterate success vs horizon T, per n."""
    at_horizon = analysis.at_checkpoints(rows)
    return {
        "e2_success_vs_horizon": analysis.success_table(
            at_horizon, by=("n", "steps"), success=SUCCESS
        )
    }


def e3_tables(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Recurrence statistics per noise level."""
    return {
        "e3_growth": analysis.return_growth(rows, by="noise_level"),
        "e3_occupation": analysis.mean_ci_by(rows, "occupation", by="noise_level"),
        "e3_absorbed": analysis.success_table(
            rows,
            by="noise_level",
            success=("absorbed", "success_last", "success_ergodic", "success_best"),
        ),
        "e3_return_times": analysis.return_time_summary(rows, by="noise_level"),
    }


def e4_tables(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Success with Wilson CIs per distribution x normalization x teacher balance."""
    return {
        "e4_success": analysis.success_table(
            rows, by=("distribution", "normalization", "teacher_balance"), success=SUCCESS
        )
    }


def derive(tables: dict[str, pd.DataFrame], n_boot: int = 1000) -> dict[str, pd.DataFrame]:
    """Every derived table computable from the stored tables present."""
    derived: dict[str, pd.DataFrame] = {}
    if "e1" in tables:
        derived.update(e1_tables(tables["e1"], n_boot))
    if "e1_horizon" in tables:
        derived.update(e1_horizon_tables(tables["e1_horizon"], n_boot))
    if "e2" in tables:
        derived.update(e2_tables(tables["e2"]))
    if "e3" in tables:
        derived.update(e3_tables(tables["e3"]))
    if "e4" in tables:
        derived.update(e4_tables(tables["e4"]))
    if "e5" in tables:
        from stelab.realdata import summarize_digits

        derived["e5_summary"] = summarize_digits(tables["e5"])
    if "e5_recovery" in tables:
        derived["e5_recovery"] = tables["e5_recovery"]
    return derived
