"""The adaptive threshold design (stelab.adaptive) on simulated success curves: where it puts
its rounds, that it stops, that it finds the true n50, and that replaying it on stored rows
gives the same points (what makes an interrupted run resume to identical tables)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stelab.adaptive import (
    DesignRule,
    Ladder,
    assess,
    design_round,
    next_points,
    point_seed,
    rule_from_profile,
)
from stelab.errors import ConfigError

RULE = DesignRule(trials_per_point=20, target_ci=0.15, max_trials=600, n_boot=200)
SLOPE = 8.0


def true_n50(d: int) -> float:
    return 2.0 * d * math.log(d)


def simulate(points, slope: float = SLOPE) -> pd.DataFrame:
    """Rows of each point's trials: success ~ Bernoulli(logistic(slope ln(n / n50(d))))."""
    frames = []
    for p in points:
        rng = np.random.default_rng(p.seed)
        prob = 1.0 / (1.0 + math.exp(-slope * math.log(p.n / true_n50(p.d))))
        frames.append(pd.DataFrame({
            "case": p.ladder.case, "d": p.d, "n": p.n, "seed": p.seed,
            "trial": np.arange(p.trials), "success_ergodic": rng.random(p.trials) < prob}))
    return pd.concat(frames, ignore_index=True)


def run_design(ladder: Ladder, rule: DesignRule = RULE, rounds: int = 60):
    """Run the design to its end on simulated trials; the stored rows and every round's points."""
    rows = pd.DataFrame(columns=["case", "d", "n", "seed", "trial", "success_ergodic"])
    history = []
    for _ in range(rounds):
        points, statuses = design_round([ladder], lambda _ladder, rows=rows: rows, 11, rule)
        if not points:
            return rows, history, statuses
        history.append(points)
        rows = pd.concat([rows, simulate(points)], ignore_index=True)
    raise AssertionError("the design did not stop")


LADDER = Ladder("toy", "success_ergodic", (16, 32, 64, 128))


def test_design_stops_and_finds_each_n50():
    rows, history, statuses = run_design(LADDER)
    for d in LADDER.d:
        status = statuses[("toy/success_ergodic", d)]
        assert status.done and status.identified
        # done by the CI target, or by the budget
        assert status.ci_width <= RULE.target_ci or status.own_trials >= RULE.max_trials
        assert abs(math.log(status.n50 / true_n50(d))) < 0.15
    assert len(history) >= 3


def test_rounds_go_around_the_fitted_quantiles():
    rows, history, _ = run_design(LADDER)
    later = [p for points in history[2:] for p in points if p.d == 16]
    assert later
    # after the first rounds, points sit where success is between ~10% and ~90%
    for p in later:
        prob = 1.0 / (1.0 + math.exp(-SLOPE * math.log(p.n / true_n50(16))))
        assert 0.03 < prob < 0.97


def test_larger_d_waits_for_the_smaller_and_starts_from_its_extrapolation():
    points, statuses = design_round([LADDER], lambda _ladder: pd.DataFrame(
        columns=["case", "d", "n", "seed", "trial", "success_ergodic"]), 11, RULE)
    assert {p.d for p in points} == {16}  # only the smallest d starts
    assert sorted(p.n for p in points) == sorted(
        max(1, round(RULE.first_n_over_d * 16 * f)) for f in RULE.spread)
    # two smaller d known: the guess is the power law through them
    known = {16: 100.0, 32: 300.0}
    n = next_points(
        LADDER,
        outcomes=lambda d: ((np.array([50.0, 100, 200]), np.array([False, True, True]))
                            if d == 16 else (np.array([150.0, 300, 600]),
                                             np.array([False, True, True])) if d == 32
                            else (np.zeros(0), np.zeros(0, dtype=bool))),
        own_points=lambda d: 1 if d in known else 0,
        base_seed=0, rule=DesignRule(target_ci=10.0, n_boot=100))[0]
    at64 = sorted(p.n for p in n if p.d == 64)
    assert at64, "d = 64 should begin once 16 and 32 are identified"
    assert min(at64) > 300  # beyond the previous n50: the guess extrapolates upwards


def test_no_success_yet_moves_up_and_no_failure_moves_down():
    up = assess(np.array([10.0, 20, 40]), np.zeros(3, dtype=bool), 3, RULE)
    down = assess(np.array([10.0, 20, 40]), np.ones(3, dtype=bool), 3, RULE)
    assert up.direction == 1 and not up.identified and not up.done
    assert down.direction == -1 and not down.done
    points, _ = next_points(
        Ladder("toy", "success_ergodic", (16,)),
        outcomes=lambda d: (np.array([10.0, 20, 40]), np.zeros(3, dtype=bool)),
        own_points=lambda d: 1, base_seed=0, rule=RULE)
    assert sorted(p.n for p in points) == [80, 160]


def test_replaying_the_stored_rows_gives_the_same_points():
    rows, history, _ = run_design(LADDER)
    again_rows, again, _ = run_design(LADDER)
    assert [[(p.d, p.n, p.seed) for p in points] for points in history] == \
        [[(p.d, p.n, p.seed) for p in points] for points in again]
    pd.testing.assert_frame_equal(rows, again_rows)
    # resume after round 3: the rows of rounds 0-2 decide round 3 as before
    stored = simulate([p for points in history[:3] for p in points])
    resumed, _ = design_round([LADDER], lambda _ladder: stored, 11, RULE)
    assert [(p.d, p.n, p.seed) for p in resumed] == [(p.d, p.n, p.seed) for p in history[3]]


def test_every_point_has_its_own_seed():
    _, history, _ = run_design(LADDER)
    seeds = [p.seed for points in history for p in points]
    assert len(seeds) == len(set(seeds))
    assert point_seed(1, LADDER, 16, 0) == point_seed(1, LADDER, 16, 0)
    assert point_seed(1, LADDER, 16, 0) != point_seed(2, LADDER, 16, 0)


def test_budget_ends_a_threshold_that_cannot_reach_its_target():
    rule = DesignRule(trials_per_point=10, target_ci=0.001, max_trials=120, n_boot=100)
    _, _, statuses = run_design(Ladder("toy", "success_ergodic", (16,)), rule)
    status = statuses[("toy/success_ergodic", 16)]
    assert status.done and status.own_trials >= 120 and status.ci_width > 0.001


@pytest.mark.parametrize("table, field", [
    ({"quantiles": [0.0, 0.5]}, "quantiles"),
    ({"trials_per_point": 0}, "trials_per_point"),
    ({"target_ci": -1}, "target_ci"),
    ({"max_trials": 5, "trials_per_point": 10}, "max_trials"),
    ({"spread": []}, "spread"),
    ({"confidence": 1.5}, "confidence"),
    ({"bogus": 1}, "bogus"),
])
def test_bad_rule_is_one_line_naming_the_field(table, field):
    with pytest.raises(ConfigError) as err:
        rule_from_profile(table)
    message = str(err.value)
    assert f"design.{field}" in message and "allowed" in message and "\n" not in message
