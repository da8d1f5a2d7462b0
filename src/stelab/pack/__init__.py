"""1-bit deployment: packed checkpoints and packed binary inference on x86.

    from stelab.pack import export_packed, load_packed
    export_packed(model, "model.safetensors")   # sign bits of the binary weights, 1 bit each
    packed = load_packed("model.safetensors")   # inference-only, numba XNOR-popcount kernels
    y = packed(x)                               # == model.eval()(x), bit for bit where binary

Modules: :mod:`~stelab.pack.bits` (the bit layouts), :mod:`~stelab.pack.kernels` (compiled
kernels and their error bounds), :mod:`~stelab.pack.modules` (the inference layers),
:mod:`~stelab.pack.format` (the file).
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

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "SUPPORTED_TYPES",
    "export_packed",
    "load_packed",
    "read_metadata",
    "PackedLinear",
    "PackedConv2d",
    "PackedModel",
]
