"""Scale: thresholds beyond the paper's d by the adaptive design, and which law they follow.

Tables:

* ``scale``: for every ``[[scale.case]]``, the ergodic thresholds at ``ergodic_d`` and the
  last-iterate thresholds at ``last_d`` (horizon ``steps``), each a ladder of the adaptive design
  (:mod:`stelab.adaptive`; its rule is ``[scale.design]``);
* ``scale_horizon``: the last-iterate thresholds of ``[scale.horizon]``'s case at its ``d``, one
  ladder per checkpoint horizon T (the cells run the largest T and the outcomes at every T are
  read from the same trials, :func:`stelab.analysis.at_checkpoints`);
* ``scale_fixed``: the fixed n/d grid of E1 at ``[scale.fixed]``'s d, to measure what the
  design saves for the same CI width.

Derived tables and the report section are in :mod:`stelab.experiments.scale_derive` and
:mod:`stelab.experiments.scale_report`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from stelab import analysis
from stelab.adaptive import DesignRule, Ladder, Point, design_round, rule_from_profile
from stelab.config import Config
from stelab.errors import ConfigError
from stelab.experiments.cases import label_cases
from stelab.experiments.e1 import grid_cells
from stelab.experiments.profile import cell, section
from stelab.experiments.registry import Experiment, Table
from stelab.experiments.scale_derive import PROVIDES, derive, figures
from stelab.experiments.scale_plan import Estimate, estimate_grid, estimate_ladders
from stelab.experiments.scale_report import report_section

NOTIONS = {"ergodic_d": "success_ergodic", "last_d": "success_last"}


def _spec(profile: dict[str, Any]) -> dict[str, Any]:
    return section(profile, "scale")


def main_rule(spec: dict[str, Any]) -> DesignRule:
    """The design rule of the ``scale`` table: ``[scale.design]``."""
    return rule_from_profile(spec.get("design", {}))


def horizon_rule(spec: dict[str, Any]) -> DesignRule:
    """The rule of ``scale_horizon``: ``[scale.horizon.design]`` over ``[scale.design]`` (the
    horizon effect needs less precision than the exponents)."""
    return rule_from_profile({**spec.get("design", {}), **spec["horizon"].get("design", {})})


def _case(spec: dict[str, Any], name: str) -> dict[str, Any]:
    for case in spec["case"]:
        if case["name"] == name:
            return case
    names = ", ".join(c["name"] for c in spec["case"])
    raise ConfigError(f"scale: no [[scale.case]] named {name!r}; allowed: {names}")


def main_ladders(spec: dict[str, Any]) -> list[Ladder]:
    """The ergodic and last-iterate ladders of every case."""
    return [Ladder(case["name"], success, tuple(case[key]))
            for case in spec["case"] for key, success in NOTIONS.items() if case.get(key)]


def horizon_ladders(spec: dict[str, Any]) -> list[Ladder]:
    """One last-iterate ladder per checkpoint horizon of ``[scale.horizon]``."""
    horizon = spec["horizon"]
    return [Ladder(horizon["case"], "success_last", tuple(horizon["d"]), int(t))
            for t in horizon["checkpoints"]]


def _point_cell(profile: dict[str, Any], case: dict[str, Any], point: Point, steps: int,
                checkpoints: list[int]) -> Config:
    return cell(
        profile,
        model={**case.get("model", {}), "d": point.d},
        train={**case.get("train", {}), "n": point.n, "steps": steps},
        run={"trials": point.trials, "seed": point.seed},
        record={"trajectory": bool(checkpoints), "checkpoints": checkpoints},
    )


def label_rows(profile: dict[str, Any], rows: pd.DataFrame) -> pd.DataFrame:
    """The profile's scale case names in a ``case`` column."""
    return label_cases(rows, _spec(profile)["case"])


def _rows_of(rows: pd.DataFrame, ladder: Ladder) -> pd.DataFrame:
    """The rows of ``ladder``'s case, read at its horizon where it has one."""
    if len(rows) == 0:
        return rows
    own = rows[rows["case"] == ladder.case]
    if ladder.horizon is None or len(own) == 0:
        return own
    at = analysis.at_checkpoints(own)
    return at[at["steps"] == ladder.horizon]


def _round(profile: dict[str, Any], rows: pd.DataFrame, ladders: list[Ladder], rule: DesignRule,
           steps: int, checkpoints: list[int]) -> list[Config]:
    spec = _spec(profile)
    rows = label_rows(profile, rows) if len(rows) else rows
    base_seed = int(profile.get("base", {}).get("run", {}).get("seed", 0))
    points, _ = design_round(ladders, lambda ladder: _rows_of(rows, ladder), base_seed, rule)
    return [_point_cell(profile, _case(spec, p.ladder.case), p, steps, checkpoints)
            for p in points]


def design_main(profile: dict[str, Any], rows: pd.DataFrame) -> list[Config]:
    """The next round of the ``scale`` table (every case's ladders at ``[scale] steps``)."""
    spec = _spec(profile)
    return _round(profile, rows, main_ladders(spec), main_rule(spec), int(spec["steps"]), [])


def design_horizon(profile: dict[str, Any], rows: pd.DataFrame) -> list[Config]:
    """The next round of the ``scale_horizon`` table (cells run the largest checkpoint)."""
    spec = _spec(profile)
    checkpoints = sorted(int(t) for t in spec["horizon"]["checkpoints"])
    return _round(profile, rows, horizon_ladders(spec), horizon_rule(spec), checkpoints[-1],
                  checkpoints)


def fixed_cells(profile: dict[str, Any]) -> list[Config]:
    """The fixed grid (E1's layout) that the design is compared with."""
    spec = _spec(profile)
    fixed = spec["fixed"]
    case = {**_case(spec, fixed["case"]), "d": fixed["d"]}
    grid = {"n_over_d": fixed["n_over_d"], "steps": spec["steps"], "trials": fixed["trials"]}
    return grid_cells(profile, grid, case)


def _cases(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {case["name"]: case for case in spec["case"]}


def estimate_main(profile: dict[str, Any]) -> Estimate:
    spec = _spec(profile)
    return estimate_ladders(profile, "scale", main_ladders(spec), main_rule(spec), _cases(spec),
                            int(spec["steps"]))


def estimate_horizon(profile: dict[str, Any]) -> Estimate:
    spec = _spec(profile)
    steps = max(int(t) for t in spec["horizon"]["checkpoints"])
    return estimate_ladders(profile, "scale_horizon", horizon_ladders(spec), horizon_rule(spec),
                            _cases(spec), steps)


def estimate_fixed(profile: dict[str, Any]) -> Estimate:
    return estimate_grid(profile, "scale_fixed", fixed_cells(profile))


EXPERIMENT = Experiment(
    name="scale",
    title="Scale: thresholds to d = 4096 by an adaptive design, and the law they follow",
    profile_table="scale",
    tables=(
        Table("scale", "Scale: ergodic and last-iterate thresholds, adaptive design",
              design=design_main, label=label_rows, estimate=estimate_main),
        Table("scale_horizon", "Scale: last-iterate thresholds at several horizons T",
              design=design_horizon, label=label_rows, estimate=estimate_horizon,
              wanted=lambda profile: "horizon" in _spec(profile), optional=True),
        Table("scale_fixed", "Scale: the fixed n/d grid the design is compared with",
              cells=fixed_cells, label=label_rows, estimate=estimate_fixed,
              wanted=lambda profile: "fixed" in _spec(profile), optional=True),
    ),
    derive=derive,
    provides=PROVIDES,
    figures=figures,
    section=report_section,
)
