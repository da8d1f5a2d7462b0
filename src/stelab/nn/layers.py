"""Binary layers: ``QuantLinear`` and ``QuantConv2d``.

A quantized layer computes its torch counterpart on quantized operands (as in bitorch):

    QuantLinear(x) = linear(Q_in(x), Q_w(W), b)          Q_in, Q_w: quantizers (or identity)
    QuantConv2d(x) = conv2d(Q_in(x), Q_w(W), b, ...)

Q_w(W) = sign(W) with a surrogate gradient by default (the latent weights W stay real and are
what the optimizer updates); Q_in = None leaves the inputs real (the usual choice for the first
layer). A quantizer is a name of :data:`stelab.quantizers.QUANTIZERS` (or ``"<activation>:<ste>"``)
or any callable Tensor -> Tensor; a callable may carry a ``precision`` attribute (bits per
value, read by :func:`stelab.nn.summary`; 1 when absent).

``weight_clip = c`` keeps the latent weights in [-c, c] (BinaryConnect's clipping, Larq's
``weight_clip`` kernel constraint): as in Larq it just applies, after every ``step()`` of any
torch optimizer that holds the layer's weight (a global optimizer step post-hook, registered
when the first quantized layer is built), with no call to make. :meth:`clip_weights_`,
:func:`clip_weights_` and :func:`attach_weight_clip` remain for explicit use (clamping is
idempotent, so calling them too changes nothing).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.optimizer import register_optimizer_step_post_hook

from stelab.errors import ConfigError
from stelab.quantizers import Quantizer, get_quantizer

Tensor = torch.Tensor
QuantizerLike = str | Callable[[Tensor], Tensor] | None

__all__ = [
    "QuantLinear",
    "QuantConv2d",
    "QuantizedLayer",
    "Scale",
    "resolve_quantizer",
    "quantizer_precision",
    "quantized_layers",
    "clip_weights_",
    "attach_weight_clip",
]


def resolve_quantizer(spec: QuantizerLike, field_name: str) -> Callable[[Tensor], Tensor] | None:
    """A registry name -> its :class:`~stelab.quantizers.Quantizer`; a callable or None as is."""
    if spec is None:
        return None
    if isinstance(spec, str):
        return get_quantizer(spec, field_name)
    if callable(spec):
        return spec
    raise ConfigError(
        f"{field_name}: expected a quantizer name, a callable or None, got {type(spec).__name__}"
    )


def quantizer_precision(quantizer: Callable[[Tensor], Tensor] | None) -> int:
    """Bits per value of a quantizer's output: its ``precision`` attribute, 1 if it has none,
    32 for no quantizer."""
    if quantizer is None:
        return 32
    return int(getattr(quantizer, "precision", 1))


def _quantizer_name(quantizer: Callable[[Tensor], Tensor] | None) -> str:
    if quantizer is None:
        return "None"
    if isinstance(quantizer, Quantizer):
        return repr(quantizer.name)
    return getattr(quantizer, "__name__", type(quantizer).__name__)


def _check_clip(weight_clip: float | None) -> float | None:
    if weight_clip is not None and not weight_clip > 0:
        raise ConfigError(f"weight_clip: {weight_clip} must be > 0, or None for no clipping")
    return None if weight_clip is None else float(weight_clip)


class QuantizedLayer:
    """Mixin of the quantized layers: quantizers, latent-weight clipping, the binary weights.

    Not built directly: :class:`QuantLinear` and :class:`QuantConv2d` take its parameters
    (``input_quantizer``, ``weight_quantizer``, ``weight_clip``) and ``isinstance(m,
    QuantizedLayer)`` is how :func:`quantized_layers` finds them.

    Attributes
    ----------
    input_quantizer, weight_quantizer : callable or None
        The resolved Q_in and Q_w (None: identity).
    weight_clip : float or None
        The clamp c of the latent weights, or None.
    """

    weight: nn.Parameter
    input_quantizer: Callable[[Tensor], Tensor] | None
    weight_quantizer: Callable[[Tensor], Tensor] | None
    weight_clip: float | None

    def _init_quantizers(
        self,
        input_quantizer: QuantizerLike,
        weight_quantizer: QuantizerLike,
        weight_clip: float | None,
    ) -> None:
        self.input_quantizer = resolve_quantizer(input_quantizer, "input_quantizer")
        self.weight_quantizer = resolve_quantizer(weight_quantizer, "weight_quantizer")
        self.weight_clip = _check_clip(weight_clip)
        _enforce_weight_clip(self)

    def quantize_input(self, x: Tensor) -> Tensor:
        return x if self.input_quantizer is None else self.input_quantizer(x)

    def quantized_weight(self) -> Tensor:
        """Q_w(W): the weights the forward pass uses (differentiable through the surrogate)."""
        return self.weight if self.weight_quantizer is None else self.weight_quantizer(self.weight)

    @property
    def weight_precision(self) -> int:
        """Bits per weight at inference (1 for binary weights, 32 when not quantized)."""
        return quantizer_precision(self.weight_quantizer)

    @torch.no_grad()
    def clip_weights_(self) -> None:
        """Clamp the latent weights into [-weight_clip, weight_clip] in place (no-op if None)."""
        if self.weight_clip is not None:
            self.weight.clamp_(-self.weight_clip, self.weight_clip)

    def _quant_repr(self) -> str:
        text = (
            f"input_quantizer={_quantizer_name(self.input_quantizer)}, "
            f"weight_quantizer={_quantizer_name(self.weight_quantizer)}"
        )
        return text if self.weight_clip is None else f"{text}, weight_clip={self.weight_clip}"


class QuantLinear(QuantizedLayer, nn.Linear):
    """``torch.nn.Linear`` on quantized inputs and weights: y = Q_in(x) Q_w(W)^T + b.

    Defaults: real inputs, weights Q_w = ``"sign"`` (sign(0) = +1, identity surrogate).

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the last dimension of the input (..., in_features) and of the output
        (..., out_features); the latent weight has shape (out_features, in_features).
    bias : bool
        Whether to add a real bias of shape (out_features,) (default True).
    device, dtype : optional
        As for ``torch.nn.Linear`` (default: torch's default device and float32).
    input_quantizer : str, callable or None, keyword-only
        Q_in: a quantizer name (:data:`stelab.quantizers.QUANTIZERS` or ``"<activation>:<ste>"``),
        a callable Tensor -> Tensor, or None (default: inputs stay real).
    weight_quantizer : str, callable or None, keyword-only
        Q_w, as ``input_quantizer``; default ``"sign"``.
    weight_clip : float or None, keyword-only
        c > 0: the latent weights are clamped to [-c, c] after every optimizer step (module
        docstring); None (default): no clipping.

    Raises
    ------
    ConfigError
        An unknown quantizer name, a quantizer that is neither a name, a callable nor None, or
        ``weight_clip`` <= 0.

    Examples
    --------
    >>> import torch
    >>> layer = QuantLinear(3, 2, bias=False)
    >>> with torch.no_grad():
    ...     _ = layer.weight.copy_(torch.tensor([[0.5, -2.0, 0.0], [-0.1, 0.2, 0.3]]))
    >>> layer(torch.tensor([[1.0, 1.0, 1.0]]))
    tensor([[1., 1.]], grad_fn=<MmBackward0>)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        input_quantizer: QuantizerLike = None,
        weight_quantizer: QuantizerLike = "sign",
        weight_clip: float | None = None,
    ) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self._init_quantizers(input_quantizer, weight_quantizer, weight_clip)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(self.quantize_input(x), self.quantized_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._quant_repr()}"


class QuantConv2d(QuantizedLayer, nn.Conv2d):
    """``torch.nn.Conv2d`` on quantized inputs and weights: y = conv2d(Q_in(x), Q_w(W)) + b.

    Note: with ``padding_mode="zeros"`` the padding is added after Q_in, so a sign-quantized
    input is padded with 0, a third value (as in Larq's default ``pad_values=0``).

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode
        As for ``torch.nn.Conv2d``: input (N, in_channels, H, W), output
        (N, out_channels, H', W'), latent weight (out_channels, in_channels / groups, kH, kW).
    device, dtype : optional
        As for ``torch.nn.Conv2d``.
    input_quantizer : str, callable or None, keyword-only
        Q_in: a quantizer name (:data:`stelab.quantizers.QUANTIZERS` or ``"<activation>:<ste>"``),
        a callable Tensor -> Tensor, or None (default: inputs stay real).
    weight_quantizer : str, callable or None, keyword-only
        Q_w, as ``input_quantizer``; default ``"sign"``.
    weight_clip : float or None, keyword-only
        c > 0: the latent weights are clamped to [-c, c] after every optimizer step (module
        docstring); None (default): no clipping.

    Raises
    ------
    ConfigError
        An unknown quantizer name, a quantizer that is neither a name, a callable nor None, or
        ``weight_clip`` <= 0.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: str | int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
        *,
        input_quantizer: QuantizerLike = None,
        weight_quantizer: QuantizerLike = "sign",
        weight_clip: float | None = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
            padding_mode=padding_mode,
            device=device,
            dtype=dtype,
        )
        self._init_quantizers(input_quantizer, weight_quantizer, weight_clip)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(self.quantize_input(x), self.quantized_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._quant_repr()}"


class Scale(nn.Module):
    """y = factor * x: a fixed scale (e.g. 1/sqrt(fan_in) after a binary layer, so that a
    surrogate window such as 1[|x| <= 1] means the same at every width).

    Parameters
    ----------
    factor : float
        The fixed multiplier (not trained); the output has the input's shape and dtype.
    """

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = float(factor)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


#: every quantized layer alive (weakly held): the step hook clips those whose weight was stepped
_LAYERS: weakref.WeakSet[QuantizedLayer] = weakref.WeakSet()
_HOOK: list[Any] = []


def _enforce_weight_clip(layer: QuantizedLayer) -> None:
    """Track ``layer`` and, once per process, register :func:`_clip_after_step` as a global
    optimizer step post-hook (Larq's kernel constraint: it applies without being asked)."""
    _LAYERS.add(layer)
    if not _HOOK:
        _HOOK.append(register_optimizer_step_post_hook(_clip_after_step))


def _clip_after_step(optimizer: torch.optim.Optimizer, *_args: Any) -> None:
    """After ``optimizer.step()``: clamp the weights it holds of every layer with a weight_clip
    (a layer whose weight_clip was set after construction too)."""
    clipped = [layer for layer in list(_LAYERS) if layer.weight_clip is not None]
    if not clipped:
        return
    stepped = {id(p) for group in optimizer.param_groups for p in group["params"]}
    for layer in clipped:
        if id(layer.weight) in stepped:
            layer.clip_weights_()


def quantized_layers(model: nn.Module) -> Iterator[tuple[str, QuantizedLayer]]:
    """(name, layer) for every quantized layer of ``model`` (including ``model`` itself).

    Parameters
    ----------
    model : torch.nn.Module
        Any module.

    Returns
    -------
    iterator of (str, QuantizedLayer)
        The dotted name from ``model.named_modules()`` ("" for ``model`` itself) and the layer.
    """
    for name, module in model.named_modules():
        if isinstance(module, QuantizedLayer):
            yield name, module


def clip_weights_(model: nn.Module) -> None:
    """Apply every quantized layer's ``weight_clip`` (call after ``optimizer.step()``).

    Parameters
    ----------
    model : torch.nn.Module
        Its quantized layers' latent weights are clamped in place (layers without a clip are
        left alone).

    Returns
    -------
    None
    """
    for _name, layer in quantized_layers(model):
        layer.clip_weights_()


def attach_weight_clip(optimizer: torch.optim.Optimizer, model: nn.Module) -> Any:
    """Run :func:`clip_weights_` on ``model`` after every ``optimizer.step()``; returns the hook
    handle (``handle.remove()`` detaches it). No longer needed: ``weight_clip`` is enforced after
    every step without it (module docstring); kept so existing code runs unchanged.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        The optimizer whose ``step()`` triggers the clamp.
    model : torch.nn.Module
        The model whose quantized layers are clamped (:func:`clip_weights_`).

    Returns
    -------
    torch.utils.hooks.RemovableHandle
        The hook's handle.
    """
    return optimizer.register_step_post_hook(lambda *_args, **_kwargs: clip_weights_(model))
