"""Inference-only layers on packed 1-bit weights, and the model that holds them.

``PackedLinear`` / ``PackedConv2d`` hold the weights' signs in the row layout of
:mod:`stelab.pack.bits` (1 bit per weight, no latent weights) and compute, for inputs

* ``sign`` (sign-family input quantizer, x in {-1, +1}):   integer dot products
  K - 2 popcount(x XOR w), the input binarized and packed on the fly: **bit for bit** the float
  model's values (exact integers in float32 up to 2^24; a bias is then added by torch);
* ``step`` (step-family input quantizer, x in {0, 1}):     popcount(x) - 2 popcount(x AND w), exact;
* ``real`` (no input quantizer):                           sum_j s_j x_j, within
  2 (K - 1) u sum_j |x_j| (u = 2^-24) of torch's float32 result (bound in
  :mod:`stelab.pack.kernels`).

A NaN reaching a binarizing layer has no sign: it is refused with a
:class:`~stelab.errors.DataError` naming the layer; with real inputs NaN propagates to the
outputs it touches.

Binary conv2d packs the channels of every pixel and counts over the kernel positions, skipping
those in the zero padding (the float model pads the quantized input with 0, a third value);
reflect / replicate / circular padding is applied first, as torch does. Real x binary conv2d
multiplies unfolded patches by packed rows.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from stelab.errors import DataError, PackError
from stelab.pack.bits import pack_bits
from stelab.pack.matmul import SERIAL_WORDS, binary_matmul, pick, real_matmul, weight_popcounts

Tensor = torch.Tensor

__all__ = ["INPUT_MODES", "PackedLinear", "PackedConv2d", "PackedModel", "binary_matmul",
           "real_matmul"]

#: how a packed layer reads its input: real values, sign(x) in {-1, +1} or step(x) in {0, 1}
INPUT_MODES = ("real", "sign", "step")

def _as_rows(x: Tensor, k: int) -> np.ndarray:
    """(..., K) tensor -> (N, K) contiguous float32 numpy (no copy when it already is)."""
    if x.dtype != torch.float32:
        x = x.to(torch.float32)
    return np.ascontiguousarray(x.detach().numpy().reshape(-1, k))


def _check_mode(mode: str) -> str:
    if mode not in INPUT_MODES:
        raise PackError(f"input mode: unknown value {mode!r}; allowed: {', '.join(INPUT_MODES)}")
    return mode


class _PackedLayer(nn.Module):
    """Packed signs as an int64 buffer (the same 64 bits; numpy views them as uint64)."""

    weight_bits: Tensor
    bias: Tensor | None

    def _set_weights(self, rows: np.ndarray, bias: Tensor | None) -> None:
        self.register_buffer("weight_bits", torch.from_numpy(rows.view(np.int64).copy()))
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())
        self.label = type(self).__name__

    def _rows(self) -> np.ndarray:
        """The packed words as uint64 (a view of the buffer, kept while the buffer is). The
        buffers are read from ``_buffers``: ``nn.Module.__getattr__`` costs ~0.7 us a read."""
        bits = self._buffers["weight_bits"]
        cached = self.__dict__.get("_rows_view")
        if cached is None or cached[0] is not bits:
            cached = (bits, bits.numpy().view(np.uint64))
            self.__dict__["_rows_view"] = cached
        return cached[1]

    def _weight_pops(self) -> np.ndarray | None:
        """The weight rows' popcounts (``step`` inputs only), computed again only when the
        buffer is replaced or changed in place (its version counter)."""
        if self.mode != "step":
            return None
        bits = self._buffers["weight_bits"]
        key = (bits, bits._version)
        cached = self.__dict__.get("_pops")
        if cached is None or cached[0] is not key[0] or cached[1] != key[1]:
            cached = (*key, weight_popcounts(self._rows()))
            self.__dict__["_pops"] = cached
        return cached[2]

    def _multiply(self, x: np.ndarray, k: int) -> np.ndarray:
        if self.mode == "real":
            return real_matmul(x, self._rows(), k)
        return binary_matmul(x, self._rows(), k, self.mode == "step", self.label,
                             self._weight_pops())


class PackedLinear(_PackedLayer):
    """y = Q_in(x) sign(W)^T + b with sign(W) stored as packed bits (see the module doc).

    Built by :func:`~stelab.pack.load_packed` for each packed ``QuantLinear`` of a model;
    inference only, on float32 inputs of shape (..., in_features) -> (..., out_features).

    Parameters
    ----------
    in_features, out_features : int
        The layer's sizes.
    rows : ndarray, shape (out_features, ceil(in_features / 64)), uint64
        The packed sign bits, one row per output (bit j set where W_j < 0;
        :func:`~stelab.pack.bits.pack_bits`).
    bias : Tensor, shape (out_features,), or None
        Kept as float32.
    mode : {"real", "sign", "step"}
        The input quantizer's family (:data:`INPUT_MODES`, module docstring).

    Raises
    ------
    PackError
        An unknown ``mode``.
    """

    def __init__(self, in_features: int, out_features: int, rows: np.ndarray,
                 bias: Tensor | None, mode: str) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.mode = _check_mode(mode)
        self._set_weights(rows, bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise DataError(f"{self.label}: input has {x.shape[-1]} features; the layer takes "
                            f"{self.in_features}")
        y = torch.from_numpy(self._multiply(_as_rows(x, self.in_features), self.in_features))
        if x.dim() != 2:
            y = y.reshape(*x.shape[:-1], self.out_features)
        bias = self._buffers["bias"]
        return y if bias is None else y.add_(bias)  # y is this call's own array

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, input={self.mode}")


class PackedConv2d(_PackedLayer):
    """conv2d(Q_in(x), sign(W)) + b on packed signs (see the module doc).

    ``signs`` (O, C/G, kh, kw): the weights' signs (+1 / -1). ``padding`` is torch's
    ``_reversed_padding_repeated_twice`` (left, right, top, bottom), so ``"same"`` and
    asymmetric paddings need no special case. Binary inputs: the weights are kept as
    (G, kh, kw, words, O/G) words for :func:`~stelab.pack.kernels.binary_conv2d`; real inputs:
    as rows of (C/G kh kw) bits for patches (unfold) times packed rows.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, dilation, groups, padding_mode
        As for ``torch.nn.Conv2d`` (tuples where torch stores tuples); input
        (N, in_channels, H, W) float32, output (N, out_channels, H', W').
    padding : (int, int, int, int)
        (left, right, top, bottom), as above.
    signs : ndarray, shape (out_channels, in_channels / groups, kh, kw)
        The weights' signs (+1 / -1; only the negative entries matter).
    bias : Tensor, shape (out_channels,), or None
        Kept as float32.
    mode : {"real", "sign", "step"}
        The input quantizer's family (:data:`INPUT_MODES`, module docstring).

    Raises
    ------
    PackError
        An unknown ``mode``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int],
                 stride: tuple[int, int], padding: tuple[int, int, int, int],
                 dilation: tuple[int, int], groups: int, padding_mode: str, signs: np.ndarray,
                 bias: Tensor | None, mode: str) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.padding, self.groups, self.padding_mode = padding, groups, padding_mode
        self.mode = _check_mode(mode)
        negative = np.asarray(signs) < 0
        if self.mode == "real":
            self._set_weights(pack_bits(negative.reshape(out_channels, -1)), bias)
        else:
            per_group = out_channels // groups
            kh, kw = kernel_size
            grouped = negative.reshape(groups, per_group, -1, kh, kw).transpose(0, 3, 4, 1, 2)
            words = pack_bits(grouped)  # (G, kh, kw, O/G, words)
            self._set_weights(np.ascontiguousarray(words.transpose(0, 1, 2, 4, 3)), bias)

    def _output_size(self, height: int, width: int) -> tuple[int, int]:
        (dh, dw), (kh, kw), (sh, sw) = self.dilation, self.kernel_size, self.stride
        return (height - dh * (kh - 1) - 1) // sh + 1, (width - dw * (kw - 1) - 1) // sw + 1

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise DataError(f"{self.label}: input of shape {tuple(x.shape)}; the layer takes "
                            f"(batch, {self.in_channels}, height, width)")
        x = x.detach().to(torch.float32)
        left, right, top, bottom = self.padding
        zeros = self.padding_mode == "zeros"
        if any(self.padding) and not zeros:  # reflect / replicate / circular: real pixels
            x = F.pad(x, self.padding, mode=self.padding_mode)
            left = right = top = bottom = 0
        height, width = self._output_size(x.shape[2] + top + bottom, x.shape[3] + left + right)
        if self.mode == "real":
            y = self._real(x, (left, right, top, bottom), height, width)
        else:
            y = self._binary(x, (top, left), height, width)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)

    def _binary(self, x: Tensor, pad: tuple[int, int], height: int, width: int) -> Tensor:
        batch, _, rows, cols = x.shape
        weights = self._rows()
        bits = np.empty((batch, rows, cols, self.groups, weights.shape[3]), dtype=np.uint64)
        out = np.empty((batch, self.out_channels, height, width), dtype=np.float32)
        work = out.size * self.kernel_size[0] * self.kernel_size[1] * weights.shape[3]
        nans = pick("pack_pixels", work, SERIAL_WORDS)(np.ascontiguousarray(x.numpy()),
                                                       self.groups, self.mode == "step", bits)
        if nans:
            raise DataError(f"{self.label}: {nans} NaN input value(s) reach a binary layer; "
                            "a NaN has no sign (clean the input, or find where it was "
                            "produced)")
        pick("binary_conv2d", work, SERIAL_WORDS)(
            bits, weights, self.in_channels // self.groups, self.stride, pad, self.dilation,
            self.mode == "step", out)
        return torch.from_numpy(out)

    def _real(self, x: Tensor, pad: tuple[int, int, int, int], height: int, width: int
              ) -> Tensor:
        if any(pad):
            x = F.pad(x, pad)  # zeros: add nothing to a real x binary sum
        batch = x.shape[0]
        cols = F.unfold(x, self.kernel_size, dilation=self.dilation, stride=self.stride)
        k = cols.shape[1] // self.groups
        per_group = self.out_channels // self.groups
        rows = self._rows()
        parts = []
        for g in range(self.groups):
            patches = cols[:, g * k:(g + 1) * k, :].transpose(1, 2).reshape(-1, k)
            parts.append(real_matmul(np.ascontiguousarray(patches.numpy()),
                                     rows[g * per_group:(g + 1) * per_group], k))
        y = torch.from_numpy(np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0])
        y = y.reshape(batch, height * width, self.out_channels).transpose(1, 2)
        return y.reshape(batch, self.out_channels, height, width)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"groups={self.groups}, bias={self.bias is not None}, input={self.mode}")


#: layers that fix how many dimensions one sample has (the first one met decides)
_SAMPLE_DIMS: tuple[tuple[tuple[type[nn.Module], ...], int], ...] = (
    ((PackedLinear, nn.Linear, nn.BatchNorm1d), 1),
    ((PackedConv2d, nn.Conv2d, nn.BatchNorm2d), 3),
)


def _sample_dims(net: nn.Module) -> int | None:
    """Dimensions of one sample (1: features, 3: channels x height x width), from the first
    layer that fixes them; None when a reshaping layer (Flatten) comes first."""
    for module in net.modules():
        for types, dims in _SAMPLE_DIMS:
            if isinstance(module, types):
                return dims
        if isinstance(module, nn.Flatten):
            return None
    return None


def _as_tensor(x: object) -> Tensor:
    """A float32 tensor from a tensor, numpy array or nested list of real numbers."""
    if isinstance(x, Tensor):
        if x.is_complex() or x.dtype == torch.bool:
            raise DataError(f"packed model: input has dtype {x.dtype}; expected real numbers")
        return x if x.dtype == torch.float32 else x.to(torch.float32)
    try:
        array = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise DataError(f"packed model: input of type {type(x).__name__} is not an array "
                        f"({exc}); expected a torch tensor or numpy array") from None
    if array.dtype.kind not in "iuf":
        raise DataError(f"packed model: input of type {type(x).__name__} with dtype "
                        f"{array.dtype}; expected real numbers (a torch tensor or numpy array)")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


class PackedModel(nn.Module):
    """The module :func:`stelab.pack.load_packed` returns: the rebuilt network, always in eval
    mode, its forward run without autograd.

    Parameters
    ----------
    net : torch.nn.Module
        The rebuilt network (packed layers and torch layers).
    metadata : dict of str to str
        The file's metadata (format, versions, architecture JSON), kept as ``metadata``.

    Notes
    -----
    Calling it: ``packed(x)`` with ``x`` a torch tensor, a numpy array or a nested list of real
    numbers (any real dtype, read as float32), of shape (batch, ...) or one sample without the
    batch dimension ((features,) for a model that starts with a linear layer, (channels,
    height, width) for one that starts with a conv layer); returns a float32 torch tensor of
    shape (batch, outputs), or (outputs,) for one sample. An input the network cannot take gets
    a one-line :class:`~stelab.errors.DataError`.
    """

    def __init__(self, net: nn.Module, metadata: dict[str, str]) -> None:
        super().__init__()
        self.net = net
        self.metadata = dict(metadata)
        self.sample_dims = _sample_dims(net)
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> PackedModel:
        if mode:
            raise PackError("a packed model is inference-only: train() is not allowed; train "
                            "the float model and export it again")
        return super().train(False)

    def forward(self, x: Tensor | np.ndarray) -> Tensor:
        """The network's outputs for ``x`` (see the class doc for shapes and dtypes)."""
        x = _as_tensor(x)
        if x.requires_grad:
            x = x.detach()  # the weights are frozen: with a detached input no graph is built
        single = self.sample_dims is not None and x.dim() == self.sample_dims
        try:
            y = _run_layers(self.net, x.unsqueeze(0) if single else x)
        except DataError:
            raise
        except (RuntimeError, ValueError, IndexError) as exc:
            text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DataError(f"packed model: input of shape {tuple(x.shape)} cannot be "
                            f"taken ({text})") from None
        return y.squeeze(0) if single else y


def _run_layers(net: nn.Module, x: Tensor) -> Tensor:
    """``net(x)`` calling each layer's forward directly: a Sequential's and every module's
    ``__call__`` (hooks, autograd bookkeeping) cost microseconds a layer at batch 1."""
    if type(net) is nn.Sequential:
        for layer in net:
            x = _run_layers(layer, x)
        return x
    return net.forward(x)
