"""Bad configs give one clear line naming the field and what is allowed; the CLI exits 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import stelab
from stelab.config import load_config, parse_config
from stelab.errors import ConfigError

GOOD = {"model": {"d": 8}, "train": {"n": 32, "steps": 5}, "run": {"trials": 2, "device": "cpu"}}


def _with(section: str, **values):
    raw = {key: dict(value) for key, value in GOOD.items()}
    raw.setdefault(section, {}).update(values)
    return raw


@pytest.mark.parametrize(
    "raw,pattern",
    [
        (_with("model", width=3), r"^model\.width: unknown key; allowed: d, m, activation, teacher_balance$"),
        ({**GOOD, "optimizer": {}}, r"^optimizer: unknown key; allowed: model, data, noise"),
        (_with("model", d="wide"), r"^model\.d: .*integer.*"),
        (_with("model", d=0), r"^model\.d: 0 is not allowed; allowed: an integer > 0 and <= 9223372036854775807$"),
        (_with("model", d=-3), r"^model\.d: -3 is not allowed; allowed: an integer > 0"),
        (_with("model", activation="tanh"), r"^model\.activation: Input should be 'sign' or 'step'"),
        (_with("noise", kind="flip", level=1.5), r"^noise\.level: 1\.5 is not allowed; allowed: a finite number >= 0 and <= 1$"),
        (_with("noise", kind="flip", level=-0.1), r"^noise\.level: -0\.1 is not allowed; allowed: a finite number >= 0 and <= 1$"),
        (_with("noise", kind="none", level=0.1), r"^noise\.level: 0\.1 given with noise\.kind = 'none'"),
        (_with("data", distribution="cauchy"), r"^data\.distribution: unknown value 'cauchy'; allowed: anisotropic_gaussian, "),
        (_with("data", distribution="student_t", params={"nu": 3}), r"^data\.params\.nu: not a parameter of 'student_t'; allowed: df$"),
        (_with("data", distribution="sparse_bernoulli", params={"p": 2}), r"^data\.params\.p: 2\.0 is outside the allowed range \[0\.0, 1\.0\]$"),
        (_with("data", normalization="zscore"), r"^data\.normalization: Input should be 'none', 'center'"),
        (_with("train", ste="tanh"), r"^ste: unknown value 'tanh'; allowed: approx_sign, clipped_relu"),
        (_with("train", batch_size=64), r"^train\.batch_size: 64 exceeds train\.n = 32"),
        (_with("model", teacher_balance=1.2), r"^model\.teacher_balance: 1\.2 is not allowed; allowed: a finite number >= 0 and <= 1$"),
        ({"model": {"d": 8}}, r"^train: required field is missing$"),
    ],
)
def test_bad_config_gives_one_clear_line(raw, pattern):
    with pytest.raises(ConfigError, match=pattern) as info:
        parse_config(raw)
    assert "\n" not in str(info.value)


def test_defaults_fill_in():
    cfg = parse_config(GOOD)
    assert (cfg.model.m, cfg.model.activation, cfg.data.distribution, cfg.noise.kind) == (1, "sign", "gaussian", "none")
    assert (cfg.train.step_size, cfg.train.init, cfg.train.init_scale, cfg.train.batch_size) == (0.5, "small", 1e-3, None)


def test_digest_is_stable_and_sensitive():
    a, b = parse_config(GOOD), parse_config(_with("train", n=33))
    assert a.digest() == parse_config(GOOD).digest()
    assert a.digest() != b.digest()


def test_missing_and_invalid_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="config: file not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nd = 3")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(bad)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run the CLI of the stelab under test (installed or from the source tree) in ``cwd``."""
    package_root = str(Path(stelab.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "stelab", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def test_cli_run_writes_results_and_summary(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text('[model]\nd = 8\n[train]\nn = 64\nsteps = 10\n[run]\ntrials = 3\ndevice = "cpu"\n')
    done = _cli("run", str(config), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "success_last" in done.stdout
    rows = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert len(rows) == 3


def test_cli_bad_config_is_one_line_and_exit_2(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text('[model]\nd = 8\n[noise]\nkind = "flip"\nlevel = 3\n[train]\nn = 64\nsteps = 10\n')
    done = _cli("run", str(config), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "noise.level" in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
