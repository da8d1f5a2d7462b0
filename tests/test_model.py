"""The closed-form coarse gradient: against autograd, the Gaussian oracle and fixed points."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from stelab.model import BinaryTwoLayer, step_size_eta
from stelab.normalize import row_covariance
from stelab.quantizers import SURROGATES, binary_ste, sign, weight_quantize


def _autograd_gradient(model: BinaryTwoLayer, Z, u, y, ste_params):
    """dL/du through the custom STE autograd functions, L = (1/2n) sum (f - y)^2."""
    u = u.clone().requires_grad_(True)
    q = weight_quantize(u, model.weight_ste)
    t, n, m, d = Z.shape
    h = torch.bmm(Z.reshape(t, n * m, d), q.unsqueeze(-1)).reshape(t, n, m)
    scale = model.preact_scale(q.detach())
    if scale is not None:  # batch-norm statistics are constants of the gradient
        h = h / scale[:, None, None]
    f = binary_ste(h, model.activation, model.ste, **ste_params).mean(dim=-1)
    loss = 0.5 * (f - y).square().mean(dim=-1).sum()
    (grad,) = torch.autograd.grad(loss, u)
    return grad


COMBOS = list(itertools.product(["sign", "step"], sorted(SURROGATES), ["identity", "clipped"], [1, 4]))


@pytest.mark.parametrize("activation,ste,weight_ste,m", COMBOS)
@pytest.mark.parametrize("batchnorm", [False, True])
def test_closed_form_gradient_equals_autograd(activation, ste, weight_ste, m, batchnorm):
    gen = torch.Generator().manual_seed(hash((activation, ste, weight_ste, m)) % 2**31)
    t, n, d = 3, 50, 12
    Z = torch.randn(t, n, m, d, generator=gen, dtype=torch.float64)
    u = 1.5 * torch.randn(t, d, generator=gen, dtype=torch.float64)  # some |u| > 1 for clipping
    y = torch.randn(t, n, generator=gen, dtype=torch.float64)
    ste_params = {"beta": 2.5} if ste == "swish" else {}
    model = BinaryTwoLayer(
        m=m, activation=activation, ste=ste, ste_params=ste_params, weight_ste=weight_ste,
        preact_cov=row_covariance(Z) if batchnorm else None,
    )
    q = sign(u)
    h = model.preactivations(Z, q)
    closed = model.coarse_gradient(Z, h, model.outputs(h) - y, u, q)
    expected = _autograd_gradient(model, Z, u, y, ste_params)
    assert torch.allclose(closed, expected, rtol=1e-10, atol=1e-12)
    assert closed.abs().sum() > 0


def test_gaussian_oracle_at_large_n():
    """E[g] = sqrt(2/pi) (q/||q|| - w*/||w*||) for Gaussian inputs, m = 1, sign, identity STE.

    Each coordinate of g is a mean of n i.i.d. terms (f - y) z_i with |f - y| <= 2 and
    E[z_i^2] = 1, so its standard deviation is at most 2 / sqrt(n); we allow 5 of them.
    """
    d, n = 16, 400_000
    rng = np.random.default_rng(7)
    w_star = torch.from_numpy(rng.choice([-1.0, 1.0], size=(1, d)))
    q = w_star.clone()
    q[0, : d // 2] *= -1  # half of the coordinates wrong
    q[0, d - 2] *= -1
    Z = torch.from_numpy(rng.standard_normal((1, n, 1, d)))
    model = BinaryTwoLayer(m=1)
    y = model.outputs(model.preactivations(Z, w_star))
    h = model.preactivations(Z, q)
    g = model.coarse_gradient(Z, h, model.outputs(h) - y, q.clone(), q)
    oracle = math.sqrt(2 / math.pi) * (q / q.norm() - w_star / w_star.norm())
    tolerance = 5 * 2 / math.sqrt(n)
    assert (g - oracle).abs().max().item() < tolerance
    assert (g - oracle).abs().max().item() < 0.1 * oracle.abs().max().item()


@pytest.mark.parametrize("activation,ste", [("sign", "identity"), ("step", "relu"), ("sign", "swish")])
def test_teacher_is_exact_fixed_point_without_noise(activation, ste):
    from stelab.engine.problem import build_problem
    from tests.helpers import make_config

    for normalization in ["none", "whiten", "batchnorm"]:
        cfg = make_config(
            model={"d": 24, "m": 3, "activation": activation},
            data={"distribution": "exponential", "normalization": normalization},
            train={"ste": ste, "n": 200},
        )
        p = build_problem(cfg, [0, 1, 2], torch.device("cpu"))
        h = p.model.preactivations(p.Z, p.teacher)
        residual = p.model.outputs(h) - p.y
        g = p.model.coarse_gradient(p.Z, h, residual, p.teacher.clone(), p.teacher)
        assert torch.count_nonzero(g) == 0


def test_flip_noise_breaks_the_fixed_point():
    from stelab.engine.problem import build_problem
    from tests.helpers import make_config

    cfg = make_config(noise={"kind": "flip", "level": 0.1}, train={"n": 500})
    p = build_problem(cfg, [0, 1], torch.device("cpu"))
    h = p.model.preactivations(p.Z, p.teacher)
    g = p.model.coarse_gradient(p.Z, h, p.model.outputs(h) - p.y, p.teacher.clone(), p.teacher)
    assert (g.abs().sum(dim=1) > 0).all()


def test_step_size_convention():
    assert step_size_eta(0.5, 64, 1, "sign") == pytest.approx(0.5 * math.sqrt(math.pi * 32))
    assert step_size_eta(0.5, 64, 4, "step") == pytest.approx(8 * 0.5 * math.sqrt(math.pi * 32))
