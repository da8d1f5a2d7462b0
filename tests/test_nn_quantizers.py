"""Named quantizers of stelab.nn: forward values and surrogate gradients against their formulas,
checked independently of the implementation (plain Python formulas below)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from stelab.errors import ConfigError
from stelab.nn import QUANTIZERS, get_quantizer

finite = st.floats(allow_nan=False, allow_infinity=False, width=32)


def _sign(x: float) -> float:
    return 1.0 if x >= 0 else -1.0


def _step(x: float) -> float:
    return 1.0 if x > 0 else 0.0


def _swish(x: float, beta: float = 5.0) -> float:
    return beta * (2 - beta * x * math.tanh(beta * x / 2)) / (1 + math.cosh(beta * x))


# name -> (forward, surrogate derivative), written out from the docs (Larq / Bi-Real / BNN+)
FORMULAS = {
    "sign": (_sign, lambda x: 1.0),
    "ste_sign": (_sign, lambda x: float(abs(x) <= 1)),
    "approx_sign": (_sign, lambda x: max(0.0, 2 - 2 * abs(x))),
    "swish_sign": (_sign, _swish),
    "step": (_step, lambda x: 1.0),
    "ste_heaviside": (_step, lambda x: float(abs(x) <= 1)),
    "step:relu": (_step, lambda x: float(x > 0)),
    "step:clipped_relu": (_step, lambda x: float(0 < x < 1)),
    "sign:clipped": (_sign, lambda x: float(abs(x) <= 1)),
}


def test_every_registered_quantizer_has_a_formula_test():
    assert set(QUANTIZERS) <= set(FORMULAS)


@pytest.mark.parametrize("name", sorted(FORMULAS))
@given(st.floats(min_value=-3, max_value=3, allow_nan=False))
def test_forward_and_surrogate_gradient_match_formulas(name, x):
    forward, derivative = FORMULAS[name]
    t = torch.tensor([x], dtype=torch.float64, requires_grad=True)
    out = get_quantizer(name)(t)
    out.backward(torch.tensor([0.5], dtype=torch.float64))
    assert out.item() == forward(x)
    assert t.grad.item() == pytest.approx(0.5 * derivative(x), abs=1e-12)


@pytest.mark.parametrize("name", sorted(FORMULAS))
@given(st.lists(finite, min_size=1, max_size=64))
def test_outputs_are_binary(name, values):
    out = get_quantizer(name)(torch.tensor(values, dtype=torch.float32))
    allowed = {-1.0, 1.0} if get_quantizer(name).activation == "sign" else {0.0, 1.0}
    assert set(out.unique().tolist()) <= allowed


@pytest.mark.parametrize("name", [n for n in FORMULAS if get_quantizer(n).activation == "sign"])
def test_sign_quantizers_map_zero_to_plus_one(name):
    assert get_quantizer(name)(torch.tensor([0.0, -0.0])).tolist() == [1.0, 1.0]


def test_every_quantizer_is_one_bit_and_documents_its_formula():
    for name in FORMULAS:
        q = get_quantizer(name)
        assert q.precision == 1
        assert q.formula.startswith(("sign(x)", "step(x)")) and "d/dx ~" in q.formula


@pytest.mark.parametrize("bad", ["tanh", "sign:foo", "relu:identity", "sign:relu:x"])
def test_unknown_quantizer_names_the_field_and_allowed_values(bad):
    with pytest.raises(ConfigError, match=r"weight_quantizer: unknown value .*allowed: approx_sign"):
        get_quantizer(bad, "weight_quantizer")
