"""Quantizers and surrogates: forward values, sign(0) = +1, surrogate formulas."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from stelab.errors import ConfigError
from stelab.quantizers import SURROGATES, binary_ste, get_surrogate, sign, step, weight_quantize

finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
vectors = st.lists(finite, min_size=1, max_size=64)


@given(vectors)
def test_sign_outputs_plus_minus_one(values):
    x = torch.tensor(values, dtype=torch.float32)
    out = sign(x)
    assert set(out.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(out == 1.0, x >= 0)


@given(vectors)
def test_step_outputs_zero_one(values):
    x = torch.tensor(values, dtype=torch.float32)
    out = step(x)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(out == 1.0, x > 0)


def test_sign_of_zero_is_plus_one_including_negative_zero():
    assert sign(torch.tensor([0.0, -0.0])).tolist() == [1.0, 1.0]
    assert step(torch.tensor([0.0])).tolist() == [0.0]


@given(st.lists(finite.filter(lambda v: v != 0), min_size=1, max_size=32))
def test_step_is_half_sign_plus_one_off_zero(values):
    x = torch.tensor(values, dtype=torch.float32)
    assert torch.equal(step(x), (sign(x) + 1) / 2)


EXPECTED = {
    "identity": lambda h: 1.0,
    "relu": lambda h: float(h > 0),
    "clipped_relu": lambda h: float(0 < h < 1),
    "hardtanh": lambda h: float(abs(h) <= 1),
    "approx_sign": lambda h: max(0.0, 2 - 2 * abs(h)),
    "swish": lambda h, b=5.0: b * (2 - b * h * math.tanh(b * h / 2)) / (1 + math.cosh(b * h)),
}


def test_every_registered_surrogate_has_a_formula_test():
    assert set(EXPECTED) == set(SURROGATES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@given(st.floats(min_value=-3, max_value=3, allow_nan=False))
def test_surrogate_matches_formula(name, h):
    got = get_surrogate(name)(torch.tensor([h], dtype=torch.float64)).item()
    assert got == pytest.approx(EXPECTED[name](h), abs=1e-9)


def test_swish_surrogate_is_derivative_of_sign_swish():
    beta = 3.0
    h = torch.linspace(-2, 2, 101, dtype=torch.float64, requires_grad=True)
    s = torch.sigmoid(beta * h)
    sign_swish = 2 * s * (1 + beta * h * (1 - s)) - 1
    (grad,) = torch.autograd.grad(sign_swish.sum(), h)
    assert torch.allclose(grad, get_surrogate("swish")(h.detach(), beta=beta), atol=1e-10)


@pytest.mark.parametrize("activation", ["sign", "step"])
@pytest.mark.parametrize("ste", sorted(EXPECTED))
def test_autograd_form_uses_surrogate(activation, ste):
    x = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    out = binary_ste(x, activation, ste)
    out.backward(torch.ones_like(out))
    assert torch.equal(out.detach(), sign(x.detach()) if activation == "sign" else step(x.detach()))
    assert torch.allclose(x.grad, get_surrogate(ste)(x.detach()))


def test_weight_ste_clipped():
    u = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0], requires_grad=True)
    q = weight_quantize(u, "clipped")
    q.sum().backward()
    assert q.tolist() == [-1, -1, -1, 1, 1, 1, 1]
    assert u.grad.tolist() == [0, 1, 1, 1, 1, 1, 0]


def test_unknown_surrogate_names_allowed_values():
    with pytest.raises(ConfigError, match="ste: unknown value 'tanh'; allowed: approx_sign"):
        get_surrogate("tanh")
