"""The end-to-end deployment table (examples/deploy_digits.py) on a short run: no timing is
asserted, only that every network is deployed four ways and measured."""

from __future__ import annotations

import pytest

from stelab.bench.deploy import deploy_rows, markdown_table


def test_two_networks_four_deployments():
    pytest.importorskip("onnxruntime", reason="the ONNX Runtime deployment needs the deploy extra")
    rows = deploy_rows(epochs=2, repeats=1, budget=0.001, threads=[1], say=lambda _: None)
    assert [(r["model"], r["deployment"]) for r in rows] == [
        (m, d) for m in ("binary MLP", "binary ConvNet")
        for d in ("float32", "int8", "onnxruntime", "packed")]
    for r in rows:
        assert r["accuracy"] > 0.5  # chance is 0.1
        assert set(r["latency_ms"]) == {"batch 1, 1 thread(s)", "batch 64, 1 thread(s)"}
        assert all(v > 0 for v in r["latency_ms"].values())
    for model in ("binary MLP", "binary ConvNet"):
        size = {r["deployment"]: r["file_bytes"] for r in rows if r["model"] == model}
        assert size["packed"] < size["int8"] < size["float32"]
        assert abs(size["onnxruntime"] - size["float32"]) < 0.2 * size["float32"]
    table = markdown_table(rows).splitlines()
    assert len(table) == 2 + len(rows) and "file size (B)" in table[0]
