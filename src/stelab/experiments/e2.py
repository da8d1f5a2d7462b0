"""E2 convergence: Hamming distance and loss vs iteration at several n/d, and ergodic vs
last-iterate success vs horizon T (from the recorded trajectories and ergodic checkpoints)."""

from __future__ import annotations

from typing import Any

from stelab.config import Config
from stelab.experiments.profile import cell, sample_size, section


def build_cells(profile: dict[str, Any]) -> list[Config]:
    spec = section(profile, "e2")
    d = spec["d"]
    return [
        cell(
            profile,
            model={"d": d},
            train={"n": sample_size(d, ratio), "steps": spec["steps"]},
            run={"trials": spec["trials"]},
            record={
                "trajectory": True,
                "loss_trajectory": True,
                "checkpoints": spec["checkpoints"],
            },
        )
        for ratio in spec["n_over_d"]
    ]
