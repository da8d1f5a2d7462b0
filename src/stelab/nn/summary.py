"""A bit-aware model summary: per layer, how many parameters are stored with 1 bit and how many
with 32 bits, the memory that takes, and the compression against an all-float32 model.

For each module that directly owns parameters or floating-point buffers (e.g. BatchNorm running
statistics, which inference needs):

    bits(p)     = precision of the layer's weight quantizer for the weight of a quantized layer
                  (1 for every registered quantizer), 32 for everything else
    memory      = ceil(n_1bit / 8) + 4 * n_32bit                                  bytes
    compression = 4 * (n_1bit + n_32bit) / memory                     (float32 memory / memory)

Quantizers whose ``precision`` is neither 1 nor 32 are counted under ``other_bits``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd
import torch
from rich.table import Table
from torch import nn

from stelab.nn.layers import QuantizedLayer

__all__ = ["LayerSummary", "ModelSummary", "summary"]


@dataclass(frozen=True)
class LayerSummary:
    """Bit counts of one module's own parameters and floating buffers."""

    name: str
    kind: str
    params_1bit: int
    params_32bit: int
    params_other: int = 0  # parameters of any other precision ...
    other_bits: int = 0  # ... and the bits they hold together

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


def _layer_summary(name: str, module: nn.Module) -> LayerSummary | None:
    tensors = _own_tensors(module)
    if not tensors:
        return None
    n1 = n32 = other_bits = n_other = 0
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
    return LayerSummary(name or "(model)", type(module).__name__, n1, n32, n_other, other_bits)


@dataclass(frozen=True)
class ModelSummary:
    """The per-layer rows and their total; ``str()`` gives a fixed-width text table."""

    layers: tuple[LayerSummary, ...]

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
        )

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
        return [
            [
                r["name"],
                r["kind"],
                f"{r['params_1bit']:,}",
                f"{r['params_32bit']:,}",
                f"{r['memory_bytes']:,}",
                f"{r['compression']:.2f}x",
            ]
            for r in self._records()
        ]

    _HEADER = ("layer", "type", "1-bit params", "32-bit params", "memory (B)", "compression")

    def __str__(self) -> str:
        cells = self._cells()
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(self._HEADER)]

        def line(values: list[str] | tuple[str, ...]) -> str:
            left = [v.ljust(w) for v, w in zip(values[:2], widths[:2], strict=True)]
            right = [v.rjust(w) for v, w in zip(values[2:], widths[2:], strict=True)]
            return "  ".join(left + right).rstrip()

        rule = "-" * len(line(self._HEADER))
        body = [line(c) for c in cells[:-1]]
        return "\n".join([line(self._HEADER), rule, *body, rule, line(cells[-1])])

    def to_rich(self, title: str = "model summary") -> Table:
        table = Table(title=title)
        for i, head in enumerate(self._HEADER):
            table.add_column(head, justify="left" if i < 2 else "right")
        cells = self._cells()
        for c in cells[:-1]:
            table.add_row(*c)
        table.add_row(*cells[-1], style="bold", end_section=True)
        return table


def summary(model: nn.Module) -> ModelSummary:
    """Per-layer 1-bit / 32-bit parameter counts, memory in bytes and compression ratio."""
    rows = [_layer_summary(name, module) for name, module in model.named_modules()]
    return ModelSummary(tuple(r for r in rows if r is not None))
