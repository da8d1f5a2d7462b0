"""Binary layers for PyTorch users: quantized layers with selectable surrogate gradients, a
bit-aware model summary, the flip-ratio metric and the Bop optimizer.

    from stelab.nn import QuantLinear, summary
    layer = QuantLinear(64, 32, input_quantizer="ste_sign", weight_quantizer="ste_sign",
                        weight_clip=1.0)

Deployment: ``export_packed(model, path)`` writes a 1-bit packed safetensors file and
``load_packed(path)`` gives back an inference-only model on packed kernels (:mod:`stelab.pack`).

Quantizer names are those of :data:`stelab.quantizers.QUANTIZERS` (the registry of the core;
same sign(0) = +1 and the same surrogate formulas as the simulator), or ``"<activation>:<ste>"``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from stelab.nn.layers import (
    QuantConv2d,
    QuantizedLayer,
    QuantLinear,
    Scale,
    attach_weight_clip,
    clip_weights_,
    quantized_layers,
)
from stelab.nn.metrics import FlipRatio, flip_ratio
from stelab.nn.optim import Bop, binary_parameters, real_parameters
from stelab.nn.summary import LayerSummary, ModelSummary, summary
from stelab.quantizers import QUANTIZERS, Quantizer, get_quantizer

if TYPE_CHECKING:
    from stelab.pack import PackedModel


def export_packed(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` as a 1-bit packed safetensors file: :func:`stelab.pack.export_packed`
    (imported on first use: the packed kernels load numba)."""
    from stelab.pack import export_packed as _export

    return _export(model, path)


def load_packed(path: str | os.PathLike[str]) -> PackedModel:
    """The inference-only model of a packed file: :func:`stelab.pack.load_packed`."""
    from stelab.pack import load_packed as _load

    return _load(path)

__all__ = [
    "QuantLinear",
    "QuantConv2d",
    "QuantizedLayer",
    "Scale",
    "quantized_layers",
    "export_packed",
    "load_packed",
    "clip_weights_",
    "attach_weight_clip",
    "summary",
    "ModelSummary",
    "LayerSummary",
    "flip_ratio",
    "FlipRatio",
    "Bop",
    "binary_parameters",
    "real_parameters",
    "QUANTIZERS",
    "Quantizer",
    "get_quantizer",
]
