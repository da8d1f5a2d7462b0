"""How commands end: the exit status and one line for each kind of failure (stelab.exits), the
crash log of an unexpected error, NaN policy of stelab.nn and of the simulator, and the
bounded cost and scale invariance of diagnose."""

from __future__ import annotations

import errno
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from stelab.cli import app
from stelab.diagnosis import diagnose, estimate_seconds
from stelab.errors import ConfigError, NumericalError
from stelab.exits import describe_failure, os_error_line
from stelab.nn import QuantConv2d, QuantLinear
from stelab.quantizers import sign, step
from tests.helpers import make_config

NAN, INF = float("nan"), float("inf")


# ------------------------------------------------------------------------- exit statuses
@pytest.mark.parametrize("code,status,start", [
    (errno.ENOSPC, 1, "disk full: cannot write /x/y"),
    (errno.EDQUOT, 1, "disk full"),
    (errno.EACCES, 2, "permission denied: /x/y"),
    (errno.EROFS, 2, "permission denied"),
    (errno.ENOTDIR, 2, "path: /x/y"),
    (errno.EIO, 1, "I/O error on /x/y"),
])
def test_os_errors_map_to_one_line_and_a_status(code, status, start):
    got_status, line = os_error_line(OSError(code, "reason", "/x/y"))
    assert got_status == status and line.startswith(start) and "\n" not in line


def test_a_write_error_without_a_file_name_says_where():
    assert "in runs/s" in os_error_line(OSError(errno.ENOSPC, "full"), "a file in runs/s")[1]


def test_memory_errors_are_failures_of_the_machine():
    assert describe_failure(MemoryError(), [])[0] == 1
    allocator = RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried ...")
    assert describe_failure(allocator, [])[1].startswith("out of memory")


def test_an_unexpected_error_names_its_crash_log(tmp_path):
    try:
        {}["missing"]
    except KeyError as err:
        status, line = describe_failure(err, [tmp_path])
    assert status == 1 and "\n" not in line
    log = Path(re.search(r"the traceback is in (\S+);", line).group(1))
    assert log.parent == tmp_path and "Traceback" in log.read_text()
    assert "KeyError" in log.read_text()


def test_an_unexpected_error_in_a_command_is_one_line_and_a_log(tmp_path, monkeypatch):
    import stelab.engine

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(stelab.engine, "run_experiment", broken)
    config = tmp_path / "c.toml"
    config.write_text("[model]\nd = 4\n[train]\nn = 8\nsteps = 5\n[run]\ndevice = 'cpu'\n")
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "unexpected error ZeroDivisionError: a bug" in result.stderr
    logs = list((tmp_path / "out").glob("stelab-crash-*.log"))
    assert len(logs) == 1 and "ZeroDivisionError" in logs[0].read_text()


def test_disk_full_while_writing_results_is_status_1_and_keeps_the_old_file(tmp_path,
                                                                           monkeypatch):
    config = tmp_path / "c.toml"
    config.write_text("[model]\nd = 4\n[train]\nn = 8\nsteps = 5\n[run]\ndevice = 'cpu'\n")
    other = tmp_path / "o.toml"
    other.write_text(config.read_text().replace("d = 4", "d = 5"))
    out = tmp_path / "out"
    assert CliRunner().invoke(app, ["run", str(config), "--out", str(out)]).exit_code == 0
    before = (out / "results.parquet").read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("stelab.results.atomic_write", full)
    result = CliRunner().invoke(app, ["run", str(other), "--out", str(out), "--overwrite"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: disk full: cannot write {out / 'results.parquet'}")
    assert (out / "results.parquet").read_bytes() == before


def test_run_reuses_the_same_config_and_refuses_another(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[model]\nd = 4\n[train]\nn = 8\nsteps = 5\n[run]\ndevice = 'cpu'\n")
    other = tmp_path / "o.toml"
    other.write_text(config.read_text().replace("steps = 5", "steps = 6"))
    out = tmp_path / "out"
    CliRunner().invoke(app, ["run", str(config), "--out", str(out)])
    before = (out / "results.parquet").read_bytes()
    again = CliRunner().invoke(app, ["run", str(config), "--out", str(out)])
    assert again.exit_code == 0 and "nothing rerun" in again.stdout
    refused = CliRunner().invoke(app, ["run", str(other), "--out", str(out)])
    assert refused.exit_code == 2 and "--overwrite" in refused.stderr
    assert (out / "results.parquet").read_bytes() == before
    replaced = CliRunner().invoke(app, ["run", str(other), "--out", str(out), "--overwrite"])
    assert replaced.exit_code == 0 and (out / "results.parquet").read_bytes() != before


# ------------------------------------------------------------------------- NaN policy
def test_sign_and_step_propagate_nan():
    x = torch.tensor([NAN, 0.0, -0.0, -2.0, INF, -INF])
    assert torch.equal(sign(x)[1:], torch.tensor([1.0, 1.0, -1.0, 1.0, -1.0]))
    assert torch.equal(step(x)[1:], torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0]))
    assert math.isnan(sign(x)[0]) and math.isnan(step(x)[0])


@pytest.mark.parametrize("quantizer", ["sign", "ste_sign", "approx_sign", "step:relu"])
def test_nan_inputs_and_latent_weights_give_nan_outputs(quantizer):
    torch.manual_seed(0)
    layer = QuantLinear(3, 2, input_quantizer=quantizer, weight_quantizer=quantizer)
    out = layer(torch.tensor([[NAN, 1.0, -1.0], [1.0, 1.0, 1.0]]))
    assert torch.isnan(out[0]).all() and torch.isfinite(out[1]).all()
    with torch.no_grad():
        layer.weight[0, 0] = NAN
    out = layer(torch.ones(1, 3))
    assert torch.isnan(out[0, 0]) and torch.isfinite(out[0, 1])
    conv = QuantConv2d(1, 1, 2, input_quantizer=quantizer)
    image = torch.zeros(1, 1, 3, 3)
    image[0, 0, 0, 0] = NAN
    assert torch.isnan(conv(image)[0, 0, 0, 0]) and torch.isfinite(conv(image)[0, 0, 1, 1])


def test_the_simulator_refuses_overflowing_weights_instead_of_reporting_signs():
    from stelab.engine import run_experiment

    with pytest.raises(NumericalError, match=r"^train\.step_size: the latent weights u_T"):
        run_experiment(make_config(train={"n": 16, "steps": 5, "step_size": 1e38}))
    with pytest.raises(NumericalError, match=r"^train\.init_scale: the initial weights"):
        run_experiment(make_config(train={"n": 16, "steps": 5, "init_scale": 1e300}))


def test_the_simulator_refuses_inputs_that_hold_inf_or_nan():
    from stelab.engine import run_experiment
    from stelab.engine.problem import build_problem
    from stelab.engine.run import _input_witness

    # student t with df = 0.001: draws beyond float32's range become inf
    cfg = make_config(data={"distribution": "student_t", "params": {"df": 1e-3}},
                      train={"n": 64, "steps": 5}, run={"trials": 2})
    with pytest.raises(NumericalError, match=r"^data\.params: the inputs of trial 0 hold inf"):
        run_experiment(cfg)
    # the check reads the error bounds, not the data: they are non-finite exactly where a
    # trial's inputs are (NaN, +inf, -inf, in any row block)
    cfg = make_config(model={"d": 8}, train={"n": 3000, "steps": 5}, run={"trials": 4})
    inputs = torch.randn(4, 3000, 1, 8)
    inputs[1, 2999, 0, 7], inputs[2, 0, 0, 0], inputs[3, 1500, 0, 3] = NAN, math.inf, -math.inf
    problem = build_problem(cfg, [0, 1, 2, 3], torch.device("cpu"), inputs=inputs)
    assert torch.isfinite(_input_witness(problem)).tolist() == [True, False, False, False]


# ------------------------------------------------------------------------- diagnose
def test_diagnose_is_the_same_at_any_scale():
    X = np.random.default_rng(0).standard_normal((200, 6)) + np.array([3, 0, 0, 0, 0, 1.0])
    base = diagnose(X, n50=30.0)
    for scale in (2.0**1000, 2.0**-1000, 1e300, 1e-300):
        other = diagnose(X * scale, n50=30.0)
        assert [c.predicted_healthy for c in other.checks] == [
            c.predicted_healthy for c in base.checks]
        assert np.allclose([c.n_eff for c in other.checks], [c.n_eff for c in base.checks])
        assert math.isclose(other.scale_max, base.scale_max * scale, rel_tol=1e-9)


def test_diagnose_of_wide_short_data_is_refused_at_once_with_the_reason():
    X = np.random.default_rng(0).standard_normal((2, 5000))
    with pytest.raises(ConfigError, match=r"^diagnose: n = 2, d = 5000 would take about .* "
                                          r"\(Gaussian reference n50: .*--gaussian-n50"):
        diagnose(X)
    assert sum(estimate_seconds(2, 5000, n50_given=True).values()) < 600


@pytest.mark.parametrize("n50", [-5.0, 0.0, NAN, INF])
def test_gaussian_n50_must_be_a_finite_positive_number(n50):
    with pytest.raises(ConfigError, match=r"^--gaussian-n50: .* allowed: a finite number > 0"):
        diagnose(np.random.default_rng(0).standard_normal((20, 3)), n50=n50)
