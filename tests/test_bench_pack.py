"""`stelab bench pack` machinery on tiny shapes (a smoke test: no timing is asserted)."""

from __future__ import annotations

import json
import math

from typer.testing import CliRunner

from stelab.bench.pack import run_pack
from stelab.cli import app


def test_pack_bench_runs_and_checks_exactness():
    lines: list[str] = []
    results = run_pack(tiny=True, threads=[1], say=lines.append)
    names = [r.name for r in results]
    assert "bxb linear 256x256 batch 64" in names and "rxb linear 256x256 batch 1" in names
    assert any(n.startswith("digits MLP") for n in names)
    for r in results:
        assert r.ratios and all(math.isfinite(v) and v > 0 for v in r.ratios)
        assert r.detail.get("exact", True) is True
        assert r.detail.get("within_bound", True) is True
        assert r.detail.get("same_predictions", True) is True
    assert any(line.startswith("file size digits MLP") for line in lines)


def test_cli_bench_pack_json_and_unknown_name(tmp_path):
    out = tmp_path / "pack.json"
    result = CliRunner().invoke(app, ["bench", "pack", "--tiny", "--json", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert payload["results"] and "machine" in payload
    result = CliRunner().invoke(app, ["bench", "nope"])
    assert result.exit_code != 0
