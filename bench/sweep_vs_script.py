"""Whole process: `stelab sweep` over the E1 workloads of `stelab bench`'s numpy ratio against
the research script a user writes first, each started as its own process and timed from start
to exit (imports, data drawing, compilation loading, the runs, writing the results).

    PYTHONPATH=src python bench/sweep_vs_script.py [--trials 16] [--steps 300] [--workers 1]

The script draws its own problems with numpy (teacher, Gaussian float32 inputs, labels, small
initialization) and runs the per-trial loop of src/stelab/bench/numpy_loop.py; the sweep runs
the same workloads through the engine and stores them (a fresh folder each time).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import sys, numpy as np
    d, trials, steps = 1024, int(sys.argv[1]), int(sys.argv[2])
    for n in (3549, 7098, 14196):
        eta = 0.5 * np.sqrt(np.pi * d / 2)
        for k in range(trials):
            rng = np.random.default_rng([n, k])
            w = rng.choice(np.array([-1, 1], dtype=np.float32), d)
            Z = rng.standard_normal((n, d), dtype=np.float32)
            y = np.where(Z @ w >= 0, np.float32(1), np.float32(-1))
            u = (1e-3 * rng.standard_normal(d)).astype(np.float32)
            for step in range(steps):
                q = np.where(u >= 0, np.float32(1), np.float32(-1))
                r = np.where(Z @ q >= 0, np.float32(1), np.float32(-1)) - y
                if not r.any():
                    break
                u -= np.float32(eta / n) * (r @ Z)
""")

SWEEP = textwrap.dedent("""
    [model]
    d = 1024
    [train]
    n = [3549, 7098, 14196]
    steps = {steps}
    [run]
    trials = {trials}
    seed = 1
    device = "cpu"
    [sweep]
    axes = ["train.n"]
""")


def timed(command: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp, "research.py")
        script.write_text(SCRIPT)
        config = Path(tmp, "sweep.toml")
        config.write_text(SWEEP.format(steps=args.steps, trials=args.trials))
        sweep_s = timed([sys.executable, "-m", "stelab", "sweep", str(config), "--out",
                         str(Path(tmp, "out")), "--executor", "local", "--workers",
                         str(args.workers)], env)
        script_s = timed([sys.executable, str(script), str(args.trials), str(args.steps)], env)
    print(f"whole process, d = 1024, n = 3549, 7098, 14196, {args.trials} trials, "
          f"T = {args.steps}: research script {script_s:.1f} s, stelab sweep "
          f"(--workers {args.workers}) {sweep_s:.1f} s, ratio {script_s / sweep_s:.2f}")


if __name__ == "__main__":
    main()
