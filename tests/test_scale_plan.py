"""The scale profile's plan (stelab.experiments.scale_plan): trials from the CI target and the
slope, seconds from the cost model, both checked against their formulas."""

from __future__ import annotations

import math

import pytest

from stelab.adaptive import DesignRule
from stelab.errors import ConfigError
from stelab.experiments.scale_plan import _planning, planned_trials, trial_seconds

PLAN = {"ergodic": {"a": 1.0, "alpha": 1.0}, "last": {"a": 2.0, "alpha": 2.0}, "slope": 8.0,
        "data_ns": 5.0, "step_ns": 0.04}


def test_trials_follow_the_information_of_the_quantile_points():
    rule = DesignRule(quantiles=(0.5,), trials_per_point=10, spread=(1.0,), target_ci=0.1,
                      max_trials=10_000)
    # at q = 0.5 a trial carries b^2 / 4 on ln n50: N = (2 z / (w b))^2 * 4
    needed = (2 * 1.959963984540054 / (0.1 * 8.0)) ** 2 * 4
    assert planned_trials(rule, 8.0) == 10 * math.ceil(needed / 10)
    assert planned_trials(rule, 16.0) < planned_trials(rule, 8.0)  # steeper: fewer trials


def test_trials_stop_at_the_budget():
    rule = DesignRule(trials_per_point=10, target_ci=0.001, max_trials=200)
    assert planned_trials(rule, 8.0) == 200


def test_a_trial_far_above_the_last_iterate_threshold_stops_early():
    d = 100
    below = trial_seconds(PLAN, 1, d, 0.2 * 2.0 * d**2, 1000)  # P_last ~ 0: all T steps
    above = trial_seconds(PLAN, 1, d, 5.0 * 2.0 * d**2, 1000)  # P_last ~ 1: no steps
    n_below, n_above = 0.2 * 2.0 * d**2, 5.0 * 2.0 * d**2
    assert below == pytest.approx(n_below * d * (5.0 + 0.04 * 1000) * 1e-9, rel=1e-4)
    assert above == pytest.approx(n_above * d * 5.0 * 1e-9, rel=1e-4)


def test_a_profile_without_its_plan_is_one_line():
    with pytest.raises(ConfigError) as err:
        _planning({"plan": {"ergodic": {}, "last": {}, "slope": 9}})
    assert "scale.plan" in str(err.value) and "cost" in str(err.value)
