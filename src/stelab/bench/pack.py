"""``stelab bench pack``: packed 1-bit inference against torch's float32 kernels, same process.

Every ratio is torch time / packed time on the same shapes, measured interleaved (one torch
timing, one packed timing, repeated; median with min and max), on one thread and on all
threads (``torch.set_num_threads`` and ``numba.set_num_threads`` together):

* binary x binary linear (``sign`` inputs and weights), batch 1 and 64, N x N for N = 1024,
  4096, 8192: torch ``F.linear(sign(x), W)`` with W the float32 signs vs :class:`PackedLinear`
  (which binarizes and packs x on the fly);
* real x binary linear at batch 1 (a first layer on real inputs);
* a binary conv2d (``sign`` inputs, 3 x 3, padding 1) against ``F.conv2d``;
* whole models: the digits binary MLP of :mod:`stelab.realdata` and a larger binary MLP
  (784 -> 4096 -> 4096 -> 4096 -> 10), float ``eval()`` model vs :func:`load_packed`;
* file sizes: :func:`export_packed` against ``torch.save`` of the float ``state_dict``.

Whole models are compared with the same float model whose binary weights are computed once
(W <- sign(W), the strongest float32 baseline); the float model's own ``eval()`` time, which
re-binarizes the latent weights at every call, is printed next to it.

Limits, measured in-process as floors: the XOR-popcount throughput of the machine (words per
second, a small L1-resident loop, :func:`stelab.pack.kernels.popcount_probe`) and the time of a
hot streaming read of as many bytes as the layer's packed weights
(:func:`~stelab.pack.kernels.read_probe`, from cache when they fit, as they do when the layer
is called again and again; the DRAM bandwidth over 512 MB is printed too). A packed layer's
floor time is max(word operations / popcount rate, weight read time) (a roofline), and
``of limit`` = floor time / measured time.

Targets (issue 11): binary x binary 4096 x 4096 >= 10x at batch 1 and >= 4x at batch 64;
real x binary 4096 x 4096 >= 3x at batch 1.
"""

from __future__ import annotations

import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from stelab.nn import QuantConv2d, QuantLinear
from stelab.pack import export_packed, kernels, load_packed
from stelab.pack.bits import pack_signs_rows, words_for
from stelab.pack.modules import PackedLinear

__all__ = ["PackResult", "machine_limits", "run_pack", "write_json"]

Printer = Callable[[str], None]

#: (linear sizes, repeats, models?) per size; "tiny" is for tests only
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"linear": (64, 256), "repeats": 2, "conv": (8, 16, 8), "big_mlp": 256},
    "quick": {"linear": (1024, 4096), "repeats": 5, "conv": (8, 128, 16), "big_mlp": 4096},
    "full": {"linear": (1024, 4096, 8192), "repeats": 9, "conv": (8, 256, 16), "big_mlp": 4096},
}

TARGETS = {("bxb", 4096, 1): 10.0, ("bxb", 4096, 64): 4.0, ("rxb", 4096, 1): 3.0}


@dataclass
class PackResult:
    """One comparison: ratios (torch / packed) over repeats, times and the share of the floor."""

    name: str
    threads: int
    ratios: list[float]
    torch_ms: float
    packed_ms: float
    of_limit: float | None = None
    target: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.ratios)

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else self.median >= self.target

    def line(self) -> str:
        spread = f"[{min(self.ratios):.2f}, {max(self.ratios):.2f}]"
        limit = f"{self.of_limit:6.1%}" if self.of_limit is not None else "     -"
        verdict = ""
        if self.target is not None:
            verdict = f"target >= {self.target:g}: " + ("ok" if self.passed else "BELOW TARGET")
        if "model_eval_ms" in self.detail:
            verdict = f"eval ms {self.detail['model_eval_ms']:.3f}"
        return (f"{self.name:34s} {self.threads:>2d}  {self.torch_ms:9.3f} {self.packed_ms:9.3f}"
                f"  {self.median:7.2f} {spread:16s} {limit}  {verdict}")


HEADER = (f"{'case':34s} {'th':>2s}  {'torch ms':>9s} {'packed ms':>9s}  {'ratio':>7s} "
          f"{'[min, max]':16s} {'of limit':>6s}")


# --------------------------------------------------------------------------------- timing
def _per_call(fn: Callable[[], Any], budget_s: float) -> float:
    """Seconds per call of ``fn``: calls repeated for about ``budget_s``, the mean."""
    began = time.perf_counter()
    fn()
    once = time.perf_counter() - began
    calls = max(1, min(1000, int(budget_s / max(once, 1e-7))))
    began = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - began) / calls


def _compare(base: Callable[[], Any], packed: Callable[[], Any], repeats: int,
             budget_s: float) -> tuple[list[float], float, float]:
    base()
    packed()  # warm-up (and the numba kernels' first load)
    ratios, base_s, packed_s = [], [], []
    for _ in range(repeats):
        b = _per_call(base, budget_s)
        p = _per_call(packed, budget_s)
        ratios.append(b / p)
        base_s.append(b)
        packed_s.append(p)
    return ratios, statistics.median(base_s) * 1e3, statistics.median(packed_s) * 1e3


class _threads:
    """torch and numba on ``n`` threads inside the block."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __enter__(self) -> None:
        self._saved = (torch.get_num_threads(), numba.get_num_threads())
        torch.set_num_threads(self.n)
        numba.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self._saved[0])
        numba.set_num_threads(self._saved[1])


# --------------------------------------------------------------------------------- limits
def machine_limits(threads: int, tiny: bool = False) -> dict[str, float]:
    """XOR-popcount words per second and streaming read bytes per second on ``threads``."""
    with _threads(threads):
        words = np.random.default_rng(0).integers(0, 2**63, (threads, 512), dtype=np.uint64)
        out = np.zeros(threads, np.uint64)
        rounds = 200 if tiny else 20_000
        kernels.popcount_probe(words, 1, out)
        pop_s = float("inf")
        for _ in range(3):
            began = time.perf_counter()
            kernels.popcount_probe(words, rounds, out)
            pop_s = min(pop_s, time.perf_counter() - began)
        pop_rate = words.size * rounds / pop_s
        big = np.ones((8 if tiny else 512) * 2**20 // 8, np.uint64)
        chunks = np.zeros(threads * 8, np.uint64)
        kernels.read_probe(big, chunks.size, chunks)
        best = float("inf")
        for _ in range(5):
            began = time.perf_counter()
            kernels.read_probe(big, chunks.size, chunks)
            best = min(best, time.perf_counter() - began)
    return {"popcount_words_per_s": pop_rate, "read_bytes_per_s": big.nbytes / best}


def read_seconds(nbytes: int, threads: int, repeats: int = 7) -> float:
    """Best time of a hot streaming read of ``nbytes`` (the same size as a layer's packed
    weights, read again and again as the benchmark calls the layer: from cache when it fits),
    on one thread or on ``threads``, whichever is faster: a small read on several threads
    costs their wake-up, which a layer that runs small calls on one thread does not pay."""
    return min(_read_seconds_on(nbytes, count, repeats) for count in {1, threads})


def _read_seconds_on(nbytes: int, threads: int, repeats: int) -> float:
    """Best time of a hot streaming read of ``nbytes`` on ``threads`` threads."""
    words = np.ones(max(1, nbytes // 8), np.uint64)
    chunks = np.zeros(threads * 8, np.uint64)
    with _threads(threads):
        kernels.read_probe(words, chunks.size, chunks)
        best = float("inf")
        for _ in range(repeats):
            began = time.perf_counter()
            kernels.read_probe(words, chunks.size, chunks)
            best = min(best, time.perf_counter() - began)
    return best


def _floor_s(limits: dict[str, float], word_ops: float, weight_bytes: int, threads: int
             ) -> float:
    """Roofline: max(popcount time of the word operations, read time of the packed weights)."""
    return max(word_ops / limits["popcount_words_per_s"], read_seconds(weight_bytes, threads))


# --------------------------------------------------------------------------------- cases
def _linear_case(n: int, batch: int, mode: str, threads: int, limits: dict[str, float],
                 repeats: int, budget: float) -> PackResult:
    gen = torch.Generator().manual_seed(n + batch)
    w = torch.where(torch.randn(n, n, generator=gen) >= 0, 1.0, -1.0)
    x = torch.randn(batch, n, generator=gen)
    layer = PackedLinear(n, n, pack_signs_rows(w.numpy()), None, mode)
    xq = torch.where(x >= 0, 1.0, -1.0) if mode == "sign" else x
    if mode == "sign":
        base = lambda: F.linear(torch.where(x >= 0, 1.0, -1.0), w)  # noqa: E731
    else:
        base = lambda: F.linear(x, w)  # noqa: E731
    with _threads(threads):
        got, expected = layer(x), F.linear(xq, w)
        if mode == "sign":
            check = {"exact": torch.equal(got, expected)}
        else:  # the bound of stelab.pack.kernels: 2 (K - 1) u sum_j |x_j|
            bound = 2 * (n - 1) * 2.0**-24 * x.abs().sum(dim=1, keepdim=True)
            check = {"within_bound": bool(((got - expected).abs() <= bound).all()),
                     "max_abs_diff": float((got - expected).abs().max())}
        ratios, t_ms, p_ms = _compare(base, lambda: layer(x), repeats, budget)
    words = words_for(n)
    weight_bytes = n * words * 8
    if mode == "sign":
        floor = _floor_s(limits, batch * n * words, weight_bytes, threads)
    else:  # real inputs: no popcount; the floor is reading the bits
        floor = read_seconds(weight_bytes, threads)
    kind = "bxb" if mode == "sign" else "rxb"
    return PackResult(f"{kind} linear {n}x{n} batch {batch}", threads, ratios, t_ms, p_ms,
                      floor / (p_ms / 1e3), TARGETS.get((kind, n, batch)),
                      {**check, "floor_ms": floor * 1e3})


def _conv_case(batch: int, channels: int, size: int, threads: int, limits: dict[str, float],
               repeats: int, budget: float) -> PackResult:
    torch.manual_seed(0)
    conv = QuantConv2d(channels, channels, 3, padding=1, bias=False, input_quantizer="sign")
    with tempfile.TemporaryDirectory() as tmp:
        packed = load_packed(export_packed(conv, os.path.join(tmp, "c.safetensors")))
    w = torch.where(conv.weight.detach() >= 0, 1.0, -1.0)
    x = torch.randn(batch, channels, size, size)
    base = lambda: F.conv2d(torch.where(x >= 0, 1.0, -1.0), w, padding=1)  # noqa: E731
    with _threads(threads):
        exact = torch.equal(packed(x), base())
        ratios, t_ms, p_ms = _compare(base, lambda: packed(x), repeats, budget)
    k = channels * 9
    floor = _floor_s(limits, batch * size * size * channels * 9 * words_for(channels),
                     channels * words_for(k) * 8, threads)
    return PackResult(f"bxb conv {channels}ch 3x3 {size}x{size} b{batch}", threads, ratios,
                      t_ms, p_ms, floor / (p_ms / 1e3), None, {"exact": exact})


def _big_mlp(width: int) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = [QuantLinear(784, width, bias=False), nn.BatchNorm1d(width)]
    for _ in range(2):
        layers += [QuantLinear(width, width, bias=False, input_quantizer="ste_sign"),
                   nn.BatchNorm1d(width)]
    layers.append(QuantLinear(width, 10, input_quantizer="ste_sign", weight_quantizer=None))
    return nn.Sequential(*layers).eval()


def _digits_mlp() -> tuple[nn.Module, torch.Tensor]:
    from stelab.realdata import build_model, load_digits_task

    torch.manual_seed(0)
    model = build_model("mlp", "multiclass", "batchnorm").eval()
    _, _, X_te, _ = load_digits_task("multiclass", 0)
    return model, torch.from_numpy(X_te)


def _prebinarized(model: nn.Module) -> nn.Module:
    """The same float model with its binary weights computed once (W <- sign(W), no weight
    quantizer): what a careful torch deployment runs, the strongest float32 baseline."""
    import copy

    from stelab.nn import quantized_layers
    from stelab.quantizers import sign

    twin = copy.deepcopy(model).eval()
    with torch.no_grad():
        for _name, layer in quantized_layers(twin):
            if layer.weight_quantizer is not None:
                layer.weight.copy_(sign(layer.weight))
                layer.weight_quantizer = None
    return twin.requires_grad_(False)


def _model_case(name: str, model: nn.Module, x: torch.Tensor, threads: int, repeats: int,
                budget: float, sizes: dict[str, int]) -> PackResult:
    with tempfile.TemporaryDirectory() as tmp:
        path = export_packed(model, os.path.join(tmp, "m.safetensors"))
        packed = load_packed(path)
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        sizes[name] = path.stat().st_size
        sizes[f"{name} (torch.save)"] = buffer.tell()
    baseline = _prebinarized(model)
    with torch.no_grad(), _threads(threads):
        same = torch.equal(packed(x).argmax(-1), model(x).argmax(-1))
        ratios, t_ms, p_ms = _compare(lambda: baseline(x), lambda: packed(x), repeats, budget)
        eval_ms = _per_call(lambda: model(x), budget) * 1e3
    return PackResult(f"{name} batch {x.shape[0]}", threads, ratios, t_ms, p_ms, None, None,
                      {"same_predictions": same, "model_eval_ms": eval_ms})


# --------------------------------------------------------------------------------- run
def run_pack(quick: bool = False, tiny: bool = False, threads: list[int] | None = None,
             say: Printer = print) -> list[PackResult]:
    """Run every comparison on 1 thread and on all threads; print the table and file sizes."""
    size = "tiny" if tiny else ("quick" if quick else "full")
    plan = SIZES[size]
    repeats, budget = plan["repeats"], (0.01 if tiny else 0.15)
    thread_counts = threads or sorted({1, os.cpu_count() or 1})
    results: list[PackResult] = []
    sizes: dict[str, int] = {}
    digits, digits_x = _digits_mlp()
    width = plan["big_mlp"]
    big = _big_mlp(width)
    for n_threads in thread_counts:
        limits = machine_limits(n_threads, tiny)
        say(f"threads {n_threads}: XOR-popcount {limits['popcount_words_per_s'] / 1e9:.1f} G "
            f"words/s, streaming read {limits['read_bytes_per_s'] / 1e9:.1f} GB/s")
        for n in plan["linear"]:
            for batch in (1, 64):
                results.append(_linear_case(n, batch, "sign", n_threads, limits, repeats, budget))
            results.append(_linear_case(n, 1, "real", n_threads, limits, repeats, budget))
        b, ch, hw = plan["conv"]
        results.append(_conv_case(b, ch, hw, n_threads, limits, repeats, budget))
        results.append(_model_case("digits MLP", digits, digits_x[:1], n_threads, repeats,
                                   budget, sizes))
        results.append(_model_case("digits MLP", digits, digits_x, n_threads, repeats, budget,
                                   sizes))
        x = torch.randn(64, 784)
        for rows in (1, 64):
            results.append(_model_case(f"MLP 784-{width}x3-10", big, x[:rows], n_threads,
                                       repeats, budget, sizes))
        for r in results[-(len(plan["linear"]) * 3 + 5):]:
            say("  " + r.line())
    say("models: torch = the float model with its binary weights computed once (the float "
        "model's own eval(), which re-binarizes its latent weights every call, in 'eval ms')")
    say(HEADER)
    for r in results:
        say(r.line())
    exact = all(r.detail.get("exact", True) for r in results)
    bound = all(r.detail.get("within_bound", True) for r in results)
    same = all(r.detail.get("same_predictions", True) for r in results)
    say(f"binary x binary outputs bit-identical to torch: {exact}; real x binary within "
        f"2 (K - 1) u sum|x|: {bound}; model predictions identical: {same}")
    for name in [k for k in sizes if not k.endswith("(torch.save)")]:
        packed, full = sizes[name], sizes[f"{name} (torch.save)"]
        say(f"file size {name}: packed {packed:,} B, torch.save {full:,} B ({full / packed:.1f}x)")
    return results


def write_json(results: list[PackResult], path: str | os.PathLike[str]) -> str:
    """Write the comparisons (ratios of every repeat, times, share of the floor) as JSON."""
    from stelab.bench.common import write_payload

    return write_payload(path, {"results": [
        {"name": r.name, "threads": r.threads, "median": r.median, "ratios": r.ratios,
         "torch_ms": r.torch_ms, "packed_ms": r.packed_ms, "of_limit": r.of_limit,
         "target": r.target, "passed": r.passed, "detail": r.detail}
        for r in results
    ]})
