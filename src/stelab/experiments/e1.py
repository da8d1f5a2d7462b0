"""E1 sample complexity (claims C1, C2): success probability vs n for several d.

Cells: for every case (m, activation, surrogate) and every d, n = r d for r in ``n_over_d``.
The ergodic average is also evaluated at the ``checkpoints`` horizons, so thresholds at several
horizons T come from one run. The ``horizon`` table adds step size c x n at one d (C2: does the
last-iterate threshold move with c or T?).
"""

from __future__ import annotations

from typing import Any

from stelab.config import Config
from stelab.experiments.profile import cell, sample_size, section


def _grid_cells(
    profile: dict[str, Any], spec: dict[str, Any], case: dict[str, Any]
) -> list[Config]:
    cells = []
    for d in case["d"]:
        for ratio in spec["n_over_d"]:
            cells.append(
                cell(
                    profile,
                    model={**case.get("model", {}), "d": d},
                    train={
                        **case.get("train", {}),
                        "n": sample_size(d, ratio),
                        "steps": spec["steps"],
                    },
                    run={"trials": spec["trials"]},
                    record={"trajectory": True, "checkpoints": spec.get("checkpoints", [])},
                )
            )
    return cells


def build_cells(profile: dict[str, Any]) -> list[Config]:
    """The E1 grid: every case x d x n."""
    spec = section(profile, "e1")
    return [c for case in spec["case"] for c in _grid_cells(profile, spec, case)]


def build_horizon_cells(profile: dict[str, Any]) -> list[Config]:
    """The C2 axes at one d: step size x n, with checkpoints over the horizon."""
    spec = section(profile, "e1")["horizon"]
    d = spec["d"]
    return [
        cell(
            profile,
            model={"d": d},
            train={"n": sample_size(d, ratio), "steps": spec["steps"], "step_size": c},
            run={"trials": spec["trials"]},
            record={"trajectory": True, "checkpoints": spec["checkpoints"]},
        )
        for c in spec["step_size"]
        for ratio in spec["n_over_d"]
    ]
