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
from tests.helpers import make_config

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


def test_the_planner_takes_the_column_layout_when_it_fits_and_falls_back_when_not():
    from stelab.engine.budget import plan_chunks

    # batch-norm statistics: the batched form of the incremental engine (uniform inputs: drawn
    # through a temporary, which the plan counts)
    cfg = make_config(model={"d": 256}, train={"n": 4096, "steps": 5}, run={"trials": 32},
                      data={"normalization": "batchnorm", "distribution": "uniform"})
    data = 4 * 4096 * 256
    roomy = plan_chunks(cfg, 200 * data)
    assert (roomy.engine, roomy.layout, roomy.size) == ("incremental", "columns", 32)
    assert 2 * data < roomy.per_trial < 2.2 * data  # with the d x d covariance
    # 7 data tensors: the build temporaries take 2.5, a trial with the copy ~2.2 (only 2 fit),
    # one with the cache ~1.25 (3 fit)
    tight = plan_chunks(cfg, 7 * data)
    assert (tight.layout, tight.size) == ("cache", 3)
    assert tight.peak_bytes() <= 7 * data < tight.peak_bytes(4)
    one = plan_chunks(cfg, 5 * data, trials=1)  # the copy fits with the build temporaries
    assert (one.layout, one.size) == ("columns", 1)
    # elsewhere the trial-wise form: one copy per worker thread, once per chunk
    trialwise = plan_chunks(make_config(model={"d": 256}, train={"n": 4096, "steps": 5},
                                        run={"trials": 32}), 200 * data)
    assert (trialwise.engine, trialwise.layout, trialwise.size) == ("trialwise", "trialwise", 32)
    assert trialwise.per_trial < 1.1 * data
    # Gaussian inputs are drawn in place: no build temporary, only the copies
    assert trialwise.fixed == torch.get_num_threads() * data
    forced = make_config(model={"d": 256}, train={"n": 4096, "steps": 5},
                         run={"trials": 32, "engine": "dense"})
    dense = plan_chunks(forced, 200 * data)
    trajectory = 4 * (5 + 1)  # T + 1 Hamming distances
    assert (dense.layout, dense.size, dense.per_trial) == ("rows", 32,
                                                         data + 24 * 4096 + 64 * 256 + trajectory)


def test_a_sweep_plans_its_cells_as_a_run_plans_its_chunks():
    from stelab.engine.budget import plan_chunks
    from stelab.sweep.grid import make_cells
    from stelab.sweep.runner import plan_cells

    cfg = make_config(model={"d": 256}, train={"n": 4096, "steps": 5},
                      run={"trials": 12, "memory_budget_mb": 40})
    cells = make_cells([cfg], block_trials=5)  # cells of 5, 5 and 2 trials
    plan = plan_cells(cells, set(), None)
    for cell, chunk in zip(plan.cells, plan.chunk_plans, strict=True):
        assert chunk == plan_chunks(cell.config, 40 * 2**20, trials=cell.stop - cell.start)


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
    from stelab.engine.passes import exact_preactivations
    from stelab.engine.problem import build_problem

    def status(key):
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024

    engine, normalization, layout = sys.argv[1], sys.argv[2], sys.argv[3]
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
    run_chunk(cfg, problem, engine, layout)
    print(json.dumps({"data": data, "extra": status("VmHWM") - base}))
""")


@pytest.mark.parametrize("engine,normalization,layout,limit", [
    ("dense", "none", "rows", 1.5), ("incremental", "none", "cache", 1.5),
    ("dense", "whiten", "rows", 1.5), ("incremental", "batchnorm", "cache", 1.5),
    ("incremental", "none", "columns", 2.2), ("trialwise", "none", "trialwise", 1.5),
])
def test_peak_rss_is_within_the_layouts_share_of_the_data(engine, normalization, layout, limit):
    """Peak RSS of building and running a chunk (above the process's RSS before) <= 1.5 x the
    data tensor (96 MB here; fixed temporaries of a few MB are included in the 0.5), 2.2 x with
    the incremental engine's column-major copy."""
    proc = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, engine, normalization, layout],
                          capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin",
                               "OMP_NUM_THREADS": "2"})
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["extra"] <= limit * out["data"], out["extra"] / out["data"]
