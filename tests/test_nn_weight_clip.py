"""weight_clip is enforced after every optimizer step, as Larq's kernel constraint (issue 25)."""

from __future__ import annotations

import torch

from stelab.nn import QuantConv2d, QuantLinear


def test_weight_clip_applies_after_a_plain_sgd_step():
    torch.manual_seed(0)
    layer = QuantLinear(8, 4, weight_clip=1.0)
    opt = torch.optim.SGD(layer.parameters(), lr=100.0)
    layer(torch.randn(16, 8)).pow(2).sum().backward()
    opt.step()
    assert float(layer.weight.detach().abs().max()) <= 1.0


def test_weight_clip_set_later_and_other_optimizers():
    torch.manual_seed(1)
    conv = QuantConv2d(2, 3, 3)
    free = QuantLinear(4, 4)  # no clip: untouched
    conv.weight_clip = 0.5
    opt = torch.optim.Adam([*conv.parameters(), *free.parameters()], lr=10.0)
    (conv(torch.randn(2, 2, 5, 5)).sum() + free(torch.randn(3, 4)).pow(2).sum()).backward()
    opt.step()
    assert float(conv.weight.detach().abs().max()) <= 0.5
    assert float(free.weight.detach().abs().max()) > 1.0
