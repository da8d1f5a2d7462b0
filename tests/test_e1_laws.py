"""E1's derived tables carry the clustered n50 bootstrap, alpha50, the law comparison over
d >= 64 with verdicts, and the report states them (on the committed results/quick rows)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from stelab.analysis.laws import VERDICTS
from stelab.experiments import e1

ROWS = Path(__file__).resolve().parents[1] / "results" / "quick" / "tables" / "e1.parquet"


@pytest.fixture(scope="module")
def derived() -> dict[str, pd.DataFrame]:
    rows = pd.read_parquet(ROWS)
    return e1.derive({"e1": rows[rows["case"] == "m1_sign"]}, n_boot=200)


def test_thresholds_use_the_clustered_bootstrap_and_give_alpha50(derived):
    thr = derived["e1_thresholds"]
    identified = thr[thr["identified"]]
    assert set(identified["bootstrap"]) <= {"clustered", "parametric"}
    assert (identified["bootstrap"] == "clustered").any()
    np.testing.assert_allclose(thr["alpha50"], thr["n50"] / thr["d"])
    np.testing.assert_allclose(thr["n50_per_dlogd_ci_high"],
                               thr["ci_high"] / (thr["d"] * np.log(thr["d"])))
    assert "alpha50_ci_low" in derived["e1_thresholds_by_horizon"]


def test_models_pool_d_from_64_and_carry_verdicts(derived):
    models = derived["e1_models"]
    thr = derived["e1_thresholds"]
    for (case, success), group in models.groupby(["case", "success"]):
        assert tuple(group["model"]) == e1.SCALING_MODELS
        pooled = thr[(thr["case"] == case) & (thr["success"] == success) & thr["identified"]
                     & (thr["d"] >= e1.LAW_D_MIN)]
        assert (group["n_points"] == len(pooled)).all() and (group["d_min"] >= 64).all()
    assert set(models["verdict"]) <= set(VERDICTS) and models["rule"].str.len().gt(0).all()
    assert "ci_width" in derived["e1_local_exponents"]


def test_report_states_the_verdicts(derived):
    ctx = SimpleNamespace(derived=derived, image=lambda name, caption: "")
    text = e1.report_section(ctx)
    assert "Which law does n50 follow? Pooled fits over d >= 64" in text
    assert "- m1_sign, ergodic (" in text and "- m1_sign, last iterate (" in text
    assert "| n50/(d ln d) |" in text and "| CI width |" in text
