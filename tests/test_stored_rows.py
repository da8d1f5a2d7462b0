"""Stored-rows regression: the first trials of every cell of the quick profile's experiment tables
give the outcomes stored in ``snapshots/quick_rows.json``, bit for bit.

Rows are a pure function of (config, trial ids), so running trials 0 and 1 of each cell gives the
first rows of a quick reproduction. A refactor of the engine, the data or the experiments that
changes any outcome, trajectory or final loss fails here, naming the cell. When a change of the
rows is intended (say so in the commit), regenerate the snapshot with
``STELAB_UPDATE_SNAPSHOTS=1 python -m pytest tests/test_stored_rows.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from stelab.engine import run_experiment
from stelab.experiments import EXPERIMENTS
from stelab.experiments.profile import load_profile
from stelab.reproduction import selected

SNAPSHOT = Path(__file__).parent / "snapshots" / "quick_rows.json"
TRIALS = [0, 1]
OUTCOMES = ("success_last", "success_ergodic", "success_best", "absorbed", "occupation",
            "first_hit_step", "n_exits", "n_returns", "max_excursion", "min_hamming",
            "final_hamming", "ergodic_hamming")
ARRAYS = ("hamming_trajectory", "ergodic_hamming_at", "loss_trajectory")


def _digest(value) -> str:
    array = np.ascontiguousarray(np.asarray(value))
    return hashlib.sha256(str(array.dtype).encode() + array.tobytes()).hexdigest()[:16]


def _fingerprint(row) -> dict:
    record = {key: row[key].item() if hasattr(row[key], "item") else row[key] for key in OUTCOMES}
    record["final_loss"] = float(row["final_loss"]).hex()
    record.update({key: _digest(row[key]) for key in ARRAYS if key in row.index})
    return record


def quick_fingerprints() -> dict[str, list[dict]]:
    """Table/cell digest -> the fingerprint of trials 0 and 1 of every quick-profile cell."""
    profile = load_profile("quick")
    ran = {t.name for _exp, tables in selected(profile) for t in tables}
    prints = {}
    for name, (build, _) in EXPERIMENTS.items():
        if name not in ran:  # an experiment the quick profile does not run (scale)
            continue
        for cfg in build(profile):
            rows = run_experiment(cfg, trials=TRIALS)
            prints[f"{name}/{cfg.digest()}"] = [_fingerprint(row) for _, row in rows.iterrows()]
    return prints


def test_quick_profile_rows_are_unchanged():
    prints = quick_fingerprints()
    if os.environ.get("STELAB_UPDATE_SNAPSHOTS"):
        lines = [f"{json.dumps(key)}: {json.dumps(prints[key], sort_keys=True)}"
                 for key in sorted(prints)]
        SNAPSHOT.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    stored = json.loads(SNAPSHOT.read_text())
    missing = sorted(set(stored) - set(prints))
    assert not missing, f"{len(missing)} stored cells are no longer built, e.g. {missing[0]}"
    changed = [key for key in stored if prints[key] != stored[key]]
    if changed:
        key = changed[0]
        pytest.fail(f"{len(changed)} cells' rows changed, e.g. {key}: "
                    f"stored {stored[key]} now {prints[key]}")
