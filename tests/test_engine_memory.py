"""Memory: the estimate before a run, the refusal of a run over budget, and the measured peak
(the resident-set high-water mark VmHWM of a fresh process; ru_maxrss would carry the peak of
the pytest process across fork and exec) against the data tensor size."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from stelab.cli import app
from stelab.engine import estimate_peak_bytes, plan_chunk_size, run_experiment
from stelab.errors import MemoryBudgetError
from stelab.normalize import normalize_inputs, normalize_inputs_, row_covariance
from tests.conftest import make_config

ROOT = Path(__file__).resolve().parents[1]


def test_a_trial_over_budget_is_refused_with_the_field_named():
    cfg = make_config(model={"d": 512}, train={"n": 8192, "steps": 5},
                      run={"trials": 2, "memory_budget_mb": 4})
    with pytest.raises(MemoryBudgetError, match=r"run\.memory_budget_mb: one trial needs"):
        run_experiment(cfg)


def test_cli_refuses_in_one_line(tmp_path):
    config = tmp_path / "big.toml"
    config.write_text(textwrap.dedent("""
        [model]
        d = 512
        [train]
        n = 8192
        steps = 5
        [run]
        trials = 2
        device = "cpu"
        memory_budget_mb = 4
    """))
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: run.memory_budget_mb: one trial needs")
    assert len(result.stderr.strip().splitlines()) == 1
    proc = subprocess.run([sys.executable, "-m", "stelab", "run", str(config), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert "run.memory_budget_mb" in proc.stderr and "Traceback" not in proc.stderr


def test_chunks_fit_the_budget_and_the_estimate_grows_with_the_chunk():
    cfg = make_config(model={"d": 128}, train={"n": 1024, "steps": 5},
                      run={"trials": 100, "memory_budget_mb": 20})
    size = plan_chunk_size(cfg, torch.device("cpu"))
    assert 1 <= size < 100
    assert estimate_peak_bytes(cfg, size) <= 20 * 2**20 < estimate_peak_bytes(cfg, size + 1)
    data = 4 * 1024 * 128
    assert estimate_peak_bytes(cfg, 10, "dense") >= 10 * data
    assert estimate_peak_bytes(cfg, 10, "incremental") > estimate_peak_bytes(cfg, 10, "dense")


def test_in_place_normalization_matches_the_copying_one():
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(2, 300, 2, 5, generator=g).exp()
    for method in ("center", "standardize", "whiten"):
        inplace = Z.clone()
        assert normalize_inputs_(inplace, method) is None
        assert torch.equal(inplace, normalize_inputs(Z, method))
    copy = Z.clone()
    cov = normalize_inputs_(copy, "batchnorm")
    assert torch.allclose(cov, row_covariance(Z))
    assert torch.allclose(copy.reshape(2, -1, 5).mean(dim=1), torch.zeros(2, 5), atol=1e-5)


PEAK_SCRIPT = textwrap.dedent("""
    import json, sys
    import torch
    from stelab.config import parse_config
    from stelab.engine import run_chunk
    from stelab.engine.kernels import exact_preactivations
    from stelab.engine.problem import build_problem

    def status(key):
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024

    engine, normalization = sys.argv[1], sys.argv[2]
    def config(d, n, trials, steps):
        return parse_config({"model": {"d": d}, "data": {"normalization": normalization},
                             "train": {"n": n, "steps": steps},
                             "run": {"trials": trials, "device": "cpu", "engine": engine}})
    small = config(16, 64, 2, 3)  # warm-up: load every kernel before the baseline
    run_chunk(small, build_problem(small, [0, 1], torch.device("cpu")), engine)
    # ... including the compiled exact fix-ups, which a small run may not need
    exact_preactivations(torch.ones(1, 4), torch.ones(1, 4))
    try:  # reset the high-water mark (Linux >= 4.0); else the peak of the warm-up stays in it
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    base = status("VmRSS")
    cfg = config(256, 4096, 24, 80)
    problem = build_problem(cfg, list(range(24)), torch.device("cpu"))
    data = problem.Z.numel() * problem.Z.element_size()
    run_chunk(cfg, problem, engine)
    print(json.dumps({"data": data, "extra": status("VmHWM") - base}))
""")


@pytest.mark.parametrize("engine,normalization", [("dense", "none"), ("incremental", "none"),
                                                  ("dense", "whiten"), ("incremental", "batchnorm")])
def test_peak_rss_is_at_most_one_and_a_half_data_tensors(engine, normalization):
    """Peak RSS of building and running a chunk (above the process's RSS before) <= 1.5 x the
    data tensor (96 MB here; fixed temporaries of a few MB are included in the 0.5)."""
    proc = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, engine, normalization],
                          capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin",
                               "OMP_NUM_THREADS": "2"})
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["extra"] <= 1.5 * out["data"], out["extra"] / out["data"]
