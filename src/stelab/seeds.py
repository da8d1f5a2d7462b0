"""Per-trial random streams.

Trial k of a run with seed s draws each of its random quantities from its own stream,
``SeedSequence(s, spawn_key=(k, purpose))``: the same child that ``SeedSequence(s).spawn``
would give for trial k, split once more by purpose. A trial's result therefore does not
depend on which other trials run beside it, in which batch, process or machine, and changing
one part of the setup (say n) leaves the other streams (teacher, initialization) unchanged.
"""

from __future__ import annotations

import numpy as np

PURPOSES: dict[str, int] = {"teacher": 0, "inputs": 1, "noise": 2, "init": 3, "batches": 4}


def trial_seed_sequence(seed: int, trial: int, purpose: str) -> np.random.SeedSequence:
    """The SeedSequence of one trial's stream for ``purpose`` (a key of :data:`PURPOSES`)."""
    return np.random.SeedSequence(seed, spawn_key=(trial, PURPOSES[purpose]))


def trial_rng(seed: int, trial: int, purpose: str) -> np.random.Generator:
    """A numpy Generator (PCG64) on one trial's stream for ``purpose``."""
    return np.random.default_rng(trial_seed_sequence(seed, trial, purpose))
