"""Binary layers for PyTorch users: quantized layers with selectable surrogate gradients, a
bit-aware model summary, the flip-ratio metric and the Bop optimizer.

    from stelab.nn import QuantLinear, summary
    layer = QuantLinear(64, 32, input_quantizer="ste_sign", weight_quantizer="ste_sign",
                        weight_clip=1.0)

Deployment is a layer above this one (:mod:`stelab.pack`, which imports these layers):
``stelab.pack.export_packed(model, path)`` writes a 1-bit packed safetensors file and
``stelab.pack.load_packed(path)`` gives back an inference-only model on packed kernels.

Quantizer names are those of :data:`stelab.quantizers.QUANTIZERS` (the registry of the core;
same sign(0) = +1 and the same surrogate formulas as the simulator), or ``"<activation>:<ste>"``.
"""

from __future__ import annotations

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

__all__ = [
    "QuantLinear",
    "QuantConv2d",
    "QuantizedLayer",
    "Scale",
    "quantized_layers",
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
