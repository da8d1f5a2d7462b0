"""End to end: binary networks trained with :mod:`stelab.nn` on scikit-learn's digits, each
deployed four ways (:mod:`stelab.bench.pack_contenders`: torch float32, torch dynamic int8,
ONNX Runtime, packed), with test accuracy, latency at batch 1 and 64 on one thread and on all
threads, and file size; ``python examples/deploy_digits.py`` runs it and writes the table.

The networks: the digits binary MLP of :mod:`stelab.realdata` (64 -> 256 -> 256 -> 10: a real
x binary first layer, a binary x binary hidden layer, batch norm, a float readout on binary
inputs) and :func:`stelab.bench.pack.digits_convnet` (8 x 8 images: a real x binary conv, a
binary x binary conv with stride 2, a binary x binary readout). Both take the raw pixels
(0-16); Adam, cross-entropy, latent weights clipped to [-1, 1].
"""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from stelab.bench.pack import digits_convnet
from stelab.bench.pack_contenders import CONTENDERS, build_contenders
from stelab.bench.pack_limits import on_threads, time_interleaved
from stelab.nn import attach_weight_clip

__all__ = ["deploy_rows", "markdown_table", "train"]

Printer = Callable[[str], None]


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int = 0
          ) -> nn.Module:
    """Adam (lr 1e-2) on minibatches of 128, cross-entropy, the latent weights clipped to
    [-1, 1] after every step; returns ``model`` in eval mode."""
    for layer in model.modules():
        if hasattr(layer, "weight_clip") and layer.weight_clip is None:
            layer.weight_clip = 1.0
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    attach_weight_clip(optimizer, model)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 128):
            idx = order[start:start + 128]
            if len(idx) < 2:
                continue  # batch norm needs two samples
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            optimizer.step()
    return model.eval()


def _trained_models(epochs: int) -> list[tuple[str, nn.Module, torch.Tensor, torch.Tensor]]:
    from stelab.realdata import build_model, load_digits_task

    X_tr, y_tr, X_te, y_te = load_digits_task("multiclass", seed=0)
    x_tr, y_tr_t = torch.from_numpy(X_tr), torch.from_numpy(y_tr)
    x_te, y_te_t = torch.from_numpy(X_te), torch.from_numpy(y_te)
    torch.manual_seed(0)
    mlp = train(build_model("mlp", "multiclass", "batchnorm"), x_tr, y_tr_t, epochs)
    torch.manual_seed(0)
    images = (-1, 1, 8, 8)
    convnet = train(digits_convnet(), x_tr.reshape(images), y_tr_t, epochs)
    return [("binary MLP", mlp, x_te, y_te_t),
            ("binary ConvNet", convnet, x_te.reshape(images), y_te_t)]


def _latencies(fns: dict[str, Any], x: torch.Tensor, threads: int, repeats: int,
               budget: float) -> dict[str, dict[str, list[float]]]:
    out = {}
    with on_threads(threads), torch.no_grad():
        for batch in (1, 64):
            xs = x[:batch]
            calls = {c: (lambda fn=fn, xs=xs: fn(xs)) for c, fn in fns.items() if fn is not None}
            out[f"batch {batch}, {threads} thread(s)"] = time_interleaved(calls, repeats, budget)
    return out


def deploy_rows(epochs: int = 20, repeats: int = 5, budget: float = 0.15,
                threads: list[int] | None = None, say: Printer = print) -> list[dict[str, Any]]:
    """Train both networks, deploy each four ways and measure them.

    Parameters
    ----------
    epochs : int
        Training epochs of each network.
    repeats, budget : int, float
        Timing repeats (interleaved across the four deployments) and seconds per timing.
    threads : list of int, optional
        Thread counts (default: 1 and ``os.cpu_count()``).
    say : callable
        Receives progress lines.

    Returns
    -------
    list of dict
        One row per (network, deployment): ``model``, ``deployment``, ``accuracy`` (share of
        the 360 test images), ``agreement`` (share predicted as the float model does),
        ``file_bytes``, and ``latency_ms``: {``"batch B, T thread(s)"``: median ms per call},
        ``latency_spread_ms``: the same as [min, max] over the repeats.
    """
    rows = []
    counts = threads or sorted({1, os.cpu_count() or 1})
    for name, model, x, y in _trained_models(epochs):
        with torch.no_grad():
            reference = model(x).argmax(1)
        say(f"{name}: float model test accuracy {(reference == y).float().mean():.3f}")
        sizes: dict[str, Any] = {}
        timings: dict[str, dict[str, list[float]]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for count in counts:
                fns = build_contenders(model, tuple(x.shape[1:]), count, tmp, sizes)
                timings.update(_latencies(fns, x, count, repeats, budget))
            with torch.no_grad():
                predictions = {c: fn(x).argmax(1) for c, fn in fns.items() if fn is not None}
        for c in CONTENDERS:
            if c not in predictions:
                continue
            rows.append({
                "model": name, "deployment": c,
                "accuracy": float((predictions[c] == y).float().mean()),
                "agreement": float((predictions[c] == reference).float().mean()),
                "file_bytes": sizes.get(c),
                "latency_ms": {k: statistics.median(t[c]) * 1e3 for k, t in timings.items()},
                "latency_spread_ms": {k: [min(t[c]) * 1e3, max(t[c]) * 1e3]
                                      for k, t in timings.items()},
            })
            say(f"  {c}: accuracy {rows[-1]['accuracy']:.3f}, " + ", ".join(
                f"{k} {v:.3f} ms" for k, v in rows[-1]["latency_ms"].items()))
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The rows as one markdown table (latency: median ms per call, [min, max] over repeats)."""
    keys = list(rows[0]["latency_ms"])
    head = ["network", "deployment", "test accuracy", "agrees with float", "file size (B)",
            *[f"ms, {k}" for k in keys]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        size = f"{r['file_bytes']:,}" if r["file_bytes"] else "-"
        cells = [r["model"], r["deployment"], f"{r['accuracy']:.3f}", f"{r['agreement']:.3f}",
                 size]
        for k in keys:
            lo, hi = r["latency_spread_ms"][k]
            cells.append(f"{r['latency_ms'][k]:.3f} [{lo:.3f}, {hi:.3f}]")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
