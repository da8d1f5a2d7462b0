"""stelab.nn.summary: bit counts, memory and compression; a snapshot of the text table."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

from stelab.nn import QuantConv2d, QuantLinear, summary

SNAPSHOT = Path(__file__).parent / "snapshots" / "nn_summary.txt"


def small_model() -> nn.Sequential:
    return nn.Sequential(
        QuantConv2d(1, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.Flatten(),
        QuantLinear(8 * 4 * 4, 10, input_quantizer="ste_sign", weight_quantizer="ste_sign"),
        nn.Linear(10, 2),
    )


def test_summary_snapshot():
    text = str(summary(small_model()))
    assert text == SNAPSHOT.read_text().rstrip("\n")


def test_summary_counts_by_hand():
    s = summary(small_model())
    rows = {r.name: r for r in s.layers}
    assert set(rows) == {"0", "1", "3", "4"}  # Flatten owns nothing
    assert (rows["0"].params_1bit, rows["0"].params_32bit) == (72, 0)
    # BatchNorm: weight + bias (16) and running mean / var (16); num_batches_tracked is integer
    assert (rows["1"].params_1bit, rows["1"].params_32bit) == (0, 32)
    assert (rows["3"].params_1bit, rows["3"].params_32bit) == (1280, 10)
    assert (rows["4"].params_1bit, rows["4"].params_32bit) == (0, 22)
    assert rows["0"].memory_bytes == 9 and rows["3"].memory_bytes == 160 + 40
    assert rows["3"].compression == pytest.approx(4 * 1290 / 200)
    assert s.memory_bytes == 9 + 128 + 200 + 88
    assert s.compression == pytest.approx(4 * (72 + 32 + 1290 + 22) / s.memory_bytes)
    frame = s.to_frame()
    assert list(frame["name"]) == ["0", "1", "3", "4", "total"]
    assert frame.iloc[-1]["memory_bytes"] == s.memory_bytes


def test_unquantized_weights_count_as_32_bit():
    s = summary(QuantLinear(4, 3, weight_quantizer=None))
    assert (s.total.params_1bit, s.total.params_32bit) == (0, 15)
    assert s.compression == pytest.approx(1.0)
