"""The scale profile's plan: the trials, worker-seconds and peak memory each table is expected to
take, printed before anything runs (and stored in the manifest, beside what the run then took).

The adaptive design chooses its n from the rows, so the plan projects them from the profile's
``[scale.plan]``, which only the plan reads (the design never does):

* the n50 of each notion, ``a * d^alpha`` (``ergodic`` / ``last`` = {a, alpha}), and the slope
  ``slope`` of the success curve in ln n;
* trials at each (ladder, d): the first round, then rounds until the CI of ln n50 reaches the
  target, 2 z / (b sqrt(N i)) <= target_ci, with i = mean q (1 - q) over the rule's quantiles
  (a trial at the success quantile q carries Fisher information b^2 q (1 - q) on ln n50),
  at most ``max_trials``;
* seconds per trial, ``m n d (data_ns + step_ns * steps run) 1e-9`` (``[scale.plan.cost]``),
  with steps run = T unless the last iterate has converged, which the run then stops early:
  T (1 - P_last(n)) with P_last the planned last-iterate success curve;
* peak memory: the engine's estimate for one trial at the largest n of the first round
  (:func:`stelab.engine.run.estimate_peak_bytes`).
"""

from __future__ import annotations

import math
from typing import Any

from stelab.adaptive import DesignRule, Ladder
from stelab.config import Config
from stelab.errors import ConfigError
from stelab.experiments.profile import cell, section
from stelab.experiments.registry import Estimate

Z95 = 1.959963984540054


def _planning(spec: dict[str, Any]) -> dict[str, Any]:
    try:
        plan = spec["plan"]
        return {"ergodic": plan["ergodic"], "last": plan["last"], "slope": float(plan["slope"]),
                "data_ns": float(plan["cost"]["data_ns"]),
                "step_ns": float(plan["cost"]["step_ns"])}
    except KeyError as err:
        raise ConfigError(f"scale.plan: missing key {err.args[0]!r}; see "
                          "src/stelab/configs/reproduce_scale.toml") from None


def planned_n50(law: dict[str, float], d: int) -> float:
    return float(law["a"]) * d ** float(law["alpha"])


def _p_last(plan: dict[str, Any], n: float, d: int) -> float:
    """The planned last-iterate success probability at n (logistic in ln n)."""
    eta = plan["slope"] * (math.log(n) - math.log(planned_n50(plan["last"], d)))
    return 1.0 / (1.0 + math.exp(-max(min(eta, 50.0), -50.0)))


def planned_trials(rule: DesignRule, slope: float) -> int:
    """Trials the design spends at one (ladder, d) under the planned slope."""
    info = sum(q * (1.0 - q) for q in rule.quantiles) / len(rule.quantiles)
    needed = (2.0 * Z95 / (rule.target_ci * slope)) ** 2 / info
    first = len(rule.spread) * rule.trials_per_point
    per_round = len(rule.quantiles) * rule.trials_per_point
    rounds = max(0, math.ceil((needed - first) / per_round))
    return min(first + rounds * per_round, max(rule.max_trials, first))


def trial_seconds(plan: dict[str, Any], m: int, d: int, n: float, steps: int) -> float:
    """Planned worker-seconds of one trial."""
    run = steps * (1.0 - _p_last(plan, n, d))
    return m * n * d * (plan["data_ns"] + plan["step_ns"] * run) * 1e-9


def _peak_bytes(cfg: Config) -> int:
    """The engine's peak estimate of one trial of ``cfg``."""
    from stelab.engine.run import estimate_peak_bytes  # the engine: imported only to plan

    return estimate_peak_bytes(cfg, 1)


def _peak(profile: dict[str, Any], case: dict[str, Any], d: int, n: int, steps: int) -> int:
    return _peak_bytes(cell(profile, model={**case.get("model", {}), "d": d},
                            train={**case.get("train", {}), "n": n, "steps": steps},
                            run={"trials": 1}))


def estimate_ladders(profile: dict[str, Any], table: str, ladders: list[Ladder],
                     rule: DesignRule, cases: dict[str, dict[str, Any]], steps: int) -> Estimate:
    """The Estimate of a table of ladders measured by ``rule`` (module docstring)."""
    plan = _planning(section(profile, "scale"))
    trials, seconds, peak = 0, 0.0, 0
    for ladder in ladders:
        law = plan["ergodic" if ladder.success == "success_ergodic" else "last"]
        m = int(cases[ladder.case].get("model", {}).get("m", 1))
        for d in ladder.d:
            n50 = planned_n50(law, d)
            k = planned_trials(rule, plan["slope"])
            trials += k
            seconds += k * trial_seconds(plan, m, d, n50, steps)
            top = max(1, round(n50 * max(rule.spread)))
            peak = max(peak, _peak(profile, cases[ladder.case], d, top, steps))
    return Estimate(table, trials, seconds, peak)


def estimate_grid(profile: dict[str, Any], table: str, cells: list[Config]) -> Estimate:
    """The Estimate of a fixed grid of cells."""
    plan = _planning(section(profile, "scale"))
    trials = sum(c.run.trials for c in cells)
    seconds = sum(c.run.trials * trial_seconds(plan, c.model.m, c.model.d, c.train.n,
                                               c.train.steps) for c in cells)
    largest = max(cells, key=lambda c: c.train.n * c.model.m * c.model.d)
    return Estimate(table, trials, seconds, _peak_bytes(largest))
