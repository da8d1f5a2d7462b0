"""A bit-aware model summary: per layer, how many parameters are stored with 1 bit and how many
with 32 bits, the memory that takes, and the compression against an all-float32 model.

For each module that directly owns parameters or floating-point buffers (e.g. BatchNorm running
statistics, which inference needs):

    bits(p)     = precision of the layer's weight quantizer for the weight of a quantized layer
                  (1 for every registered quantizer), 32 for everything else
    memory      = ceil(n_1bit / 8) + 4 * n_32bit                                  bytes
    compression = 4 * (n_1bit + n_32bit) / memory                     (float32 memory / memory)

Quantizers whose ``precision`` is neither 1 nor 32 are counted under ``other_bits``.

Multiply-accumulates (with ``input_shape``, one sample's shape without the batch dimension):
one forward pass of a zero input in eval mode counts, per Linear / Conv2d (quantized or not),

    MACs = output elements x (in_features | in_channels / groups x kh x kw)

by precision: ``binary`` (1-bit inputs and 1-bit weights: XNOR-popcount at inference),
``real_binary`` (real inputs, 1-bit weights) and ``float`` (the rest); the binary share is
binary / all MACs (Larq's summary counts the same).

``fold_batchnorm=True`` counts a batch norm as it is at inference, folded into one scale and one
shift per channel (2 C 32-bit values instead of its weight, bias, mean and variance).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd
import torch
from rich.table import Table
from torch import nn

from stelab.nn.layers import QuantizedLayer, quantizer_precision

__all__ = ["LayerSummary", "ModelSummary", "summary"]


@dataclass(frozen=True)
class LayerSummary:
    """Bit counts of one module's own parameters and floating buffers.

    Parameters
    ----------
    name, kind : str
        The module's dotted name in the model and its class name.
    params_1bit, params_32bit, params_other : int
        Parameter (and floating buffer) values stored with 1 bit, 32 bits, other precisions.
    other_bits : int
        Bits held by the ``params_other`` values together.
    macs_binary, macs_real_binary, macs_float : int
        Multiply-accumulates of one sample: 1-bit x 1-bit, real x 1-bit, the rest.
    """

    name: str
    kind: str
    params_1bit: int
    params_32bit: int
    params_other: int = 0  # parameters of any other precision ...
    other_bits: int = 0  # ... and the bits they hold together
    macs_binary: int = 0  # multiply-accumulates per sample: 1-bit inputs x 1-bit weights
    macs_real_binary: int = 0  # real inputs x 1-bit weights
    macs_float: int = 0  # everything else

    @property
    def macs(self) -> int:
        """All multiply-accumulates of one sample."""
        return self.macs_binary + self.macs_real_binary + self.macs_float

    @property
    def n_params(self) -> int:
        return self.params_1bit + self.params_32bit + self.params_other

    @property
    def memory_bytes(self) -> int:
        """ceil(n_1bit / 8) + 4 n_32bit (+ ceil(other_bits / 8))."""
        return (
            math.ceil(self.params_1bit / 8) + 4 * self.params_32bit + math.ceil(self.other_bits / 8)
        )

    @property
    def compression(self) -> float:
        """float32 memory / memory = 4 n_params / memory_bytes."""
        return 4 * self.n_params / self.memory_bytes if self.memory_bytes else 1.0


def _own_tensors(module: nn.Module) -> list[tuple[str, torch.Tensor]]:
    tensors = list(module.named_parameters(recurse=False))
    tensors += [(n, b) for n, b in module.named_buffers(recurse=False) if b.is_floating_point()]
    return tensors


_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _layer_summary(
    name: str, module: nn.Module, macs: dict[str, int], fold_batchnorm: bool
) -> LayerSummary | None:
    tensors = _own_tensors(module)
    if not tensors:
        return None
    n1 = n32 = other_bits = n_other = 0
    if fold_batchnorm and isinstance(module, _BATCHNORMS):
        tensors = [("folded", torch.empty(2 * module.num_features))]  # scale and shift
    for tensor_name, tensor in tensors:
        count = tensor.numel()
        bits = 32
        if isinstance(module, QuantizedLayer) and tensor_name == "weight":
            bits = module.weight_precision
        if bits == 1:
            n1 += count
        elif bits == 32:
            n32 += count
        else:
            other_bits += bits * count
            n_other += count
    return LayerSummary(
        name or "(model)", type(module).__name__, n1, n32, n_other, other_bits,
        macs.get("binary", 0), macs.get("real_binary", 0), macs.get("float", 0),
    )


def _precision_class(module: nn.Module) -> str:
    if isinstance(module, QuantizedLayer) and module.weight_precision == 1:
        return "binary" if quantizer_precision(module.input_quantizer) == 1 else "real_binary"
    return "float"


def _count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, dict[str, int]]:
    """Per module name: MACs of one sample by precision class (one zero input, eval mode)."""
    counts: dict[str, dict[str, int]] = {}
    names = {id(m): n for n, m in model.named_modules()}

    def hook(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            per_output = module.in_channels // module.groups * kh * kw
        else:
            per_output = module.in_features
        row = counts.setdefault(names[id(module)], {})
        kind = _precision_class(module)
        row[kind] = row.get(kind, 0) + output.numel() * per_output

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, nn.Linear | nn.Conv2d)]
    was_training = model.training
    try:
        model.eval()
        first = next(iter(model.parameters()), None)
        dtype = first.dtype if first is not None else torch.float32
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return counts


@dataclass(frozen=True)
class ModelSummary:
    """The per-layer rows and their total; ``str()`` gives a fixed-width text table.

    Parameters
    ----------
    layers : tuple of LayerSummary
        One row per module that holds parameters or floating buffers of its own.
    counted_macs : bool
        Whether the MAC columns were counted (:func:`summary` got an ``input_shape``).
    """

    layers: tuple[LayerSummary, ...]
    counted_macs: bool = False

    @property
    def total(self) -> LayerSummary:
        """Summed counts (its own ``memory_bytes`` packs all 1-bit weights together; the
        summary's :attr:`memory_bytes` sums the layers instead)."""
        return LayerSummary(
            "total",
            "",
            sum(r.params_1bit for r in self.layers),
            sum(r.params_32bit for r in self.layers),
            sum(r.params_other for r in self.layers),
            sum(r.other_bits for r in self.layers),
            sum(r.macs_binary for r in self.layers),
            sum(r.macs_real_binary for r in self.layers),
            sum(r.macs_float for r in self.layers),
        )

    @property
    def macs(self) -> dict[str, int]:
        """Multiply-accumulates of one sample by precision (zeros without ``input_shape``)."""
        t = self.total
        return {"binary": t.macs_binary, "real_binary": t.macs_real_binary, "float": t.macs_float}

    @property
    def binary_mac_share(self) -> float:
        """Share of the MACs that are 1-bit x 1-bit (nan if no MACs were counted)."""
        total = self.total.macs
        return self.total.macs_binary / total if total else float("nan")

    @property
    def memory_bytes(self) -> int:
        """Sum of the layers' memory (each layer's 1-bit weights packed on their own)."""
        return sum(r.memory_bytes for r in self.layers)

    @property
    def compression(self) -> float:
        """4 * (all parameters) / memory_bytes."""
        return 4 * self.total.n_params / self.memory_bytes if self.memory_bytes else 1.0

    def _records(self) -> list[dict]:
        rows = []
        for r in self.layers:
            rows.append({**asdict(r), "memory_bytes": r.memory_bytes, "compression": r.compression})
        total = {"memory_bytes": self.memory_bytes, "compression": self.compression}
        rows.append({**asdict(self.total), **total})
        return rows

    def to_frame(self) -> pd.DataFrame:
        """One row per layer plus a ``total`` row."""
        return pd.DataFrame(self._records())

    def _cells(self) -> list[list[str]]:
        cells = []
        for r in self._records():
            row = [
                r["name"],
                r["kind"],
                f"{r['params_1bit']:,}",
                f"{r['params_32bit']:,}",
                f"{r['memory_bytes']:,}",
                f"{r['compression']:.2f}x",
            ]
            if self.counted_macs:
                row += [f"{r[f'macs_{k}']:,}" for k in ("binary", "real_binary", "float")]
            cells.append(row)
        return cells

    @property
    def _HEADER(self) -> tuple[str, ...]:  # noqa: N802 - a constant that depends on the counts
        head = ("layer", "type", "1-bit params", "32-bit params", "memory (B)", "compression")
        return head + (("bin MACs", "real x bin MACs", "float MACs") if self.counted_macs else ())

    def __str__(self) -> str:
        cells = self._cells()
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(self._HEADER)]

        def line(values: list[str] | tuple[str, ...]) -> str:
            left = [v.ljust(w) for v, w in zip(values[:2], widths[:2], strict=True)]
            right = [v.rjust(w) for v, w in zip(values[2:], widths[2:], strict=True)]
            return "  ".join(left + right).rstrip()

        rule = "-" * len(line(self._HEADER))
        body = [line(c) for c in cells[:-1]]
        text = [line(self._HEADER), rule, *body, rule, line(cells[-1])]
        if self.counted_macs:
            text.append(f"binary MACs: {self.binary_mac_share:.1%} of {self.total.macs:,} "
                        "per sample")
        return "\n".join(text)

    def to_rich(self, title: str = "model summary") -> Table:
        table = Table(title=title)
        for i, head in enumerate(self._HEADER):
            table.add_column(head, justify="left" if i < 2 else "right")
        cells = self._cells()
        for c in cells[:-1]:
            table.add_row(*c)
        table.add_row(*cells[-1], style="bold", end_section=True)
        return table


def summary(
    model: nn.Module,
    input_shape: tuple[int, ...] | None = None,
    fold_batchnorm: bool = False,
) -> ModelSummary:
    """Per-layer 1-bit / 32-bit parameter counts, memory in bytes and compression ratio; with
    ``input_shape`` (one sample, no batch dimension) also the MACs per precision; with
    ``fold_batchnorm`` batch norms counted folded (2 values per channel).

    Parameters
    ----------
    model : torch.nn.Module
        Any module; quantized layers count their weights at the weight quantizer's precision.
    input_shape : tuple of int or None
        The shape of one sample, without the batch dimension (e.g. (1, 28, 28)); the model is
        run once on zeros of shape (1, *input_shape) to count MACs. None: no MAC counts.
    fold_batchnorm : bool
        Count a batch norm as 2 values per channel (scale and shift after folding) instead of
        its parameters and running statistics.

    Returns
    -------
    ModelSummary
        ``layers``, ``total``, ``memory_bytes`` (bytes), ``compression`` (float32 bytes /
        bytes), ``macs`` (per sample), ``to_frame()``, ``to_rich()`` and ``str()``.

    Examples
    --------
    >>> from torch import nn
    >>> from stelab.nn import QuantLinear
    >>> s = summary(nn.Sequential(QuantLinear(64, 10, bias=False)), input_shape=(64,))
    >>> s.total.params_1bit, s.memory_bytes, s.compression
    (640, 80, 32.0)
    >>> s.macs["real_binary"]
    640
    """
    macs = _count_macs(model, tuple(input_shape)) if input_shape is not None else {}
    rows = [_layer_summary(name, module, macs.get(name, {}), fold_batchnorm)
            for name, module in model.named_modules()]
    return ModelSummary(tuple(r for r in rows if r is not None), input_shape is not None)
