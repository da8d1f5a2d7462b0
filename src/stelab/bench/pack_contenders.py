"""What a user would run instead of packed 1-bit inference, built from the same model.

* ``float32``: torch's float32 kernels on the model with its binary weights computed once
  (W <- sign(W); the input quantizers as ``torch.where``): the strongest float32 baseline;
* ``int8``: that model after ``torch.ao.quantization.quantize_dynamic`` (qint8 weights,
  activations quantized per call; the ``x86`` engine, fbgemm kernels); torch has no dynamic
  int8 conv2d, so a conv layer stays float32 there (a conv-only case has no int8 time);
* ``onnxruntime``: :func:`stelab.pack.export_onnx`'s float32 graph in an ONNX Runtime session
  (CPU execution provider, default graph optimizations, ``intra_op_num_threads`` = the
  benchmark's threads, thread spinning off so that an idle pool does not take the CPU from the
  next contender's timing);
* ``packed``: :func:`stelab.pack.load_packed` of :func:`stelab.pack.export_packed`'s file.

Each is a function of a float32 torch tensor returning a float32 tensor (ONNX Runtime gets
the tensor's numpy view: no copy).
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from stelab.nn.layers import QuantConv2d, QuantizedLayer, QuantLinear
from stelab.pack import export_onnx, export_packed, load_packed
from stelab.pack.chain import as_chain
from stelab.quantizers import get_quantizer, sign

__all__ = ["CONTENDERS", "Binarize", "build_contenders", "float_twin", "int8_twin"]

CONTENDERS = ("float32", "int8", "onnxruntime", "packed")
Contender = Callable[[torch.Tensor], torch.Tensor]


class Binarize(nn.Module):
    """sign(x) in {-1, +1} (sign(0) = +1) or step(x) = 1[x > 0], as a plain torch op."""

    def __init__(self, activation: str) -> None:
        super().__init__()
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation == "sign":
            return torch.where(x >= 0, 1.0, -1.0)
        return (x > 0).to(x.dtype)


def _plain(layer: QuantizedLayer) -> nn.Module:
    """The float layer computing what ``layer`` computes at inference."""
    if isinstance(layer, QuantLinear):
        plain: nn.Module = nn.Linear(layer.in_features, layer.out_features,
                                     bias=layer.bias is not None)
    else:
        assert isinstance(layer, QuantConv2d)
        plain = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                          layer.stride, layer.padding, layer.dilation, layer.groups,
                          layer.bias is not None, layer.padding_mode)
    with torch.no_grad():
        weight = layer.weight.detach()
        plain.weight.copy_(weight if layer.weight_quantizer is None else sign(weight))
        if layer.bias is not None:
            plain.bias.copy_(layer.bias.detach())
    quantizer = getattr(layer.input_quantizer, "name", None)
    if quantizer is None:
        return plain
    return nn.Sequential(Binarize(get_quantizer(quantizer).activation), plain)


def _replace_quantized(module: nn.Module) -> nn.Module:
    if isinstance(module, QuantizedLayer):
        return _plain(module)
    for name, child in module.named_children():
        setattr(module, name, _replace_quantized(child))
    return module


def float_twin(model: nn.Module) -> nn.Module:
    """``model`` as plain torch layers, binary weights computed once (eval, no grad)."""
    twin = copy.deepcopy(as_chain(model))
    return _replace_quantized(twin).eval().requires_grad_(False)


def int8_twin(model: nn.Module) -> nn.Module:
    """:func:`float_twin` with its ``nn.Linear`` layers dynamically quantized to int8."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch.ao's deprecation notices (moving to torchao)
        warnings.simplefilter("ignore")
        torch.backends.quantized.engine = "x86"
        return quantize_dynamic(float_twin(model), {nn.Linear}, dtype=torch.qint8)


def _has_linear(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Linear) for m in model.modules())


def ort_contender(path: str | os.PathLike[str], threads: int) -> Contender:
    """An ONNX Runtime session of the file at ``path`` on ``threads`` threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {"input": x.numpy()})[0])

    return run


def build_contenders(model: nn.Module, input_shape: tuple[int, ...], threads: int,
                     folder: str, sizes: dict[str, Any] | None = None
                     ) -> dict[str, Contender | None]:
    """The four contenders for ``model`` (None: not available for this model, or onnxruntime
    is not installed). ``sizes`` (when given) receives each deployment's file size in bytes."""
    import io

    twin, packed_path = float_twin(model), export_packed(model, os.path.join(folder, "m.st"))
    packed = load_packed(packed_path)
    out: dict[str, Contender | None] = {"float32": twin, "int8": None, "onnxruntime": None,
                                        "packed": packed}
    if _has_linear(twin):
        out["int8"] = int8_twin(model)
    try:
        onnx_path = export_onnx(model, os.path.join(folder, "m.onnx"), input_shape)
        out["onnxruntime"] = ort_contender(onnx_path, threads)
    except ImportError:
        onnx_path = None
    if sizes is not None:
        for name, module in (("float32", twin), ("int8", out["int8"])):
            if module is not None:
                buffer = io.BytesIO()
                torch.save(module.state_dict(), buffer)
                sizes[name] = buffer.tell()
        sizes["onnxruntime"] = None if onnx_path is None else onnx_path.stat().st_size
        sizes["packed"] = packed_path.stat().st_size
    return out
