"""The trial-wise path runs without torch (issue 21, item 5): a CPU run or one-cell sweep that the
trial-wise engine takes never imports torch, and the numpy problem builder it uses gives the
torch builder's arrays, hence the same rows."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import stelab
from stelab.engine.budget import select_engine
from stelab.engine.host_problem import build_host_problem, builds_on_host
from stelab.engine.output import final_loss
from stelab.engine.problem import build_problem
from stelab.engine_registry import COST_FLOORS, get_engine

TINY = """
[model]
d = {d}
[train]
n = {n}
steps = 40
[run]
trials = 3
seed = 1
device = "cpu"
"""

#: runs the CLI in this interpreter and reports, at exit, which heavy modules it loaded (torch,
#: the batched engines and the curve fits: a run needs none of them)
PROBE = textwrap.dedent("""
    import atexit, sys
    atexit.register(lambda: print("LOADED", sorted(m for m in ("torch", "stelab.engine.dense",
        "stelab.engine.incremental", "stelab.analysis.threshold")
        if m in sys.modules)))
    from stelab.cli import main
    sys.argv = ["stelab", *sys.argv[1:]]
    main()
""")


def _cli_loads(tmp_path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()[-1]


@pytest.mark.parametrize("n", [64, 12])
def test_a_tiny_trialwise_run_never_imports_torch(tmp_path, n):
    """n = 64: every trial reaches w*; n = 12: none does (non-zero residuals at the end, whose
    loss is still computed without torch)."""
    import pandas as pd

    (tmp_path / "run.toml").write_text(TINY.format(d=16, n=n))
    assert _cli_loads(tmp_path, "run", "run.toml", "--out", "out") == "LOADED []"
    rows = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert rows["success_last"].all() == (n == 64) and (rows["final_loss"] > 0).any() == (n == 12)


def test_a_tiny_one_cell_sweep_never_imports_torch(tmp_path):
    (tmp_path / "sweep.toml").write_text(TINY.format(d="[16]", n=12) + '[sweep]\naxes = ["model.d"]\n')
    assert _cli_loads(tmp_path, "sweep", "sweep.toml", "--out", "out") == "LOADED []"
    assert (tmp_path / "out" / "results.parquet").exists()


CASES = [
    dict(d=32, n=200, m=1, activation="sign", ste="identity", noise=("none", 0.0)),
    dict(d=40, n=150, m=4, activation="sign", ste="hardtanh", noise=("flip", 0.1)),
    dict(d=24, n=300, m=3, activation="step", ste="relu", noise=("gaussian", 0.2)),
    dict(d=64, n=100, m=2, activation="step", ste="clipped_relu", noise=("flip", 0.05)),
]


def _config(case: dict, init: str = "small") -> stelab.Config:
    return stelab.parse_config({
        "model": {"d": case["d"], "m": case["m"], "activation": case["activation"]},
        "noise": {"kind": case["noise"][0], "level": case["noise"][1]},
        "train": {"n": case["n"], "steps": 50, "ste": case["ste"], "init": init},
        "record": {"checkpoints": [10, 25]},
        "run": {"trials": 5, "device": "cpu", "seed": 7},
    })


@pytest.mark.parametrize("case", CASES)
def test_the_host_builder_gives_the_torch_builders_arrays(case):
    cfg = _config(case)
    assert builds_on_host(cfg)
    trials = [0, 3, 4]
    host = build_host_problem(cfg, trials)
    ref = build_problem(cfg, trials, torch.device("cpu"))
    for name in ("Z", "y", "teacher", "u0"):
        a, b = getattr(host, name), getattr(ref, name).numpy()
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    # the bound: another summation order may change its last bits, never more
    np.testing.assert_allclose(host.bound, ref.bound.numpy(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("case", CASES)
def test_host_and_torch_built_chunks_give_the_same_rows(case):
    from stelab.engine.trialwise import run_trialwise

    cfg = _config(case, init="zero" if case["m"] == 2 else "small")
    trials = [1, 2, 5, 6]
    host = run_trialwise(build_host_problem(cfg, trials), cfg)
    ref = run_trialwise(build_problem(cfg, trials, torch.device("cpu")), cfg)
    for field in ("hamming", "ergodic_hamming", "final_loss", "final_u", "ergodic_at"):
        assert np.array_equal(getattr(host, field), getattr(ref, field)), field


def test_final_loss_is_torchs_value_whether_or_not_it_needs_torch():
    rng = np.random.default_rng(3)
    for m in (1, 2, 3, 4, 8):
        k = rng.integers(-2 * m, 2 * m + 1, size=(4, 777)).astype(np.float32)
        for residual in (k / np.float32(m), k / np.float32(m) + np.float32(0.01) *
                         rng.standard_normal(k.shape).astype(np.float32), 0 * k):
            residual = residual.astype(np.float32)
            expected = (0.5 * torch.from_numpy(residual).square().mean(dim=1)).numpy()
            assert np.array_equal(final_loss(residual), expected.astype(np.float64))


def test_auto_selection_loads_no_engine_that_cannot_win():
    code = ("import sys, stelab\nfrom stelab.engine.budget import select_engine\n"
            "cfg = stelab.parse_config({'model': {'d': 16}, 'train': {'n': 64, 'steps': 5},"
            " 'run': {'device': 'cpu'}})\n"
            "print(select_engine(cfg), sorted(m for m in ('torch', 'stelab.engine.dense',"
            " 'stelab.engine.incremental') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.split() == ["trialwise", "[]"], out.stderr[-2000:]


@pytest.mark.parametrize("case", CASES)
def test_no_builtin_engine_costs_less_than_its_floor(case):
    for cfg in (_config(case), _config({**case, "n": 40_000, "d": 512})):
        for name, floor in COST_FLOORS.items():
            assert get_engine(name).cost(cfg) >= floor, name
        assert select_engine(cfg) == min(
            (e for e in map(get_engine, COST_FLOORS) if e.unsupported(cfg) is None),
            key=lambda e: e.cost(cfg)).name
