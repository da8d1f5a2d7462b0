"""ONNX export: the float32 inference graph of a binary model, in standard ONNX operators.

:func:`export_onnx` writes what ``model.eval()`` computes, for every model
:func:`~stelab.pack.export_packed` takes (a ``Sequential`` of :data:`SUPPORTED_TYPES` or any
module that traces to a chain of them, :mod:`stelab.pack.chain`), with the default ONNX domain
only (opset :data:`OPSET`), so that onnxruntime and any other ONNX runtime run it:

* binary weights are stored as float32 signs, sign(W) with sign(0) = +1;
* the input quantizers as elementwise ops: ``sign`` -> Where(x >= 0, 1, -1),
  ``step`` -> Cast(x > 0), each keeping NaN as NaN (as :func:`stelab.quantizers.sign` does);
* linear -> MatMul (+ Add of the bias), conv2d -> Conv (zero padding after the quantizer, as
  the float model pads; reflect / replicate padding -> Pad), batch norm (running statistics)
  -> Mul + Add by alpha = gamma / sqrt(var + eps) and beta - mean alpha, computed by torch in
  float32 as its own inference kernel does; Flatten, Relu, Clip (Hardtanh), Sigmoid, Tanh,
  LeakyRelu, Softmax, LogSoftmax, Identity (Dropout), Mul (Scale);
* the batch dimension is symbolic (``batch``): any batch size runs.

With ``qonnx=True`` the binary weights and ``sign`` inputs are QONNX ``BipolarQuant`` nodes
instead (see :func:`export_onnx`).

Exactness: through binary x binary layers the products are integers, exact in float32 up to
2^24 in any summation order, so ONNX Runtime's outputs equal torch's bit for bit. A bias may
be added inside the sum by either runtime (torch's addmm, onnxruntime's fused Gemm, in blocks
of K): then each output is within (K + 1) u (K + |b|) of the exact y + b (a sum of K + 1
terms in some order), and the runtimes within twice that of each other. Where inputs or
weights are real, the two runtimes sum in different orders: each output of a dot product of
length K may differ by at most 2 (K - 1) u sum_j |x_j w_j| (u = 2^-24, two summation orders),
and a batch norm by a rounding of its Mul + Add (torch may fuse them). Predictions (argmax)
are equal unless two outputs are within these bounds of each other.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from stelab.errors import PackError
from stelab.nn.layers import QuantizedLayer, Scale
from stelab.pack.chain import as_chain, exact_type
from stelab.pack.format import SUPPORTED_TYPES, _is_packed_weight, _quantizer_spec
from stelab.provenance import __version__
from stelab.quantizers import get_quantizer, sign

__all__ = ["OPSET", "QONNX_DOMAIN", "export_onnx"]

#: the ONNX opset of the exported graphs (default domain only)
OPSET = 17
#: the domain of QONNX's custom operators (BipolarQuant)
QONNX_DOMAIN = "qonnx.custom_op.general"
_PAD_MODES = {"reflect": "reflect", "replicate": "edge"}


class _Graph:
    """Nodes and initializers of the graph being written, with unique names."""

    def __init__(self, qonnx: bool = False) -> None:
        from onnx import helper, numpy_helper

        self.qonnx = qonnx
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.count = 0

    def const(self, name: str, value: np.ndarray | float) -> str:
        array = np.asarray(value, dtype=np.float32)
        self.initializers.append(self.numpy_helper.from_array(array, name))
        return name

    def op(self, kind: str, inputs: list[str], prefix: str, **attrs: Any) -> str:
        self.count += 1
        out = f"{prefix}/{kind}_{self.count}"
        self.nodes.append(self.helper.make_node(kind, inputs, [out], name=out, **attrs))
        return out


def _bipolar(g: _Graph, x: str, prefix: str) -> str:
    """QONNX's BipolarQuant with scale 1: +1 where x >= 0, else -1 (NaN -> -1)."""
    return g.op("BipolarQuant", [x, g.const(f"{prefix}.bipolar_scale", 1.0)], prefix,
                domain=QONNX_DOMAIN)


def _binarize(g: _Graph, x: str, quantizer: str, prefix: str) -> str:
    """sign(x) in {-1, +1} (sign(0) = +1) or step(x) = 1[x > 0], NaN kept as NaN (QONNX:
    sign is BipolarQuant)."""
    zero = g.const(f"{prefix}.zero", 0.0)
    is_sign = get_quantizer(quantizer, "input_quantizer").activation == "sign"
    if is_sign and g.qonnx:
        return _bipolar(g, x, f"{prefix}.input")
    if is_sign:
        test = g.op("GreaterOrEqual", [x, zero], prefix)
        value = g.op("Where", [test, g.const(f"{prefix}.plus", 1.0),
                               g.const(f"{prefix}.minus", -1.0)], prefix)
    else:
        value = g.op("Cast", [g.op("Greater", [x, zero], prefix)], prefix, to=1)  # FLOAT
    return g.op("Where", [g.op("IsNaN", [x], prefix), x, value], prefix)


def _weight(g: _Graph, layer: nn.Module, path: str, transpose: bool) -> str:
    """The weights as a graph value: float32 sign(W) for binary weights (QONNX: the latent W
    through BipolarQuant), W itself for float weights; transposed (for MatMul) if asked."""
    weight = layer.weight.detach().float()
    binary = isinstance(layer, QuantizedLayer) and _is_packed_weight(layer, path)
    if binary and torch.isnan(weight).any():
        raise PackError(f"export_onnx: layer '{path}' has NaN latent weights; a NaN has no sign")
    if binary and not g.qonnx:
        weight = sign(weight)
    array = weight.cpu().numpy()
    name = g.const(f"{path}.weight" + ("_t" if transpose else ""),
                   array.T.copy() if transpose else array)
    return _bipolar(g, name, f"{path}.weight") if binary and g.qonnx else name


def _quantized_input(g: _Graph, layer: nn.Module, x: str, path: str) -> str:
    if not isinstance(layer, QuantizedLayer):
        return x
    name = _quantizer_spec(layer, "input", path)
    return x if name is None else _binarize(g, x, name, path)


def _linear(g: _Graph, layer: nn.Linear, x: str, path: str) -> str:
    x = _quantized_input(g, layer, x, path)
    out = g.op("MatMul", [x, _weight(g, layer, path, transpose=True)], path)
    if layer.bias is not None:
        out = g.op("Add", [out, g.const(f"{path}.bias", layer.bias.detach().numpy())], path)
    return out


def _conv(g: _Graph, layer: nn.Conv2d, x: str, path: str) -> str:
    x = _quantized_input(g, layer, x, path)
    left, right, top, bottom = layer._reversed_padding_repeated_twice
    if layer.padding_mode != "zeros" and any((left, right, top, bottom)):
        if layer.padding_mode not in _PAD_MODES:
            raise PackError(f"export_onnx: layer '{path}' has padding_mode "
                            f"{layer.padding_mode!r}; supported: zeros, reflect, replicate")
        pads = np.array([0, 0, top, left, 0, 0, bottom, right], dtype=np.int64)
        g.initializers.append(g.numpy_helper.from_array(pads, f"{path}.pads"))
        x = g.op("Pad", [x, f"{path}.pads"], path, mode=_PAD_MODES[layer.padding_mode])
        left = right = top = bottom = 0
    inputs = [x, _weight(g, layer, path, transpose=False)]
    if layer.bias is not None:
        inputs.append(g.const(f"{path}.bias", layer.bias.detach().numpy()))
    return g.op("Conv", inputs, path, kernel_shape=list(layer.kernel_size),
                strides=list(layer.stride), dilations=list(layer.dilation), group=layer.groups,
                pads=[top, left, bottom, right])


def _batchnorm(g: _Graph, layer: nn.BatchNorm1d | nn.BatchNorm2d, x: str, path: str,
               rank: int) -> str:
    if layer.running_mean is None or layer.running_var is None:
        raise PackError(f"export_onnx: layer '{path}' has track_running_stats=False (it "
                        "normalizes by each batch's statistics); supported: running statistics")
    with torch.no_grad():  # torch's inference kernel: alpha = gamma / sqrt(var + eps)
        alpha = 1.0 / torch.sqrt(layer.running_var + layer.eps)
        if layer.weight is not None:
            alpha = alpha * layer.weight
        beta = -layer.running_mean * alpha
        if layer.bias is not None:
            beta = layer.bias - layer.running_mean * alpha
    shape = (-1,) + (1,) * (rank - 2)  # channels on axis 1
    scaled = g.op("Mul", [x, g.const(f"{path}.alpha", alpha.reshape(shape).numpy())], path)
    return g.op("Add", [scaled, g.const(f"{path}.beta", beta.reshape(shape).numpy())], path)


def _softmax(g: _Graph, layer: nn.Softmax | nn.LogSoftmax, x: str, path: str) -> str:
    if layer.dim is None:
        raise PackError(f"export_onnx: layer '{path}' ({type(layer).__name__}) has dim=None; "
                        "give it an explicit dim")
    return g.op(type(layer).__name__, [x], path, axis=layer.dim)


def _simple(g: _Graph, layer: nn.Module, x: str, path: str) -> str | None:
    """Layers of one ONNX op without weights; None if ``layer`` is not one."""
    kind = type(layer)
    if kind is nn.Flatten:
        if (layer.start_dim, layer.end_dim) != (1, -1):
            raise PackError(f"export_onnx: layer '{path}' is Flatten({layer.start_dim}, "
                            f"{layer.end_dim}); supported: Flatten(1, -1)")
        return g.op("Flatten", [x], path, axis=1)
    unary = {nn.ReLU: "Relu", nn.Sigmoid: "Sigmoid", nn.Tanh: "Tanh", nn.Identity: "Identity"}
    if kind in unary:
        return g.op(unary[kind], [x], path)
    if kind is nn.LeakyReLU:
        return g.op("LeakyRelu", [x], path, alpha=float(layer.negative_slope))
    if kind is nn.Hardtanh:
        return g.op("Clip", [x, g.const(f"{path}.min", layer.min_val),
                             g.const(f"{path}.max", layer.max_val)], path)
    if kind is Scale:
        return g.op("Mul", [x, g.const(f"{path}.factor", layer.factor)], path)
    if kind in (nn.Softmax, nn.LogSoftmax):
        return _softmax(g, layer, x, path)
    return None


def _emit(g: _Graph, layer: nn.Module, x: str, path: str, rank: int) -> str:
    kind = exact_type(layer)
    if kind in ("Linear", "QuantLinear"):
        return _linear(g, layer, x, path)
    if kind in ("Conv2d", "QuantConv2d"):
        return _conv(g, layer, x, path)
    if kind in ("BatchNorm1d", "BatchNorm2d"):
        return _batchnorm(g, layer, x, path, rank)
    out = _simple(g, layer, x, path)
    if out is None:
        raise PackError(f"export_onnx: layer '{path}' is a {type(layer).__name__}; supported "
                        f"types: {', '.join(SUPPORTED_TYPES)}")
    return out


def _leaves(module: nn.Module, path: str = "") -> list[tuple[str, nn.Module]]:
    if type(module) is nn.Sequential:
        return [leaf for name, child in module.named_children()
                for leaf in _leaves(child, f"{path}.{name}" if path else name)]
    return [(path or "model", module)]


def _check_shape(input_shape: Any) -> tuple[int, ...]:
    shape = (input_shape,) if isinstance(input_shape, int) else input_shape
    try:
        shape = tuple(shape)
    except TypeError:
        shape = ()
    if not shape or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                            for s in shape):
        raise PackError(f"export_onnx: input_shape {input_shape!r} must be the shape of one "
                        "sample as positive integers, e.g. (64,) or (1, 8, 8); the batch "
                        "dimension is added (and dynamic)")
    return shape


def _trial_run(layers: list[tuple[str, nn.Module]], shape: tuple[int, ...]
               ) -> tuple[list[int], tuple[int, ...]]:
    """Each layer's input rank and the output shape of one sample, by running the eval model."""
    ranks = []
    x = torch.zeros(2, *shape)  # 2 rows: a batch-statistics norm is refused by name below
    with torch.no_grad():
        for path, layer in layers:
            ranks.append(x.dim())
            was_training = layer.training
            try:
                x = layer.eval()(x)
            except (RuntimeError, ValueError, IndexError) as exc:
                text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise PackError(f"export_onnx: input_shape {shape} does not fit layer "
                                f"'{path}' ({text})") from None
            finally:
                layer.train(was_training)
    return ranks, tuple(x.shape[1:])


def export_onnx(model: nn.Module, path: str | os.PathLike[str],
                input_shape: int | tuple[int, ...], qonnx: bool = False) -> Path:
    """Write ``model``'s inference graph as an ONNX file (see the module doc).

    Parameters
    ----------
    model : torch.nn.Module
        Any model :func:`~stelab.pack.export_packed` takes; its training mode is left as is
        (the graph is the ``eval()`` computation: running batch-norm statistics, no dropout).
    path : str or os.PathLike
        The ``.onnx`` file to write (its folder is created; written atomically).
    input_shape : int or tuple of int
        The shape of ONE sample, without the batch dimension: ``(features,)`` or
        ``(channels, height, width)``. The graph's input ``input`` is float32 of shape
        (batch, \\*input_shape) with a symbolic ``batch``; its output ``output`` is float32 of
        shape (batch, ...), as the torch model's.
    qonnx : bool
        Write QONNX instead (for FINN-style FPGA flows, checked by the ``qonnx`` package): the
        binary weights as their latent float32 values through ``BipolarQuant`` (scale 1) and
        ``sign``-family input quantizers as ``BipolarQuant`` nodes (domain
        :data:`QONNX_DOMAIN`); everything else as above. ``BipolarQuant`` maps NaN to -1 where
        torch propagates it. ONNX Runtime cannot run these nodes; ``qonnx``'s executor can.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    PackError
        One line naming the layer or operation that cannot be exported, or an ``input_shape``
        that does not fit the model.
    ImportError
        When the ``onnx`` package is missing (``pip install 'stelab[deploy]'``).
    """
    import onnx
    from onnx import TensorProto, helper

    shape = _check_shape(input_shape)
    layers = _leaves(as_chain(model))
    ranks, out_shape = _trial_run(layers, shape)
    g = _Graph(qonnx)
    x = "input"
    for (name, layer), rank in zip(layers, ranks, strict=True):
        x = _emit(g, layer, x, name, rank)
    g.nodes.append(helper.make_node("Identity", [x], ["output"], name="output"))
    graph = helper.make_graph(
        g.nodes, "stelab", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                          ["batch", *shape])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", *out_shape])],
        g.initializers)
    opsets = [helper.make_opsetid("", OPSET)]
    if qonnx:
        opsets.append(helper.make_opsetid(QONNX_DOMAIN, 1))
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="stelab",
                              producer_version=__version__)
    proto.ir_version = min(proto.ir_version, 8)  # readable by onnxruntime >= 1.14
    onnx.checker.check_model(proto, full_check=not qonnx)  # shape inference: default domain
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    onnx.save(proto, str(tmp))
    os.replace(tmp, out)
    return out
