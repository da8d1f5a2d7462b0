"""The public API of ``stelab``: every name resolves, importing the package stays light, and the
README's example runs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import stelab

TINY = {
    "model": {"d": 8, "m": 1},
    "train": {"n": 64, "steps": 20},
    "run": {"trials": 3, "seed": 1, "device": "cpu"},
}


@pytest.mark.parametrize("name", [n for n in stelab.__all__ if n != "__version__"])
def test_every_public_name_resolves(name):
    value = getattr(stelab, name)
    assert value is getattr(stelab, name)
    assert not type(value).__name__ == "module", f"stelab.{name} must not be a module"


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        stelab.no_such_name  # noqa: B018


def test_importing_stelab_loads_no_numeric_stack():
    code = ("import sys, stelab; heavy = [m for m in ('torch', 'numba', 'pandas') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_run_experiment_and_run_sweep(tmp_path):
    cfg = stelab.parse_config(TINY)
    rows = stelab.run_experiment(cfg)
    assert list(rows["trial"]) == [0, 1, 2]
    grid = {**TINY, "train": {"n": [32, 64], "steps": 20}, "sweep": {"axes": ["train.n"]}}
    execution = stelab.Execution("serial", progress=False)
    swept = stelab.run_sweep(grid, tmp_path / "sweep", execution=execution)
    assert sorted(swept["n"].unique()) == [32, 64] and len(swept) == 6
    same = swept[swept["n"] == 64].sort_values("trial")
    assert np.array_equal(same["final_hamming"].to_numpy(), rows["final_hamming"].to_numpy())
    again = stelab.run_sweep(grid, tmp_path / "sweep", execution=execution)  # resumes
    assert len(again) == 6
