"""E3 recurrence (claim C3): flip label noise p; Hamming trajectories, returns to w* vs T,
return-time and excursion distributions, occupation vs p (p = 0 shows absorption)."""

from __future__ import annotations

from typing import Any

from stelab.config import Config
from stelab.experiments.profile import cell, sample_size, section


def build_cells(profile: dict[str, Any]) -> list[Config]:
    spec = section(profile, "e3")
    d = spec["d"]
    return [
        cell(
            profile,
            model={"d": d},
            noise={"kind": "flip" if p > 0 else "none", "level": p},
            train={"n": sample_size(d, spec["n_over_d"]), "steps": spec["steps"]},
            run={"trials": spec["trials"]},
            record={"trajectory": True},
        )
        for p in spec["noise_levels"]
    ]
