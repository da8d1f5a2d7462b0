"""E4 non-Gaussian data (claim C4): every distribution x normalization x teacher balance."""

from __future__ import annotations

from typing import Any

from stelab.config import Config
from stelab.data import DISTRIBUTIONS
from stelab.experiments.profile import cell, sample_size, section


def distributions(spec: dict[str, Any]) -> list[str]:
    """The distributions of the profile; "all" means the whole registry."""
    chosen = spec.get("distributions", "all")
    return sorted(DISTRIBUTIONS) if chosen == "all" else list(chosen)


def build_cells(profile: dict[str, Any]) -> list[Config]:
    spec = section(profile, "e4")
    d = spec["d"]
    return [
        cell(
            profile,
            model={"d": d, "teacher_balance": balance},
            data={"distribution": dist, "normalization": norm},
            train={"n": sample_size(d, spec["n_over_d"]), "steps": spec["steps"]},
            run={"trials": spec["trials"]},
        )
        for dist in distributions(spec)
        for norm in spec["normalizations"]
        for balance in spec["teacher_balances"]
    ]
