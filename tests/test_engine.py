"""The batched engine: reproducibility, batch independence, oracles and exact recovery."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from stelab.engine import run_experiment
from stelab.engine.dense import run_dense
from stelab.engine.problem import build_problem
from stelab.outcomes import trajectory_outcomes, zero_visit_runs
from tests.helpers import make_config

TIMING = ["wall_seconds"]


def _outcomes(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.drop(columns=TIMING)


def _trajectories(rows: pd.DataFrame) -> np.ndarray:
    return np.stack(rows["hamming_trajectory"].to_list())


def test_same_config_same_rows():
    cfg = make_config(record={"trajectory": True}, noise={"kind": "flip", "level": 0.05})
    a, b = run_experiment(cfg), run_experiment(cfg)
    pd.testing.assert_frame_equal(_outcomes(a), _outcomes(b))


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"noise": {"kind": "flip", "level": 0.05}, "model": {"d": 16, "m": 3, "activation": "step"}},
        {"train": {"n": 64, "steps": 20, "batch_size": 16}},
        {"data": {"distribution": "lognormal", "normalization": "whiten"}},
        {"data": {"normalization": "batchnorm"}, "train": {"n": 64, "steps": 20, "ste": "hardtanh"}},
    ],
)
def test_trial_result_independent_of_batch(overrides):
    cfg = make_config(run={"trials": 64, "seed": 3, "device": "cpu"}, record={"trajectory": True}, **overrides)
    together = run_experiment(cfg)
    in_chunks = run_experiment(cfg, chunk_size=5)
    alone = pd.concat([run_experiment(cfg, trials=[k]) for k in (0, 17, 63)], ignore_index=True)
    assert np.array_equal(_trajectories(together), _trajectories(in_chunks))
    pd.testing.assert_frame_equal(_outcomes(together), _outcomes(in_chunks))
    subset = together.iloc[[0, 17, 63]].reset_index(drop=True)
    pd.testing.assert_frame_equal(_outcomes(subset), _outcomes(alone))


def test_exact_recovery_at_8_d_log_d():
    """d = 64, m = 1, n = 8 d ln d: the last iterate equals w* in at least 95% of 64 trials."""
    d = 64
    cfg = make_config(
        model={"d": d}, train={"n": math.ceil(8 * d * math.log(d)), "steps": 100},
        run={"trials": 64, "seed": 2026, "device": "cpu"},
    )
    rows = run_experiment(cfg)
    assert rows["success_last"].mean() >= 0.95


def test_step_and_sign_give_identical_iterates_with_identity_surrogate():
    base = {"d": 20, "m": 4}
    sign_rows = run_experiment(make_config(model={**base, "activation": "sign"}, record={"trajectory": True}))
    step_rows = run_experiment(make_config(model={**base, "activation": "step"}, record={"trajectory": True}))
    assert np.array_equal(_trajectories(sign_rows), _trajectories(step_rows))
    assert sign_rows["final_hamming"].sum() > 0 or sign_rows["first_hit_step"].min() > 1


def test_binary_iterates_do_not_depend_on_step_size_from_zero_init():
    """u_t = -eta sum_s g(q_s), so q_t does not depend on eta (power-of-two ratios keep float
    rounding exact, so the trajectories must agree bit for bit)."""
    trajectories = []
    for c in (0.125, 0.5, 4.0):
        cfg = make_config(train={"n": 48, "steps": 30, "init": "zero", "step_size": c},
                          run={"trials": 8, "seed": 1, "device": "cpu"}, record={"trajectory": True})
        trajectories.append(_trajectories(run_experiment(cfg)))
    assert all(np.array_equal(trajectories[0], other) for other in trajectories[1:])


def test_freezing_converged_trials_changes_nothing():
    cfg = make_config(train={"n": 400, "steps": 60}, run={"trials": 6, "seed": 0, "device": "cpu"},
                      record={"loss_trajectory": True, "checkpoints": [1, 2, 3, 10, 60]})
    problem = build_problem(cfg, list(range(6)), torch.device("cpu"))
    frozen = run_dense(problem, cfg, freeze=True)
    full = run_dense(problem, cfg, freeze=False)
    assert (frozen.hamming[:, -1] == 0).all()
    for field in ("hamming", "ergodic_hamming", "final_loss", "loss", "final_u", "ergodic_at"):
        assert np.array_equal(getattr(frozen, field), getattr(full, field)), field


def test_ergodic_checkpoints_match_runs_of_that_horizon():
    rec = {"checkpoints": [3, 7, 25]}
    long = run_experiment(make_config(train={"n": 40, "steps": 25}, record=rec))
    at = np.stack(long["ergodic_hamming_at"].to_list())
    assert np.array_equal(at[:, 2], long["ergodic_hamming"].to_numpy())
    for i, horizon in enumerate((3, 7)):
        short = run_experiment(make_config(train={"n": 40, "steps": horizon}))
        assert np.array_equal(at[:, i], short["ergodic_hamming"].to_numpy())


def test_flip_noise_keeps_iterates_moving_at_w_star():
    cfg = make_config(model={"d": 16}, train={"n": 2000, "steps": 200}, noise={"kind": "flip", "level": 0.1},
                      run={"trials": 4, "seed": 0, "device": "cpu"})
    rows = run_experiment(cfg)
    assert rows["success_best"].all()
    assert (rows["n_exits"] > 0).any()


def test_minibatch_differs_from_full_batch_but_is_reproducible():
    full = make_config(train={"n": 64, "steps": 20}, record={"trajectory": True})
    mini = make_config(train={"n": 64, "steps": 20, "batch_size": 8}, record={"trajectory": True})
    a, b = run_experiment(mini), run_experiment(mini)
    assert np.array_equal(_trajectories(a), _trajectories(b))
    assert not np.array_equal(_trajectories(a), _trajectories(run_experiment(full)))


def test_rows_have_the_contract_columns():
    rows = run_experiment(make_config())
    required = {
        "d", "m", "activation", "teacher_balance", "distribution", "normalization", "noise_kind",
        "noise_level", "n", "steps", "ste", "weight_ste", "step_size", "init", "init_scale",
        "batch_size", "trials", "seed", "device", "trial", "success_last", "success_ergodic",
        "success_best", "occupation", "first_hit_step", "n_returns", "final_hamming", "final_loss",
        "wall_seconds",
    }
    assert required <= set(rows.columns)
    assert rows["trial"].tolist() == [0, 1, 2, 3]


# ----------------------------------------------------------------- recorder on hand-made paths
def test_recorder_on_hand_made_trajectories():
    H = np.array(
        [
            [5, 3, 0, 0, 2, 1, 0, 4, 0, 0],  # hit at 2, exits at 4 and 7, returns at 6 and 8
            [5, 4, 3, 2, 2, 1, 1, 1, 1, 1],  # never hits
            [5, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # absorbed from step 1
        ]
    )
    out = trajectory_outcomes(H, ergodic_hamming=np.array([0, 3, 0]), absorb_window=2)
    assert out["success_last"].tolist() == [True, False, True]
    assert out["success_best"].tolist() == [True, False, True]
    assert out["success_ergodic"].tolist() == [True, False, True]
    assert out["absorbed"].tolist() == [True, False, True]
    assert out["first_hit_step"].tolist() == [2, -1, 1]
    assert out["n_exits"].tolist() == [2, 0, 0]
    assert out["n_returns"].tolist() == [2, 0, 0]
    assert out["occupation"].tolist() == pytest.approx([5 / 9, 0.0, 1.0])
    assert out["max_excursion"].tolist() == [2, 0, 0]
    assert out["min_hamming"].tolist() == [0, 1, 0]
    excursions, sojourns = zero_visit_runs(H[0])
    assert excursions.tolist() == [2, 1]
    assert sojourns.tolist() == [2, 1, 2]


def test_trajectory_starting_at_w_star_counts_every_entry_as_return():
    H = np.array([[0, 0, 1, 0, 2, 0]])
    out = trajectory_outcomes(H, ergodic_hamming=np.array([0]), absorb_window=1)
    assert out["n_returns"].tolist() == [2]
    assert out["first_hit_step"].tolist() == [1]
