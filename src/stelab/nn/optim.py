"""Bop, the latent-free optimizer for binary weights (Helwegen et al., NeurIPS 2019,
"Latent Weights Do Not Exist: Rethinking Binarized Neural Network Optimization").

The binary weights w in {-1, +1} are the parameters themselves; Bop keeps an exponential moving
average m of their gradients g and flips a weight when the average is strong and agrees with it:

    m <- (1 - gamma) m + gamma g
    w <- -w   where |m| > tau and sign(m) == sign(w)

(a positive gradient on a positive weight says the loss falls if the weight goes down, i.e.
flips). The gradient g comes through the layer's weight quantizer; use one whose surrogate passes
gradient at |w| = 1 (``sign``, ``ste_sign``, ``sign:clipped`` all do). Other parameters (biases,
batch norm) need an ordinary optimizer: :func:`binary_parameters` / :func:`real_parameters` split
a model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from stelab.errors import ConfigError
from stelab.nn.layers import quantized_layers
from stelab.quantizers import sign

__all__ = ["Bop", "binary_parameters", "real_parameters"]


def binary_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The weights of the quantized layers whose weight quantizer is 1-bit.

    Parameters
    ----------
    model : torch.nn.Module
        Any module.

    Returns
    -------
    list of torch.nn.Parameter
        The latent weights of its 1-bit quantized layers, in ``named_modules`` order (give them
        to :class:`Bop`).
    """
    return [
        layer.weight for _n, layer in quantized_layers(model) if layer.weight_precision == 1
    ]


def real_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every parameter of ``model`` that :func:`binary_parameters` does not return.

    Parameters
    ----------
    model : torch.nn.Module
        Any module.

    Returns
    -------
    list of torch.nn.Parameter
        Biases, normalization parameters, real layers' weights (for an ordinary optimizer).
    """
    binary = {id(p) for p in binary_parameters(model)}
    return [p for p in model.parameters() if id(p) not in binary]


class Bop(torch.optim.Optimizer):
    """Bop: flip w where |m| > threshold and sign(m) == sign(w), m the EMA of the gradient.

    At construction every parameter is replaced by sign(w) (sign(0) = +1), so it holds binary
    values from the first step on.

    Parameters
    ----------
    params : iterable of torch.nn.Parameter (or param-group dicts)
        The binary weights (:func:`binary_parameters`); overwritten by their sign, in place.
    gamma : float
        The adaptivity rate of the gradient average, in (0, 1] (default 1e-4).
    threshold : float
        tau >= 0, the strength |m| a flip needs (default 1e-8; units of the gradient).

    Raises
    ------
    ConfigError
        ``gamma`` outside (0, 1] or ``threshold`` < 0 (or nan).

    Examples
    --------
    >>> import torch
    >>> w = torch.nn.Parameter(torch.tensor([0.3, -0.7, 0.0]))
    >>> opt = Bop([w], gamma=1.0, threshold=0.5)
    >>> w.data
    tensor([ 1., -1.,  1.])
    >>> w.grad = torch.tensor([1.0, 1.0, 0.1])
    >>> opt.step()
    >>> w.data
    tensor([-1., -1.,  1.])
    """

    def __init__(
        self, params: Iterable[nn.Parameter], gamma: float = 1e-4, threshold: float = 1e-8
    ) -> None:
        if not 0.0 < gamma <= 1.0:
            raise ConfigError(f"gamma: {gamma} is outside the allowed range (0, 1]")
        if not threshold >= 0.0:
            raise ConfigError(f"threshold: {threshold} must be >= 0")
        super().__init__(params, {"gamma": gamma, "threshold": threshold})
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    p.copy_(sign(p))

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            gamma, tau = group["gamma"], group["threshold"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "m" not in state:
                    state["m"] = torch.zeros_like(p)
                m = state["m"]
                m.mul_(1.0 - gamma).add_(p.grad, alpha=gamma)
                flip = (m.abs() > tau) & (sign(m) == sign(p))
                p.copy_(torch.where(flip, -p, p))
        return loss
