"""`stelab bench` machinery on tiny workloads (a smoke test: no timing is asserted)."""

from __future__ import annotations

import json
import math

from typer.testing import CliRunner

from stelab.bench import run_all
from stelab.cli import app


def test_every_benchmark_runs_and_checks_its_results():
    lines: list[str] = []
    results = run_all(tiny=True, threads=1, say=lines.append)
    assert [r.name for r in results] == ["numpy", "process", "bandwidth", "baseline",
                                         "incremental"]
    for result in results:
        assert result.values and all(math.isfinite(v) and v > 0 for v in result.values)
    by_name = {r.name: r for r in results}
    assert by_name["baseline"].detail["agree"] is True
    assert by_name["incremental"].detail["agree"] is True
    assert by_name["numpy"].detail["agree"] is True
    for workload in by_name["numpy"].detail["workloads"]:
        # an engine reads at least the incremental floor; in this tiny regime the trials are
        # still moving at T, so the floor is below one full pass per trial-step
        floor = workload["incremental_floor_bytes_per_trial_step"]
        assert workload["engine_bytes_per_trial_step"] >= floor > 0
        assert floor < workload["one_pass_bytes_per_trial_step"]
    assert any(line.startswith("  numpy: ratio on the sum") for line in lines)
    assert any(line.startswith("machine:") for line in lines)


def test_cli_bench_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "--tiny", "--only", "bandwidth", "--threads", "1",
                                      "--json", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert [r["name"] for r in payload["results"]] == ["bandwidth"]
    assert "machine" in payload


def test_cli_bench_rejects_an_unknown_benchmark(monkeypatch, capsys):
    """As the console script runs it: exit code 2, one line naming --only, no traceback."""
    import sys

    import pytest

    from stelab import cli

    monkeypatch.setattr(sys, "argv", ["stelab", "bench", "--only", "nope"])
    monkeypatch.setattr(cli.err_console, "width", 250)
    with pytest.raises(SystemExit) as stop:
        cli.main()
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert err.strip().splitlines() == [
        "error: --only: unknown benchmark 'nope'; allowed: numpy, process, bandwidth, "
        "baseline, incremental"]
