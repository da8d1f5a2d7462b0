"""``stelab bench pack``: packed 1-bit inference against what a user would run instead.

Four contenders (:mod:`stelab.bench.pack_contenders`) on the same model and inputs: torch
float32 (binary weights computed once: the strongest float32 baseline), torch dynamic int8
(``quantize_dynamic``, x86 engine), ONNX Runtime (CPU execution provider, the float32 graph of
:func:`stelab.pack.export_onnx`) and packed (:func:`stelab.pack.load_packed`). Every case is
timed interleaved (one timing of each contender in turn, repeated; median, and the min and max
over repeats of every ratio), on one thread and on all threads (torch, numba and ONNX Runtime
on the same count), at batch 1 and 64:

* binary x binary linear (``sign`` inputs and weights), N x N for N = 256, 1024, 4096, 8192
  (``--quick``: up to 4096);
* real x binary linear (a first layer on real inputs), same sizes;
* a binary conv2d (``sign`` inputs, 3 x 3, padding 1; torch has no dynamic int8 conv);
* whole models: the digits binary MLP of :mod:`stelab.realdata`, a binary ConvNet on 8 x 8
  images and a larger binary MLP (784 -> 4096 -> 4096 -> 4096 -> 10);
* the per-call overhead of :class:`~stelab.pack.PackedModel`: a 64 x 64 binary layer at batch
  1 through the model, against its compiled kernels called directly (microseconds per call);
* file sizes of the four deployments.

Ratios are contender time / packed time (> 1: packed is faster). ``of limit`` is each
contender's roofline share, floor time / measured time, with the floor of each measured in
this process: for packed, max(word operations / XOR-popcount rate, hot read of its packed
weights); for the others, the hot read of their weights (4 bytes each for float32 and ONNX
Runtime, 1 for int8); their compute roof is not measured, so theirs is a memory roofline only.

Targets: issue 11 (against float32): binary x binary 4096^2 >= 10x at batch 1 and >= 4x at
batch 64; real x binary 4096^2 >= 3x at batch 1. Issue 22 (against int8): packed >= int8 for
binary x binary from 256^2 and real x binary from 1024^2 at batch 1; binary x binary 4096^2
>= 6x int8 at batch 1 and >= 4x at batch 64.
"""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from stelab.bench.pack_contenders import CONTENDERS, build_contenders
from stelab.bench.pack_limits import (
    floor_seconds,
    machine_limits,
    on_threads,
    per_call,
    read_seconds,
    time_interleaved,
)
from stelab.nn import QuantConv2d, QuantLinear
from stelab.pack import kernels
from stelab.pack.bits import words_for

__all__ = ["PackResult", "run_pack", "write_json"]

Printer = Callable[[str], None]

#: linear sizes, repeats, conv (batch, channels, size) and the big MLP's width per size;
#: "tiny" is for tests only
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"linear": (64, 256), "repeats": 2, "conv": (8, 16, 8), "big_mlp": 256},
    "quick": {"linear": (256, 1024, 4096), "repeats": 5, "conv": (8, 128, 16), "big_mlp": 4096},
    "full": {"linear": (256, 1024, 4096, 8192), "repeats": 9, "conv": (8, 256, 16),
             "big_mlp": 4096},
}

#: issue 11: packed against float32
TARGETS = {("bxb", 4096, 1): 10.0, ("bxb", 4096, 64): 4.0, ("rxb", 4096, 1): 3.0}
#: issue 22: packed against dynamic int8
INT8_TARGETS = {("bxb", 4096, 1): 6.0, ("bxb", 4096, 64): 4.0}
SHORT = {"float32": "f32", "int8": "int8", "onnxruntime": "ort", "packed": "packed"}


def _int8_target(kind: str, n: int, batch: int) -> float | None:
    if (kind, n, batch) in INT8_TARGETS:
        return INT8_TARGETS[(kind, n, batch)]
    if batch == 1 and ((kind == "bxb" and n >= 256) or (kind == "rxb" and n >= 1024)):
        return 1.0
    return None


@dataclass
class PackResult:
    """One case: seconds per call of every contender over the repeats, their floors, targets."""

    name: str
    threads: int
    times: dict[str, list[float]]
    floors: dict[str, float] = field(default_factory=dict)
    target: float | None = None
    int8_target: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def ms(self, contender: str) -> float | None:
        """Median milliseconds per call, None if the contender did not run."""
        times = self.times.get(contender)
        return None if not times else statistics.median(times) * 1e3

    def ratios_vs(self, contender: str) -> list[float]:
        """Contender time / packed time, per repeat (empty if the contender did not run)."""
        return [c / p for c, p in zip(self.times.get(contender, []), self.times["packed"],
                                      strict=False)]

    @property
    def ratios(self) -> list[float]:
        return self.ratios_vs("float32")

    @property
    def median(self) -> float:
        return statistics.median(self.ratios)

    def of_limit(self, contender: str) -> float | None:
        floor, ms = self.floors.get(contender), self.ms(contender)
        return None if floor is None or ms is None else floor / (ms / 1e3)

    @property
    def passed(self) -> bool | None:
        checks = []
        if self.target is not None:
            checks.append(self.median >= self.target)
        if self.int8_target is not None and self.ratios_vs("int8"):
            checks.append(statistics.median(self.ratios_vs("int8")) >= self.int8_target)
        return None if not checks else all(checks)

    def line(self) -> str:
        cells = [f"{self.name:32s} {self.threads:>2d}"]
        for c in CONTENDERS:
            ms = self.ms(c)
            cells.append(f"{ms:9.3f}" if ms is not None else f"{'-':>9s}")
        for c in CONTENDERS[:-1]:
            r = self.ratios_vs(c)
            cells.append(f"{statistics.median(r):7.2f} [{min(r):5.2f}-{max(r):5.2f}]" if r
                         else f"{'-':>21s}")
        shares = [self.of_limit(c) for c in CONTENDERS]
        cells.append(" ".join(f"{s:4.0%}" if s is not None else "   -" for s in shares))
        verdict = []
        if self.target is not None:
            verdict.append(f"f32 >= {self.target:g}")
        if self.int8_target is not None:
            verdict.append(f"int8 >= {self.int8_target:g}")
        if verdict:
            cells.append(", ".join(verdict) + (": ok" if self.passed else ": BELOW TARGET"))
        return " ".join(cells)


HEADER = (f"{'case':32s} {'th':>2s} " + " ".join(f"{SHORT[c] + ' ms':>9s}" for c in CONTENDERS)
          + " " + " ".join(f"{'x ' + SHORT[c] + ' [min-max]':>21s}" for c in CONTENDERS[:-1])
          + "  of limit f32/int8/ort/packed")


# --------------------------------------------------------------------------------- cases
def _timed(name: str, model: nn.Module, x: torch.Tensor, threads: int, repeats: int,
           budget: float, sizes: dict[str, Any] | None = None,
           extra: dict[str, Callable[[], Any]] | None = None
           ) -> tuple[PackResult, dict[str, torch.Tensor]]:
    """Every contender on ``x``: the timings, and each one's outputs (for the checks)."""
    with tempfile.TemporaryDirectory() as tmp, on_threads(threads), torch.no_grad():
        fns = build_contenders(model, tuple(x.shape[1:]), threads, tmp, sizes)
        ready = {c: fn for c, fn in fns.items() if fn is not None}
        outputs = {c: fn(x) for c, fn in ready.items()}
        calls = {c: (lambda fn=fn: fn(x)) for c, fn in ready.items()}
        times = time_interleaved({**calls, **(extra or {})}, repeats, budget)
    return PackResult(name, threads, times), outputs


def _linear_model(n: int, mode: str) -> nn.Module:
    torch.manual_seed(n)
    return QuantLinear(n, n, bias=False,
                       input_quantizer="sign" if mode == "sign" else None).eval()


def _linear_cases(n: int, mode: str, threads: int, limits: dict[str, float], repeats: int,
                  budget: float) -> list[PackResult]:
    model, kind, words = _linear_model(n, mode), ("bxb" if mode == "sign" else "rxb"), words_for(n)
    out = []
    for batch in (1, 64):
        x = torch.randn(batch, n, generator=torch.Generator().manual_seed(n + batch))
        result, y = _timed(f"{kind} linear {n}x{n} batch {batch}", model, x, threads, repeats,
                           budget)
        if mode == "sign":
            result.detail["exact"] = bool(torch.equal(y["packed"], y["float32"])
                                          and torch.equal(y.get("onnxruntime", y["packed"]),
                                                          y["float32"]))
            packed_floor = floor_seconds(limits, batch * n * words, n * words * 8, threads)
        else:  # the bound of stelab.pack.kernels: 2 (K - 1) u sum_j |x_j|, for both
            bound = 2 * (n - 1) * 2.0**-24 * x.abs().sum(dim=1, keepdim=True)
            result.detail["within_bound"] = all(
                bool(((y[c] - y["float32"]).abs() <= bound).all())
                for c in ("packed", "onnxruntime") if c in y)
            packed_floor = read_seconds(n * words * 8, threads)
        if "int8" in y:
            result.detail["int8_max_abs_diff"] = float((y["int8"] - y["float32"]).abs().max())
        result.floors = {"packed": packed_floor, "float32": read_seconds(4 * n * n, threads),
                         "onnxruntime": read_seconds(4 * n * n, threads),
                         "int8": read_seconds(n * n, threads)}
        result.target = TARGETS.get((kind, n, batch))
        result.int8_target = _int8_target(kind, n, batch)
        out.append(result)
    return out


def _conv_case(batch: int, channels: int, size: int, threads: int, limits: dict[str, float],
               repeats: int, budget: float) -> PackResult:
    torch.manual_seed(0)
    conv = QuantConv2d(channels, channels, 3, padding=1, bias=False,
                       input_quantizer="sign").eval()
    x = torch.randn(batch, channels, size, size)
    result, y = _timed(f"bxb conv {channels}ch 3x3 {size}x{size} b{batch}", conv, x, threads,
                       repeats, budget)
    result.detail["exact"] = bool(torch.equal(y["packed"], y["float32"]) and torch.equal(
        y.get("onnxruntime", y["packed"]), y["float32"]))
    k = channels * 9
    result.floors = {
        "packed": floor_seconds(limits, batch * size * size * channels * 9 * words_for(channels),
                                channels * words_for(k) * 8, threads),
        "float32": read_seconds(4 * channels * k, threads),
        "onnxruntime": read_seconds(4 * channels * k, threads)}
    return result


def _big_mlp(width: int) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = [QuantLinear(784, width, bias=False), nn.BatchNorm1d(width)]
    for _ in range(2):
        layers += [QuantLinear(width, width, bias=False, input_quantizer="ste_sign"),
                   nn.BatchNorm1d(width)]
    layers.append(QuantLinear(width, 10, input_quantizer="ste_sign", weight_quantizer=None))
    return nn.Sequential(*layers).eval()


def digits_convnet() -> nn.Sequential:
    """A binary ConvNet for 8 x 8 one-channel images, 10 classes: a real-input binary-weight
    conv, a binary x binary conv with stride 2, a binary x binary readout (batch norm after
    each binary layer)."""
    return nn.Sequential(
        QuantConv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32),
        QuantConv2d(32, 64, 3, stride=2, padding=1, bias=False, input_quantizer="ste_sign"),
        nn.BatchNorm2d(64), nn.Flatten(),
        QuantLinear(64 * 4 * 4, 10, input_quantizer="ste_sign"))


def _models(width: int) -> list[tuple[str, nn.Module, torch.Tensor]]:
    from stelab.realdata import build_model, load_digits_task

    torch.manual_seed(0)
    mlp = build_model("mlp", "multiclass", "batchnorm").eval()
    _, _, X_te, _ = load_digits_task("multiclass", 0)
    digits = torch.from_numpy(X_te[:64]).float()
    torch.manual_seed(0)
    return [("digits MLP", mlp, digits),
            ("digits ConvNet", digits_convnet().eval(), digits.reshape(-1, 1, 8, 8)),
            (f"MLP 784-{width}x3-10", _big_mlp(width), torch.randn(64, 784))]


def _model_cases(name: str, model: nn.Module, x: torch.Tensor, threads: int, repeats: int,
                 budget: float, sizes: dict[str, dict[str, Any]]) -> list[PackResult]:
    out = []
    for rows in (1, 64):
        sizes[name] = {}
        result, y = _timed(f"{name} batch {rows}", model, x[:rows], threads, repeats, budget,
                           sizes[name])
        batch = x[:rows]
        with torch.no_grad():
            labels = model(batch).argmax(-1)
            result.times["eval()"] = [per_call(lambda b=batch: model(b), budget)]
        result.detail["same_predictions"] = bool(torch.equal(y["packed"].argmax(-1), labels))
        result.detail["agreement"] = {c: float((y[c].argmax(-1) == labels).float().mean())
                                      for c in ("int8", "onnxruntime") if c in y}
        out.append(result)
    return out


def _overhead_case(threads: int, repeats: int, budget: float) -> PackResult:
    """A 64 x 64 binary layer at batch 1: PackedModel's call against its kernels alone."""
    model = _linear_model(64, "sign")
    x = torch.randn(1, 64)
    with tempfile.TemporaryDirectory() as tmp:
        layer = build_contenders(model, (64,), threads, tmp)["packed"].net
    rows, xs = layer._rows(), x.numpy()
    bits = np.empty((1, words_for(64)), np.uint64)
    pops, out = np.zeros(1, np.int64), np.empty((1, 64), np.float32)

    def kernels_alone() -> None:  # the one-thread twins: what the layer runs a call this small on
        kernels.serial["pack_rows"](xs, False, bits)
        kernels.serial["binary_gemm"](bits, rows, 64, False, pops, out)

    result, _ = _timed("per-call bxb linear 64x64 batch 1", model, x, threads, repeats,
                       budget)
    kernels_s = statistics.median(time_interleaved({"kernels": kernels_alone}, repeats,
                                                   budget)["kernels"])
    result.detail["kernels_us"] = kernels_s * 1e6
    result.detail["overhead_us"] = (statistics.median(result.times["packed"]) - kernels_s) * 1e6
    return result


# --------------------------------------------------------------------------------- run
def _summary(results: list[PackResult], sizes: dict[str, dict[str, Any]], say: Printer) -> None:
    exact = all(r.detail.get("exact", True) for r in results)
    bound = all(r.detail.get("within_bound", True) for r in results)
    same = all(r.detail.get("same_predictions", True) for r in results)
    say(f"packed and ONNX Runtime: binary x binary outputs bit-identical to torch: {exact}; "
        f"real x binary within 2 (K - 1) u sum|x|: {bound}; packed model predictions identical:"
        f" {same}")
    for c, why in (("int8", "it rounds the activations to 8 bits"),
                   ("onnxruntime", "its real-input sums round in another order, which can flip "
                    "the sign of a pre-activation within that bound of 0")):
        shares = [r.detail["agreement"][c] for r in results if c in r.detail.get("agreement", {})
                  and r.name.endswith("batch 64")]
        if shares:
            say(f"{c} predictions agree with the float model on {min(shares):.1%} to "
                f"{max(shares):.1%} of the 64 inputs of a model case ({why})")
    for r in results:
        if "overhead_us" in r.detail:
            others = ", ".join(f"{c} {r.ms(c) * 1e3:.1f} us" for c in CONTENDERS[:-1]
                               if r.ms(c) is not None)
            say(f"per-call overhead, {r.threads} thread(s): PackedModel {r.ms('packed') * 1e3:.1f}"
                f" us a call = its kernels {r.detail['kernels_us']:.1f} us + "
                f"{r.detail['overhead_us']:.1f} us around them (same layer: {others})")
    for name, files in sizes.items():
        cells = ", ".join(f"{c} {files[c]:,} B" for c in CONTENDERS if files.get(c))
        say(f"file size {name}: {cells} (float32 and int8: torch.save of the state_dict; "
            f"packed {files['float32'] / files['packed']:.1f}x smaller than float32)")


def run_pack(quick: bool = False, tiny: bool = False, threads: list[int] | None = None,
             say: Printer = print) -> list[PackResult]:
    """Run every case on 1 thread and on all threads; print the table, checks and file sizes.

    Parameters
    ----------
    quick, tiny : bool
        Smaller sizes and fewer repeats (``tiny``: a seconds-long smoke test, not a
        measurement).
    threads : list of int, optional
        Thread counts to run on (default: 1 and ``os.cpu_count()``).
    say : callable
        Receives every printed line.

    Returns
    -------
    list of PackResult
        One per case and thread count, in the order printed.
    """
    plan = SIZES["tiny" if tiny else ("quick" if quick else "full")]
    repeats, budget = plan["repeats"], (0.01 if tiny else 0.15)
    results: list[PackResult] = []
    sizes: dict[str, dict[str, Any]] = {}
    models = _models(plan["big_mlp"])
    say("ratios: contender time / packed time (> 1: packed is faster); of limit: roofline "
        "share (see stelab.bench.pack)")
    for n_threads in threads or sorted({1, os.cpu_count() or 1}):
        limits = machine_limits(n_threads, tiny)
        say(f"threads {n_threads}: XOR-popcount {limits['popcount_words_per_s'] / 1e9:.1f} G "
            f"words/s, streaming read {limits['read_bytes_per_s'] / 1e9:.1f} GB/s")
        say(HEADER)
        block = [_overhead_case(n_threads, repeats, budget)]
        say(block[-1].line())
        for n in plan["linear"]:
            for mode in ("sign", "real"):
                block += _linear_cases(n, mode, n_threads, limits, repeats, budget)
                say(block[-2].line())
                say(block[-1].line())
        block.append(_conv_case(*plan["conv"], n_threads, limits, repeats, budget))
        say(block[-1].line())
        for name, model, x in models:
            block += _model_cases(name, model, x, n_threads, repeats, budget, sizes)
            say(block[-2].line())
            say(block[-1].line())
        results += block
    _summary(results, sizes, say)
    return results


def write_json(results: list[PackResult], path: str | os.PathLike[str]) -> str:
    """Write every case (seconds per call of every contender and repeat, floors, targets,
    checks) as JSON, with the machine and the code version."""
    from stelab.bench.common import write_payload

    return write_payload(path, {"results": [
        {"name": r.name, "threads": r.threads, "times_s": r.times, "floors_s": r.floors,
         "median_vs_float32": r.median,
         "median_vs": {c: statistics.median(r.ratios_vs(c)) for c in CONTENDERS[:-1]
                       if r.ratios_vs(c)},
         "of_limit": {c: r.of_limit(c) for c in CONTENDERS},
         "target_vs_float32": r.target, "target_vs_int8": r.int8_target, "passed": r.passed,
         "detail": r.detail}
        for r in results
    ]})
