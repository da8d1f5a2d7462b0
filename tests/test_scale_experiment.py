"""The scale experiment end to end on a tiny profile: the adaptive rounds run through the sweep
store, the plan is printed and stored before anything runs, the report and figures come from the
stored rows, and running again resumes to identical tables without running a cell."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from stelab.errors import ConfigError
from stelab.experiments.profile import load_profile
from stelab.reproduction import plan_tables, reproduce
from stelab.sweep import Execution

TINY = """
[base.model]
m = 1
activation = "sign"
[base.train]
step_size = 0.5
init = "small"
init_scale = 1e-3
[base.run]
seed = 5
device = "cpu"

[scale]
steps = 100

[scale.design]
trials_per_point = 8
target_ci = 0.5
max_trials = 48
n_boot = 100

[[scale.case]]
name = "m1_sign"
model = { m = 1, activation = "sign" }
ergodic_d = [8, 16]
last_d = [8, 16]

[scale.horizon]
case = "m1_sign"
d = [8]
checkpoints = [30, 100]

[scale.fixed]
case = "m1_sign"
d = [8]
n_over_d = [0.5, 1, 2, 4]
trials = 8

[scale.plan]
ergodic = { a = 1.0, alpha = 1.1 }
last = { a = 1.0, alpha = 1.2 }
slope = 6.0

[scale.plan.cost]
data_ns = 5.0
step_ns = 0.04
"""

QUIET = {"execution": Execution("serial", progress=False)}


def _profile(tmp_path: Path, text: str = TINY) -> Path:
    path = tmp_path / "scale.toml"
    path.write_text(text)
    return path


def _tables(out: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(out / "tables" / f"{name}.parquet").drop(
        columns="wall_seconds") for name in ("scale", "scale_horizon", "scale_fixed")}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    tmp = tmp_path_factory.mktemp("scale")
    profile = _profile(tmp)
    out = tmp / "out"
    lines: list[str] = []
    reproduce(profile, out, log=lines.append, **QUIET)
    return profile, out, lines


def test_rounds_run_until_every_threshold_is_done(tiny_run):
    _, out, lines = tiny_run
    rounds = sorted(p.name for p in (out / "store" / "scale").iterdir())
    assert rounds[0] == "round_000" and len(rounds) >= 2
    rows = pd.read_parquet(out / "tables" / "scale.parquet")
    assert set(rows["case"]) == {"m1_sign"} and set(rows["d"]) == {8, 16}
    # every point is its own cell with its own seed (independent trials)
    per_seed = rows.groupby("seed")["n"].nunique()
    assert (per_seed == 1).all()
    thresholds = pd.read_parquet(out / "tables" / "summary_scale_thresholds.parquet")
    assert {"alpha50", "n50_per_dlogd_ci_low"} <= set(thresholds.columns)
    assert any("round 1" in line for line in lines)


def test_plan_is_printed_first_and_stored_in_the_manifest(tiny_run):
    _, out, lines = tiny_run
    assert lines[0].startswith("[scale] plan: ~")
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["plan"]) == {"scale", "scale_horizon", "scale_fixed"}
    assert manifest["plan"]["scale"]["worker_seconds"] > 0


def test_report_has_the_scale_section_from_stored_rows(tiny_run):
    _, out, _ = tiny_run
    report = (out / "report.md").read_text()
    assert "## Scale: thresholds to large d" in report
    assert "### The last-iterate threshold and the horizon T" in report
    assert "### What the adaptive design saves" in report
    assert (out / "figures" / "scale_normalized_m1_sign.png").is_file()


def test_running_again_resumes_to_identical_tables(tiny_run):
    profile, out, _ = tiny_run
    before = _tables(out)
    rounds = sorted(p.name for p in (out / "store" / "scale").iterdir())
    reproduce(profile, out, log=lambda _line: None, **QUIET)
    after = _tables(out)
    assert sorted(p.name for p in (out / "store" / "scale").iterdir()) == rounds
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name])
    sittings = json.loads((out / "manifest.json").read_text())["sittings"]
    assert len(sittings) == 2 and all(s["seconds_total"] > 0 for s in sittings)


def test_an_interrupted_sitting_stays_on_record_and_the_rerun_adds_its_own(tmp_path):
    profile = _profile(tmp_path)
    out = tmp_path / "out"

    def stop_at_round_1(line: str) -> None:
        if "round 1" in line:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reproduce(profile, out, log=stop_at_round_1, **QUIET)
    first = json.loads((out / "manifest.json").read_text())["sittings"]
    assert len(first) == 1 and first[0]["stopped_by"] == "KeyboardInterrupt"
    assert first[0]["seconds_per_table"]["scale"] > 0 and not (out / "report.md").exists()
    reproduce(profile, out, log=lambda _line: None, **QUIET)
    sittings = json.loads((out / "manifest.json").read_text())["sittings"]
    assert len(sittings) == 2 and sittings[0] == first[0] and "stopped_by" not in sittings[1]


def test_the_plan_counts_workers_and_their_threads():
    from stelab.experiments.registry import Estimate
    from stelab.reproduction import _parallel_trials
    from stelab.sweep.executors import available_cores

    cores = available_cores()
    assert _parallel_trials(Execution("local", workers=1)) == (1, cores)
    assert _parallel_trials(Execution("serial")) == (1, cores)
    assert _parallel_trials(Execution("dask", workers=3)) == (3, 1)
    line = Estimate("t", 10, 7200.0, 2**30).line(2, 1)
    assert "~60 min on 2 workers of 1 threads" in line


def test_a_bad_design_key_is_one_line(tmp_path):
    bad = TINY.replace("target_ci = 0.5", "target_ci = 0.5\nbogus = 3")
    with pytest.raises(ConfigError) as err:
        reproduce(_profile(tmp_path, bad), tmp_path / "out", log=lambda _line: None, **QUIET)
    assert "design.bogus" in str(err.value) and "\n" not in str(err.value)


def test_the_shipped_scale_profile_plans_within_the_machine():
    profile = load_profile("scale")
    planned = plan_tables(profile, None, Execution("local", workers=2), lambda _line: None)
    assert set(planned) == {"scale", "scale_horizon", "scale_fixed"}
    total_hours = sum(p["worker_seconds"] for p in planned.values()) / 2 / 3600
    assert total_hours < 2.0  # the budget: two hours of tables on two workers
    assert max(p["peak_bytes"] for p in planned.values()) * 2 < 16 * 2**30


def test_laws_are_compared_over_the_large_d_with_verdicts():
    import numpy as np

    from stelab.experiments.scale_derive import LAWS, _laws
    from stelab.experiments.scale_report import _law_sentences

    rng = np.random.default_rng(0)
    d = np.array([16, 32, 64, 128, 256, 512, 1024, 2048])
    n50 = 2.0 * d * np.log(d)
    boot = [v * np.exp(rng.normal(0, 0.01, 400)) for v in n50]
    thresholds = pd.DataFrame({"case": "toy", "success": "success_ergodic", "d": d, "n50": n50,
                               "ci_low": n50 * 0.98, "ci_high": n50 * 1.02, "boot_n50": boot})
    laws = _laws(thresholds, n_boot=200)
    assert sorted(laws["model"]) == sorted(LAWS)
    assert (laws["d_min"] == 64).all()  # pooled over d >= 64 only
    verdict = dict(zip(laws["model"], laws["verdict"], strict=True))
    assert verdict["dlogd"] == "not excluded" and verdict["d"] == "excluded"
    assert "toy, ergodic: the thresholds exclude" in _law_sentences(laws)


def test_cli_plan_prints_every_estimate_and_runs_nothing(tmp_path, monkeypatch, capsys):
    import sys

    from stelab import cli

    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["stelab", "reproduce", "--profile",
                                      str(_profile(tmp_path)), "--out", str(out), "--plan"])
    monkeypatch.setattr(cli.console, "width", 250)
    try:
        cli.main()
    except SystemExit as stop:
        assert not stop.code
    text = capsys.readouterr().out
    for table in ("scale", "scale_horizon", "scale_fixed"):
        assert f"[{table}] plan: ~" in text
    assert not out.exists()
