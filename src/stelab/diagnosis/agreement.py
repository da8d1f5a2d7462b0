"""The check of the predictor against the engine: for each input distribution, the engine's
measured outcome (E4) next to :func:`~stelab.diagnosis.diagnose`'s prediction on an independent
sample (docs/diagnose.md reports the agreement; tests/test_diagnose.py asserts it)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stelab.config import NORMALIZATIONS, parse_config
from stelab.data import DISTRIBUTIONS
from stelab.diagnosis.prediction import diagnose
from stelab.diagnosis.reference import gaussian_n50
from stelab.engine import run_experiment

__all__ = ["engine_agreement"]


def engine_agreement(
    distributions: tuple[str, ...] | None = None,
    d: int = 32,
    n: int = 1000,
    steps: int = 500,
    trials: int = 16,
    teacher_balances: tuple[float, ...] = (0.5, 0.75),
    normalizations: tuple[str, ...] = NORMALIZATIONS,
    seed: int = 0,
) -> pd.DataFrame:
    """For each distribution of :data:`stelab.data.DISTRIBUTIONS`: the engine's measured
    outcome (E4: success rate of the last iterate over ``trials``; success = rate >= 0.5, the
    same notion as :func:`gaussian_n50`) next to :func:`diagnose`'s prediction on an independent
    sample of n rows of that distribution. One row per (distribution, balance, normalization).
    """
    names = tuple(DISTRIBUTIONS) if distributions is None else distributions
    n50 = gaussian_n50(d, steps)
    rows = []
    for k, name in enumerate(names):
        # the diagnosed sample comes from a stream the engine's trials never use
        sample_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(10_000 + k,)))
        sample = DISTRIBUTIONS[name].sample(sample_rng, (n, d))
        diagnosis = diagnose(
            sample, teacher_balances, normalizations, steps=steps, n50=n50, seed=seed
        )
        for balance in teacher_balances:
            for z in normalizations:
                cfg = parse_config(
                    {
                        "model": {"d": d, "teacher_balance": balance},
                        "data": {"distribution": name, "normalization": z},
                        "train": {"n": n, "steps": steps},
                        "run": {"trials": trials, "seed": seed, "device": "cpu"},
                    }
                )
                rate = float(run_experiment(cfg)["success_last"].mean())
                check = diagnosis.check(z, balance)
                rows.append(
                    {
                        "distribution": name,
                        "teacher_balance": balance,
                        "normalization": z,
                        "success_rate": rate,
                        "measured_healthy": rate >= 0.5,
                        "n_eff": check.n_eff,
                        "gaussian_n50": n50,
                        "predicted_healthy": check.predicted_healthy,
                        "agree": (rate >= 0.5) == check.predicted_healthy,
                    }
                )
    return pd.DataFrame(rows)
