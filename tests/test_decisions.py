"""DecisionRule.decide against a float64 oracle written from the module docstring.

The rule is used wherever the compiled CPU kernel is not (minibatches, continuous surrogates,
float64 data, GPUs), and it promises exact decisions: every comparison with 0 or a threshold
theta * s is taken on the exact pre-activation. The inputs below put entries exactly on the
thresholds and a hair (1e-9 relative) beside them, where the float32 value of h rounds onto the
threshold and only the exact value decides correctly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stelab.engine.decisions import DecisionRule
from stelab.quantizers import DISCRETE_SURROGATES, get_surrogate


def _exact_derivative(ste: str, hs: np.ndarray) -> np.ndarray:
    """sigma~'(h / s) on the exact scaled pre-activation (quantizers.py's docstring)."""
    if ste in ("approx_sign", "swish"):
        return get_surrogate(ste)(torch.from_numpy(hs)).numpy()
    return {"identity": np.ones_like(hs), "relu": (hs > 0) * 1.0,
            "clipped_relu": ((hs > 0) & (hs < 1)) * 1.0,
            "hardtanh": (np.abs(hs) <= 1) * 1.0}[ste]


def _inputs(k: int, n: int, m: int, scale: np.ndarray | None, seed: int):
    """Exact pre-activations h64 (k, n*m): random ones, then entries on and beside 0 and +-s."""
    rng = np.random.default_rng(seed)
    s = np.ones(k) if scale is None else scale
    h64 = rng.normal(0, 1.5, (k, n * m)) * s[:, None]
    special = np.array([0.0, 1.0, -1.0, 1 + 1e-9, 1 - 1e-9, -1 - 1e-9, -1 + 1e-9])
    h64[:, : special.size] = special[None, :] * s[:, None]
    h64[:, special.size : special.size + 2] = [1e-9, -1e-9]  # beside 0, whatever s
    y = rng.choice([-1.0, 0.0, 1.0, 1 / 3], size=(k, n))
    return h64, y


@pytest.mark.parametrize("scaled", [False, True])
@pytest.mark.parametrize("m", [1, 3])
@pytest.mark.parametrize("ste", ["identity", "relu", "clipped_relu", "hardtanh", "approx_sign"])
@pytest.mark.parametrize("activation", ["sign", "step"])
def test_decide_matches_the_exact_rule(activation, ste, m, scaled):
    k, n = 3, 20
    scale = np.array([1.5, 0.75, 2.0]) if scaled else None
    h64, y = _inputs(k, n, m, scale, seed=m + 10 * scaled)
    h32 = torch.from_numpy(h64).float()
    bound = torch.full((k,), 1e-6, dtype=torch.float64)

    def exact(local: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(h64)[local, rows]

    rule = DecisionRule(activation, ste, None, m)
    dec = rule.decide(h32, bound, None if scale is None else torch.from_numpy(scale).float(),
                      torch.from_numpy(y).float(), exact)

    positive = h64 >= 0 if activation == "sign" else h64 > 0
    act = 2.0 * positive - 1 if activation == "sign" else positive * 1.0
    residual = act.reshape(k, n, m).mean(axis=-1) - y
    s = np.ones(k) if scale is None else scale.astype(np.float32).astype(np.float64)
    derivative = _exact_derivative(ste, h64 / s[:, None])
    coeff = np.repeat(residual, m, axis=1) * derivative / m
    assert dec.residual.shape == (k, n) and dec.coeff.shape == (k, n * m)
    assert dec.residual.dtype == torch.float32 and dec.coeff.dtype == torch.float32
    np.testing.assert_allclose(dec.residual.double().numpy(), residual, rtol=1e-6, atol=1e-7)
    # continuous surrogates are evaluated on the float value of h / s (module docstring)
    tol = 1e-6 if ste in DISCRETE_SURROGATES else 1e-5
    np.testing.assert_allclose(dec.coeff.double().numpy(), coeff, rtol=tol, atol=tol)
    # every entry within the bound of 0 (and of +-s for the threshold surrogates) was fixed
    fixed = {tuple(r) for r in dec.fixed_rows.tolist()}
    for i in range(k):
        for r in range(n * m):
            near = abs(h64[i, r]) <= 1e-6 or any(
                abs(h64[i, r] - theta * s[i]) <= 1e-6
                for theta in get_surrogate(ste).thresholds if theta != 0.0)
            assert ((i, r) in fixed) == near, (i, r, h64[i, r])
    np.testing.assert_array_equal(dec.fixed_values.numpy(),
                                  h64[dec.fixed_rows[:, 0], dec.fixed_rows[:, 1]])


def test_unit_activations_decide_every_sign_exactly():
    h64 = np.array([[1e-9, -1e-9, 0.0, 2.0, -3.0]])
    for activation, expected in (("sign", [1, -1, 1, 1, -1]), ("step", [1, 0, 0, 1, 0])):
        rule = DecisionRule(activation, "identity", None, 1)
        act = rule.unit_activations(
            torch.from_numpy(h64).float(), torch.full((1,), 1e-6, dtype=torch.float64),
            lambda local, rows: torch.from_numpy(h64)[local, rows], torch.float32)
        assert act.tolist() == [expected]


def test_from_config_and_the_bound_rounding():
    from tests.helpers import make_config

    rule = DecisionRule.from_config(make_config(model={"d": 8, "m": 2, "activation": "step"},
                                                train={"n": 16, "steps": 1, "ste": "hardtanh"}))
    assert (rule.activation, rule.ste, rule.m, rule.discrete, rule.thresholds) == (
        "step", "hardtanh", 2, True, (-1.0, 1.0))
    assert DecisionRule("sign", "swish", {"beta": 2.0}, 1).discrete is False
    # a float64 bound is rounded up, never down, when compared with float32 pre-activations
    h = torch.tensor([[0.1, -0.1]], dtype=torch.float32)
    bound = torch.tensor([float(torch.tensor(0.1, dtype=torch.float32))], dtype=torch.float64)
    assert DecisionRule("sign", "identity", None, 1).near_threshold(h, bound, None).all()
