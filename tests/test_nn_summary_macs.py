"""summary(model, input_shape, fold_batchnorm): MACs per precision counted by hand."""

from __future__ import annotations

import math

import pytest
from torch import nn

from stelab.nn import QuantConv2d, QuantLinear, summary


def model() -> nn.Sequential:
    return nn.Sequential(
        QuantConv2d(3, 8, 3, padding=1, bias=False),                      # real x binary
        nn.BatchNorm2d(8),
        QuantConv2d(8, 16, 3, stride=2, padding=1, groups=2, bias=False,
                    input_quantizer="ste_sign"),                          # binary x binary
        nn.Flatten(),
        QuantLinear(16 * 4 * 4, 10, input_quantizer="sign", weight_quantizer=None),  # float
        nn.Linear(10, 2),                                                 # float
    )


def test_macs_by_precision():
    m = model().train()
    s = summary(m, input_shape=(3, 8, 8))
    real_binary = 8 * 8 * 8 * (3 * 9)
    binary = 16 * 4 * 4 * (4 * 9)
    floats = 256 * 10 + 10 * 2
    assert s.macs == {"binary": binary, "real_binary": real_binary, "float": floats}
    assert s.binary_mac_share == pytest.approx(binary / (binary + real_binary + floats))
    rows = {r.name: r for r in s.layers}
    assert rows["2"].macs_binary == binary and rows["0"].macs_real_binary == real_binary
    assert m.training  # the counting pass restores the mode
    assert "binary MACs:" in str(s) and "bin MACs" in str(s).splitlines()[0]


def test_no_input_shape_no_macs_and_folded_batchnorm():
    s = summary(model())
    assert s.macs == {"binary": 0, "real_binary": 0, "float": 0}
    assert math.isnan(s.binary_mac_share)
    folded = summary(model(), fold_batchnorm=True)
    bn = {r.name: r for r in folded.layers}["1"]
    assert bn.params_32bit == 2 * 8  # one scale, one shift per channel (not 4 per channel)
    assert folded.memory_bytes == s.memory_bytes - 4 * 2 * 8
