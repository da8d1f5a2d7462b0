"""Real x binary at batch >= 16: the compiled tile loop (kernels.real_binary_unpacked, the path
before) against unpacked sign tiles times torch's GEMM (matmul._real_gemm, the path now) and
torch float32 F.linear; same process, interleaved, median of 5 timings.

    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=src python bench/pack_rxb_gemm.py [THREADS]
"""

import statistics
import sys

import numpy as np
import torch
from torch.nn import functional as F

from stelab.bench.pack_limits import on_threads, per_call
from stelab.pack import kernels
from stelab.pack.bits import pack_signs_rows
from stelab.pack.matmul import _real_gemm


def compare(n: int, batch: int, threads: int) -> dict[str, float]:
    gen = torch.Generator().manual_seed(n)
    w = torch.where(torch.randn(n, n, generator=gen) >= 0, 1.0, -1.0)
    rows = pack_signs_rows(w.numpy())
    x = torch.randn(batch, n, generator=gen)
    padded = np.zeros((batch, rows.shape[1] * 64), np.float32)
    padded[:, :n] = x.numpy()
    out = np.empty((batch, n), np.float32)
    fns = {"loop": lambda: kernels.real_binary_unpacked(padded, rows, out),
           "gemm": lambda: _real_gemm(padded, rows),
           "f32": lambda: F.linear(x, w)}
    times: dict[str, list[float]] = {k: [] for k in fns}
    with on_threads(threads):
        for fn in fns.values():
            fn()
        for _ in range(5):
            for name, fn in fns.items():
                times[name].append(per_call(fn, 0.2))
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
for n in (1024, 4096):
    for batch in (16, 64):
        m = compare(n, batch, threads)
        print(f"rxb {n}x{n} batch {batch}, {threads} thread(s): loop {m['loop']:.3f} ms, "
              f"gemm {m['gemm']:.3f} ms, f32 {m['f32']:.3f} ms; loop/gemm "
              f"{m['loop'] / m['gemm']:.2f}x, f32/gemm {m['f32'] / m['gemm']:.2f}x")
