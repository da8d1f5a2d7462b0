"""`stelab reproduce` and `stelab plot` as a user runs them: a subprocess on the tiny profile,
interrupted after its first stored cell and resumed, must give the tables of an uninterrupted
run; `plot` redraws from the stored tables; bad input is refused in one line with exit code 2.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

TINY = Path(__file__).parent / "data" / "tiny_profile.toml"
TIMING = ["wall_seconds"]  # the only column allowed to differ between two runs


def stelab(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "stelab", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kwargs)


def finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def reproduce_args(out: Path) -> list[str]:
    return ["reproduce", "--profile", str(TINY), "--out", str(out), "--executor", "serial"]


def tables(out: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p).drop(columns=TIMING, errors="ignore")
            for p in sorted((out / "tables").glob("*.parquet"))}


def stored_cells(out: Path) -> list[Path]:
    return sorted((out / "store").glob("*/cells/*.parquet"))


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> tuple[Path, str, str]:
    out = tmp_path_factory.mktemp("cli") / "full"
    code, stdout, stderr = finish(stelab(*reproduce_args(out)))
    assert code == 0, stderr
    return out, stdout, stderr


def test_reproduce_command_prints_one_verdict_per_claim(full_run):
    out, stdout, stderr = full_run
    assert "Traceback" not in stderr
    verdicts = [line for line in stdout.splitlines() if line[:3] in ("C1:", "C2:", "C3:", "C4:")]
    assert [v[:2] for v in verdicts] == ["C1", "C2", "C3", "C4"]
    claims = json.loads((out / "claims.json").read_text())["claims"]
    for line, claim in zip(verdicts, claims, strict=True):
        assert line.startswith(f"{claim['id']}: {claim['verdict']} (")
    assert set(tables(out)) >= {"e1", "e2", "e3", "e4"}


def _interrupt_after_first_cell(out: Path, sig: int) -> tuple[int, str, str]:
    proc = stelab(*reproduce_args(out))
    deadline = time.monotonic() + 300
    while not stored_cells(out):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "no cell stored within 300 s"
        time.sleep(0.05)
    proc.send_signal(sig)
    return finish(proc)


@pytest.mark.slow  # three runs of the tiny profile as subprocesses: about a minute
def test_interrupted_reproduce_resumes_to_identical_tables(full_run, tmp_path):
    reference, _, _ = full_run
    out = tmp_path / "interrupted"
    code, _, stderr = _interrupt_after_first_cell(out, signal.SIGINT)
    assert code == 130
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted: ") and last.endswith(
        " cells are stored in " + str(out / "store" / "e1" / "cells")
        + "; run the same command again to resume"), stderr
    assert "Traceback" not in stderr
    kept = stored_cells(out)
    assert kept and not (out / "claims.json").exists()
    total = len(stored_cells(reference))
    assert len(kept) < total
    mtimes = {p: p.stat().st_mtime_ns for p in kept}

    code, _, stderr = finish(stelab(*reproduce_args(out)))
    assert code == 0 and "Traceback" not in stderr
    assert {p: p.stat().st_mtime_ns for p in kept} == mtimes  # read back, not rerun
    assert len(stored_cells(out)) == total
    ours, theirs = tables(out), tables(reference)
    assert set(ours) == set(theirs)
    for name in ours:
        pd.testing.assert_frame_equal(ours[name], theirs[name], obj=name)
    assert json.loads((out / "claims.json").read_text()) == json.loads(
        (reference / "claims.json").read_text())


def test_plot_command_redraws_from_the_tables_alone(full_run, tmp_path):
    reference, _, _ = full_run
    copy = tmp_path / "copy"
    shutil.copytree(reference, copy)
    shutil.rmtree(copy / "store")
    shutil.rmtree(copy / "figures")
    (copy / "report.md").unlink()
    (copy / "claims.json").unlink()
    code, _, stderr = finish(stelab("plot", str(copy)))
    assert code == 0 and "Traceback" not in stderr
    drawn = sorted(p.name for p in (copy / "figures").glob("*.png"))
    assert drawn == sorted(p.name for p in (reference / "figures").glob("*.png"))
    assert json.loads((copy / "claims.json").read_text()) == json.loads(
        (reference / "claims.json").read_text())
    def report(folder: Path) -> list[str]:  # less the lines naming the folder or the time
        return [line for line in (folder / "report.md").read_text().splitlines()
                if str(folder) not in line and not line.startswith("- report written")]

    assert report(copy) == report(reference)


@pytest.mark.parametrize("args, field", [
    (["reproduce", "--profile", "no-such-profile.toml", "--out", "{tmp}/x"], "--profile"),
    (["reproduce", "--quick", "--full", "--out", "{tmp}/x"], "--quick/--full"),
    (["reproduce", "--profile", str(TINY), "--quick", "--out", "{tmp}/x"], "--profile"),
    (["plot", "{tmp}/nothing-here"], ""),
])
def test_bad_input_is_refused_in_one_line(args, field, tmp_path, monkeypatch, capsys):
    """In this process (cli.main, as the console script runs it): exit code 2 exactly, one line
    on stderr naming the field, no traceback."""
    from stelab import cli

    monkeypatch.setattr(sys, "argv", ["stelab", *[a.format(tmp=tmp_path) for a in args]])
    monkeypatch.setattr(cli.err_console, "width", 250)
    with pytest.raises(SystemExit) as stop:
        cli.main()
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert stop.value.code == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith("error: ") and field in lines[0], captured.err
    assert "Traceback" not in captured.out + captured.err


def test_stored_verdicts_follow_the_rules_from_the_stored_evidence(full_run):
    """claims.json is self-consistent: each verdict is what the written rule gives on the
    evidence stored beside it (C3 rebuilt level by level; C1/C2 from the per-case verdicts by
    the combination rule; C4 from the restored share's bands)."""
    from stelab.claims import (
        INCONCLUSIVE,
        NOT_SUPPORTED,
        SUPPORTED,
        NoiseLevelRecurrence,
        recurrence_verdict,
    )

    out, _, _ = full_run
    claims = {c["id"]: c for c in json.loads((out / "claims.json").read_text())["claims"]}
    for claim_id in ("C1", "C2"):
        per_case = list(claims[claim_id]["evidence"]["per_case"].values())
        expected = (NOT_SUPPORTED if NOT_SUPPORTED in per_case
                    else SUPPORTED if per_case and all(v == SUPPORTED for v in per_case)
                    else INCONCLUSIVE)
        assert claims[claim_id]["verdict"] == expected
    levels = []
    for key, e in claims["C3"]["evidence"]["per_noise_level"].items():
        nan = float("nan")
        low, high = (nan if v is None else v for v in e["late_rate_ci"])
        levels.append(NoiseLevelRecurrence(
            float(key.removeprefix("p=")), 0, e["returns_mean"] > 0,
            e["late_return_rate_per_step"], low, high, e["absorbed"], *e["absorbed_ci"]))
    rebuilt = recurrence_verdict(levels, {})
    assert (claims["C3"]["verdict"], claims["C3"]["reason"]) == (rebuilt.verdict, rebuilt.reason)
    c4 = claims["C4"]["evidence"]
    share = c4["restored_share"]
    expected = (NOT_SUPPORTED if not c4["raw_failures"] else SUPPORTED if share >= 0.75
                else NOT_SUPPORTED if share < 0.25 else INCONCLUSIVE)
    assert claims["C4"]["verdict"] == expected
