"""Flip ratio and the Bop optimizer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from stelab.errors import ConfigError
from stelab.nn import Bop, FlipRatio, QuantLinear, binary_parameters, flip_ratio, real_parameters


def test_flip_ratio_of_latent_weights_uses_sign_with_zero_plus():
    before = torch.tensor([0.5, -0.5, 0.0, -1.0])
    after = torch.tensor([-0.5, -0.2, -0.0, 2.0])  # flips: first and last; -0.0 keeps +1
    assert flip_ratio(before, after) == pytest.approx(0.5)
    assert flip_ratio(torch.tensor([1.0, -1.0]), torch.tensor([1.0, 1.0]), binarize=False) == 0.5


def test_flip_ratio_tracker_counts_sign_changes_per_step():
    model = nn.Sequential(QuantLinear(2, 2, bias=False), nn.Linear(2, 1), QuantLinear(1, 2))
    tracker = FlipRatio(model)
    with torch.no_grad():
        model[0].weight.copy_(-model[0].weight)  # every one of the 4 weights flips
        model[1].weight.mul_(-1)  # a full-precision layer: not tracked
    assert tracker.update() == pytest.approx(4 / 6)
    assert tracker.per_layer == {"0": 1.0, "2": 0.0}
    assert tracker.update() == 0.0
    assert tracker.history == pytest.approx([4 / 6, 0.0])


def test_bop_flips_where_momentum_is_strong_and_agrees_with_the_weight():
    w = nn.Parameter(torch.tensor([0.3, -2.0, 1.0, -1.0, 1.0]))
    opt = Bop([w], gamma=0.5, threshold=0.2)
    assert w.tolist() == [1.0, -1.0, 1.0, -1.0, 1.0]  # binarized at construction
    w.grad = torch.tensor([1.0, -1.0, -1.0, 1.0, 0.2])
    opt.step()
    # m = 0.5 g = [0.5, -0.5, -0.5, 0.5, 0.1]; flip where |m| > 0.2 and sign(m) == sign(w)
    assert w.tolist() == [-1.0, 1.0, 1.0, -1.0, 1.0]
    w.grad = torch.zeros(5)
    opt.step()
    # m = 0.5 m_prev = [0.25, -0.25, -0.25, 0.25, 0.05]; w = [-1, 1, 1, -1, 1]: no agreement
    assert torch.allclose(opt.state[w]["m"], torch.tensor([0.25, -0.25, -0.25, 0.25, 0.05]))
    assert w.tolist() == [-1.0, 1.0, 1.0, -1.0, 1.0]


def test_bop_rejects_bad_hyperparameters():
    p = [nn.Parameter(torch.ones(2))]
    with pytest.raises(ConfigError, match="gamma"):
        Bop(p, gamma=0.0)
    with pytest.raises(ConfigError, match="threshold"):
        Bop(p, threshold=-1.0)


def test_bop_learns_a_binary_teacher():
    torch.manual_seed(0)
    d = 24
    teacher = torch.where(torch.rand(d) < 0.5, -1.0, 1.0)
    x = torch.randn(512, d)
    y = torch.sign(x @ teacher)
    layer = QuantLinear(d, 1, bias=False, weight_quantizer="sign")
    opt = Bop(binary_parameters(layer), gamma=0.1, threshold=1e-3)
    assert real_parameters(layer) == []
    start = (layer.weight.detach()[0] != teacher).sum().item()
    for _ in range(100):
        opt.zero_grad()
        out = layer(x)[:, 0] / d**0.5
        torch.nn.functional.soft_margin_loss(out, y).backward()
        opt.step()
    end = (layer.weight.detach()[0] != teacher).sum().item()
    assert set(layer.weight.detach().unique().tolist()) <= {-1.0, 1.0}
    assert start > 0 and end == 0  # Bop recovers the teacher exactly (here within a step)
