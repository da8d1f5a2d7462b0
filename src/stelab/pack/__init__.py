"""1-bit deployment: packed checkpoints and packed binary inference on x86.

    from stelab.pack import export_packed, load_packed
    export_packed(model, "model.safetensors")   # sign bits of the binary weights, 1 bit each
    packed = load_packed("model.safetensors")   # inference-only, numba XNOR-popcount kernels
    y = packed(x)                               # == model.eval()(x), bit for bit where binary
    export_onnx(model, "model.onnx", (64,))     # the same model for ONNX Runtime (stelab[deploy])

Modules: :mod:`~stelab.pack.bits` (the bit layouts), :mod:`~stelab.pack.kernels` (compiled
kernels and their error bounds), :mod:`~stelab.pack.modules` (the inference layers),
:mod:`~stelab.pack.format` (the file), :mod:`~stelab.pack.chain` (any module as a chain of
supported layers), :mod:`~stelab.pack.onnx_export` (the ONNX graph).
"""

from stelab.pack.format import (
    FORMAT,
    FORMAT_VERSION,
    SUPPORTED_TYPES,
    export_packed,
    load_packed,
    read_metadata,
)
from stelab.pack.modules import PackedConv2d, PackedLinear, PackedModel
from stelab.pack.onnx_export import export_onnx

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "SUPPORTED_TYPES",
    "export_packed",
    "load_packed",
    "export_onnx",
    "read_metadata",
    "PackedLinear",
    "PackedConv2d",
    "PackedModel",
]
