"""Adaptive threshold design: where to put the next trials of a threshold measurement.

A fixed grid of n/d spends most of its trials where success is 0 or 1, which say little about
n50. This design measures a *ladder*, the thresholds of one success notion over increasing d,
in rounds:

* the first round at a d puts ``spread`` points around a guess: the previous d's n50 times
  (d / d_prev)^alpha, with alpha the local exponent of the two previous d's (the rule's
  ``first_exponent`` while only one is known; ``first_n_over_d`` * d at the smallest d);
* each later round fits P(success | n) = F(a + b ln n) (Firth-penalized logit,
  :func:`stelab.analysis.fit_threshold`) to every trial at that d and puts one point at each
  fitted ``quantiles`` of success (n20 ... n80 by default), where a trial says most about n50;
  while n50 is not bracketed (no success, or no failure yet) it moves beyond the largest
  (smallest) n tried, by factors of 2 and 4;
* a d is done when the ``confidence`` bootstrap CI of ln n50 is at most ``target_ci`` wide, or
  when the ladder has spent ``max_trials`` there.

Every point is a cell of ``trials_per_point`` trials with its own seed
(:func:`point_seed`: a hash of the ladder, d and the point's index), so that trials of
different points are independent; the fixed grid instead shares each trial's streams across n
(common random numbers). The choice is a pure function of the rule and the rows: replaying the
rounds on stored rows gives the same points, so an interrupted run resumes to identical tables
(:func:`stelab.reproduction.run_tables` replays them).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stelab.analysis.threshold import fit_threshold
from stelab.errors import ConfigError

__all__ = ["DesignRule", "Ladder", "Point", "Status", "assess", "next_points", "point_seed",
           "rule_from_profile"]


@dataclass(frozen=True)
class DesignRule:
    """How rounds are placed and when a threshold is done (module docstring)."""

    quantiles: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
    trials_per_point: int = 25
    target_ci: float = 0.05  # width of the CI of ln n50 (0.05 = +-2.5% on n50)
    max_trials: int = 800  # per (ladder, d)
    spread: tuple[float, ...] = (0.5, 0.71, 1.0, 1.41, 2.0)  # first round, times the guess
    first_n_over_d: float = 1.0  # the guess at a ladder's smallest d, over d
    first_exponent: float = 1.0  # alpha of the second d's guess
    n_boot: int = 400
    confidence: float = 0.95

    def __post_init__(self) -> None:
        checks = [
            ("quantiles", all(0.0 < q < 1.0 for q in self.quantiles) and bool(self.quantiles),
             "values in (0, 1)"),
            ("trials_per_point", self.trials_per_point >= 1, "an integer >= 1"),
            ("target_ci", self.target_ci > 0, "a number > 0"),
            ("max_trials", self.max_trials >= self.trials_per_point,
             "an integer >= trials_per_point"),
            ("spread", all(f > 0 for f in self.spread) and bool(self.spread), "factors > 0"),
            ("first_n_over_d", self.first_n_over_d > 0, "a number > 0"),
            ("n_boot", self.n_boot >= 100, "an integer >= 100"),
            ("confidence", 0.0 < self.confidence < 1.0, "a number in (0, 1)"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ConfigError(f"design.{name}: {getattr(self, name)!r} is not allowed; "
                                  f"allowed: {allowed}")


def rule_from_profile(table: dict) -> DesignRule:
    """The DesignRule of a profile's ``design`` table (keys as the fields; others refused)."""
    allowed = set(DesignRule.__dataclass_fields__)
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"design.{unknown[0]}: unknown key; allowed: "
                          f"{', '.join(sorted(allowed))}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    return DesignRule(**values)


@dataclass(frozen=True)
class Ladder:
    """The thresholds of one success notion over increasing d, for one case.

    ``horizon``: the checkpoint T whose outcomes are read (None: the run's own T).
    """

    case: str
    success: str
    d: tuple[int, ...]
    horizon: int | None = None

    @property
    def key(self) -> str:
        return f"{self.case}/{self.success}" + (f"/T{self.horizon}" if self.horizon else "")


@dataclass(frozen=True)
class Status:
    """Where one (ladder, d) stands: its n50 fit and whether it is done."""

    n50: float
    ci_width: float  # of ln n50; nan when not identified
    trials: int  # every trial at this d (any ladder's)
    own_trials: int  # this ladder's trials at this d
    identified: bool
    done: bool
    direction: int  # +1: no success yet (go up), -1: no failure yet (go down), 0: bracketed


@dataclass(frozen=True)
class Point:
    """One cell of the design: ``trials`` trials at sample size ``n`` with seed ``seed``."""

    ladder: Ladder
    d: int
    n: int
    seed: int
    trials: int


def point_seed(base_seed: int, ladder: Ladder, d: int, index: int) -> int:
    """The run seed of the ``index``-th point of ``ladder`` at ``d`` (a 62-bit hash)."""
    text = f"{base_seed}/{ladder.key}/{d}/{index}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") >> 2


def assess(n: np.ndarray, success: np.ndarray, own_trials: int, rule: DesignRule) -> Status:
    """The Status of one (ladder, d) from its trials' sample sizes and outcomes."""
    n = np.asarray(n, dtype=float)
    success = np.asarray(success, dtype=bool)
    if n.size == 0:
        return Status(math.nan, math.nan, 0, own_trials, False, False, 0)
    fit = fit_threshold(n, success, n_boot=rule.n_boot, confidence=rule.confidence,
                        seed=int(n.size))
    width = (math.log(fit.ci_high) - math.log(fit.ci_low)
             if fit.identified and fit.ci_low > 0 and math.isfinite(fit.ci_high) else math.nan)
    direction = 1 if not success.any() else -1 if success.all() else 0
    if direction == 0 and not fit.identified:  # fitted n50 outside the n tried
        direction = 1 if fit.n50_fit > n.max() else -1
    spent = own_trials >= rule.max_trials
    done = spent or (math.isfinite(width) and width <= rule.target_ci)
    return Status(fit.n50 if fit.identified else math.nan, width, int(n.size), own_trials,
                  fit.identified, done, direction)


def _guess(ladder: Ladder, d: int, known: dict[int, float], rule: DesignRule) -> float:
    """n50 expected at ``d`` from the n50 of the ladder's smaller d (``known``: d -> n50)."""
    below = sorted(k for k in known if k < d)
    if not below:
        return rule.first_n_over_d * d
    d1 = below[-1]
    alpha = rule.first_exponent
    if len(below) >= 2:
        d0 = below[-2]
        alpha = math.log(known[d1] / known[d0]) / math.log(d1 / d0)
    return known[d1] * (d / d1) ** alpha


def _fitted_quantiles(n: np.ndarray, success: np.ndarray, quantiles: Sequence[float]
                      ) -> list[float]:
    """The n at which the fitted success curve (one fit, no bootstrap) reaches each
    probability q of ``quantiles`` (logit)."""
    fit = fit_threshold(n, success, n_boot=0)
    return [math.exp((math.log(q / (1.0 - q)) - fit.intercept) / fit.slope) for q in quantiles]


def _round_sizes(status: Status, n: np.ndarray, success: np.ndarray, guess: float,
                 rule: DesignRule) -> list[float]:
    """The sample sizes of the next round at one d (before rounding)."""
    if status.own_trials == 0:
        return [guess * f for f in rule.spread]
    if status.direction > 0:
        return [n.max() * 2.0, n.max() * 4.0]
    if status.direction < 0:
        return [n.min() / 2.0, n.min() / 4.0]
    # within a factor 4 of the n tried: a flat fit must not send a round far away
    return [min(max(size, n.min() / 4.0), n.max() * 4.0)
            for size in _fitted_quantiles(n, success, rule.quantiles)]


def next_points(
    ladder: Ladder,
    outcomes: Callable[[int], tuple[np.ndarray, np.ndarray]],
    own_points: Callable[[int], int],
    base_seed: int,
    rule: DesignRule,
) -> tuple[list[Point], dict[int, Status]]:
    """The next round of ``ladder``: a list of points (empty when every d is done or waits for a
    smaller d), and the Status of every d begun.

    ``outcomes(d)`` gives the sample sizes and outcomes (this ladder's success notion) of every
    trial at d; ``own_points(d)`` how many of the ladder's points are stored at d. A d begins
    once the next smaller d of the ladder has an identified n50.
    """
    points: list[Point] = []
    statuses: dict[int, Status] = {}
    known: dict[int, float] = {}
    for d in sorted(ladder.d):
        n, success = outcomes(d)
        placed = own_points(d)
        status = assess(n, success, placed * rule.trials_per_point, rule)
        statuses[d] = status
        if not status.done:
            sizes = _round_sizes(status, n, success, _guess(ladder, d, known, rule), rule)
            for i, size in enumerate(sizes):
                seed = point_seed(base_seed, ladder, d, placed + i)
                points.append(Point(ladder, d, max(1, round(size)), seed, rule.trials_per_point))
        if not status.identified:
            break  # the larger d wait for this one's n50
        known[d] = status.n50
    return points, statuses


def stored_points(ladder: Ladder, d: int, seeds: set[int], base_seed: int) -> int:
    """How many of ``ladder``'s points at ``d`` are among the stored run ``seeds`` (the points
    are numbered 0, 1, ... and each has its own seed, :func:`point_seed`)."""
    count = 0
    while point_seed(base_seed, ladder, d, count) in seeds:
        count += 1
    return count


def ladder_outcomes(rows: pd.DataFrame, ladder: Ladder, d: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Sample sizes and outcomes of ``ladder``'s notion among ``rows`` at ``d`` (the rows of its
    case, already read at the ladder's horizon where it has one)."""
    at = rows[rows["d"] == d] if len(rows) else rows
    if len(at) == 0:
        return np.zeros(0), np.zeros(0, dtype=bool)
    return at["n"].to_numpy(dtype=float), at[ladder.success].to_numpy(dtype=bool)


def design_round(
    ladders: Sequence[Ladder],
    rows_of: Callable[[Ladder], pd.DataFrame],
    base_seed: int,
    rule: DesignRule,
) -> tuple[list[Point], dict[tuple[str, int], Status]]:
    """The next round of every ladder: their points together (one sweep runs them), and the
    Status of every (ladder key, d) begun. ``rows_of(ladder)``: the stored rows of the ladder's
    case (read at its horizon), with ``d``, ``n``, ``seed`` and the success columns."""
    points: list[Point] = []
    statuses: dict[tuple[str, int], Status] = {}
    for ladder in ladders:
        rows = rows_of(ladder)
        seeds = set(rows["seed"].astype("int64").tolist()) if len(rows) else set()
        new, status = next_points(
            ladder,
            outcomes=lambda d, rows=rows, ladder=ladder: ladder_outcomes(rows, ladder, d),
            own_points=lambda d, seeds=seeds, ladder=ladder: stored_points(
                ladder, d, seeds, base_seed),
            base_seed=base_seed,
            rule=rule,
        )
        points += new
        statuses.update({(ladder.key, d): s for d, s in status.items()})
    return points, statuses
