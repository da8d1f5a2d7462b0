"""`stelab bench pack` machinery on tiny shapes (a smoke test: no timing is asserted)."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from stelab.bench.pack import run_pack
from stelab.cli import app


@pytest.fixture(scope="module")
def tiny_run():
    lines: list[str] = []
    results = run_pack(tiny=True, threads=[1], say=lines.append)
    return results, lines


def test_pack_bench_runs_and_checks_exactness(tiny_run):
    results, lines = tiny_run
    names = [r.name for r in results]
    assert "bxb linear 256x256 batch 64" in names and "rxb linear 256x256 batch 1" in names
    assert any(n.startswith("digits MLP") for n in names)
    assert any(n.startswith("digits ConvNet") for n in names)
    for r in results:
        assert r.ratios and all(math.isfinite(v) and v > 0 for v in r.ratios)
        assert r.detail.get("exact", True) is True
        assert r.detail.get("within_bound", True) is True
        assert r.detail.get("same_predictions", True) is True
    assert any(line.startswith("file size digits MLP") for line in lines)


def test_pack_bench_times_four_contenders(tiny_run):
    pytest.importorskip("onnxruntime", reason="the ONNX Runtime contender needs the deploy extra")
    results, lines = tiny_run
    linear = [r for r in results if " linear " in r.name and not r.name.startswith("per-call")]
    assert {r.name.split(" batch ")[1] for r in linear} == {"1", "64"}
    for r in linear:
        assert set(r.times) >= {"float32", "int8", "onnxruntime", "packed"}
        assert all(r.ratios_vs(c) for c in ("float32", "int8", "onnxruntime"))
        assert all(0 < r.of_limit(c) for c in ("float32", "int8", "onnxruntime", "packed"))
    conv = next(r for r in results if r.name.startswith("bxb conv"))
    assert "int8" not in conv.times and conv.line().count(" - ") >= 1  # no dynamic int8 conv
    assert any("x int8" in line and "ort ms" in line for line in lines)
    overhead = next(line for line in lines if line.startswith("per-call overhead"))
    assert "PackedModel" in overhead and " us " in overhead
    assert any(line.startswith("onnxruntime predictions agree") for line in lines)


def test_cli_bench_pack_json_and_unknown_name(tmp_path):
    out = tmp_path / "pack.json"
    result = CliRunner().invoke(app, ["bench", "pack", "--tiny", "--json", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert payload["results"] and "machine" in payload
    assert {"float32", "int8", "onnxruntime", "packed"} <= set(payload["results"][1]["times_s"])
    result = CliRunner().invoke(app, ["bench", "nope"])
    assert result.exit_code != 0
