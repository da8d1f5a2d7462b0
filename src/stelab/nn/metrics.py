"""Flip ratio: the share of binary weights that changed sign in a training step.

    flip_ratio(W_before, W_after) = #{i : Q(W_before)_i != Q(W_after)_i} / #W

with Q the layer's weight quantizer (sign, sign(0) = +1, by default). Larq's ``FlipRatio``
metric; a useful health signal: it should fall as training settles, and a flip ratio stuck at
0 from the start means the latent weights are not moving across 0 at all.
"""

from __future__ import annotations

import torch
from torch import nn

from stelab.nn.layers import QuantizedLayer, quantized_layers
from stelab.quantizers import sign

Tensor = torch.Tensor

__all__ = ["flip_ratio", "FlipRatio"]


def flip_ratio(before: Tensor, after: Tensor, binarize: bool = True) -> float:
    """Share of entries whose binary value differs between ``before`` and ``after``.

    With ``binarize`` the inputs are latent weights and sign(.) (sign(0) = +1) is taken first;
    otherwise they are compared as given (already quantized values).

    Parameters
    ----------
    before, after : Tensor, same shape, any float dtype
        The weights at two moments (latent weights with ``binarize``, else quantized values).
    binarize : bool
        Take sign(.) of both first (default True).

    Returns
    -------
    float
        The share in [0, 1] (0.0 for empty tensors).

    Raises
    ------
    ValueError
        The shapes differ.

    Examples
    --------
    >>> import torch
    >>> flip_ratio(torch.tensor([0.5, -0.2, 0.0, 1.0]), torch.tensor([0.4, 0.1, -0.3, 2.0]))
    0.5
    """
    if before.shape != after.shape:
        raise ValueError(
            f"flip_ratio: shapes differ: {tuple(before.shape)} vs {tuple(after.shape)}"
        )
    if before.numel() == 0:
        return 0.0
    if binarize:
        before, after = sign(before), sign(after)
    return float((before != after).to(torch.float64).mean())


def _binary_weights(layer: QuantizedLayer) -> Tensor:
    with torch.no_grad():
        return layer.quantized_weight().detach().clone()


class FlipRatio:
    """Tracks the binary weights of every quantized layer of ``model`` with binary weights.

    ``update()`` returns the flip ratio since the previous ``update()`` (or construction /
    ``reset()``) over all binary weights together; ``per_layer`` holds the last ratio of each
    layer and ``history`` every overall ratio returned so far.

        tracker = FlipRatio(model)
        for batch in data:
            ...; optimizer.step()
            ratio = tracker.update()

    Parameters
    ----------
    model : torch.nn.Module
        The quantized layers with 1-bit weights are tracked (layers are found once, at
        construction).

    Attributes
    ----------
    per_layer : dict of str to float
        The last ratio of each tracked layer, by its name in ``model``.
    history : list of float
        Every overall ratio ``update()`` returned.
    """

    def __init__(self, model: nn.Module) -> None:
        self._layers = {
            name: layer for name, layer in quantized_layers(model) if layer.weight_precision == 1
        }
        self.per_layer: dict[str, float] = {}
        self.history: list[float] = []
        self.reset()

    def reset(self) -> None:
        """Take the current binary weights as the reference."""
        self._last = {name: _binary_weights(layer) for name, layer in self._layers.items()}

    def update(self) -> float:
        """The share in [0, 1] of binary weights (all tracked layers together) that changed
        since the reference; the current weights become the new reference. 0.0 without
        tracked weights."""
        flipped = total = 0
        for name, layer in self._layers.items():
            current = _binary_weights(layer)
            changed = int((current != self._last[name]).sum())
            self.per_layer[name] = changed / max(1, current.numel())
            flipped += changed
            total += current.numel()
            self._last[name] = current
        ratio = flipped / total if total else 0.0
        self.history.append(ratio)
        return ratio
