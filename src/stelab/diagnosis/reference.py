"""The Gaussian reference of the prediction: how often a sample tells w* from a one-flip
neighbour for Gaussian rows, and the Gaussian sample size n50 at which the STE-gradient method
succeeds in half the trials (measured with the engine)."""

from __future__ import annotations

import math
from functools import lru_cache

from stelab.config import parse_config
from stelab.engine import run_experiment
from stelab.errors import ConfigError

__all__ = [
    "REFERENCE_EVALUATIONS",
    "REFERENCE_TRIALS",
    "gaussian_discrimination_probability",
    "gaussian_n50",
]

#: trials and work of the Gaussian reference (:func:`gaussian_n50`): about 17 evaluations of
#: n = d's cost (doubling from n = d to ~2-4 d, then four bisections)
REFERENCE_TRIALS = 32
REFERENCE_EVALUATIONS = 17


def gaussian_discrimination_probability(d: int) -> float:
    """P(sign(x.q) != sign(x.w*)) for x ~ N(0, I_d) and q = w* with one coordinate flipped:
    theta_1 / pi with cos(theta_1) = 1 - 2/d (the angle between w* and q)."""
    return math.acos(max(-1.0, 1.0 - 2.0 / d)) / math.pi


@lru_cache(maxsize=32)
def gaussian_n50(
    d: int, steps: int = 500, trials: int = REFERENCE_TRIALS, seed: int = 0,
    max_flops: float = math.inf,
) -> float:
    """The Gaussian sample size at which STE (m = 1, sign, identity STE, default step size and
    init) reaches w* at the last iterate of ``steps`` in half of the trials, measured with
    :func:`stelab.engine.run_experiment`: doubling from n = d until the rate crosses 0.5, then
    4 bisections in log n, then the n where the linear interpolation of the rate in log n
    crosses 0.5. ``max_flops`` bounds the work (4 n d T per trial and evaluation): past it the
    search stops with a ConfigError that says to pass ``--gaussian-n50``."""
    rates: dict[int, float] = {}
    spent = [0.0]

    def rate(n: int) -> float:
        if n not in rates:
            spent[0] += 4.0 * trials * steps * n * d
            if spent[0] > max_flops:
                raise ConfigError(
                    f"--gaussian-n50: measuring the Gaussian reference at d = {d}, T = {steps} "
                    f"needs more than {max_flops:.2g} flops (reached n = {n}); give "
                    "--gaussian-n50 N (the Gaussian 50% sample size), or allow more time with "
                    "--max-seconds"
                )
            cfg = parse_config(
                {
                    "model": {"d": d},
                    "train": {"n": n, "steps": steps},
                    "run": {"trials": trials, "seed": seed, "device": "cpu"},
                }
            )
            rates[n] = float(run_experiment(cfg)["success_last"].mean())
        return rates[n]

    lo, hi = None, max(2, d)
    while rate(hi) < 0.5:
        lo, hi = hi, hi * 2
        if hi > 1 << 24:
            raise ConfigError(
                f"gaussian_n50: no success up to n = {hi} at d = {d}, steps = {steps}"
            )
    if lo is None:
        lo = hi
        while lo > 1 and rate(lo) >= 0.5:
            hi, lo = lo, max(1, lo // 2)
        if rate(lo) >= 0.5:
            return float(lo)
    for _ in range(4):
        mid = int(round(math.sqrt(lo * hi)))
        if mid in (lo, hi):
            break
        if rate(mid) >= 0.5:
            hi = mid
        else:
            lo = mid
    r_lo, r_hi = rate(lo), rate(hi)
    frac = (0.5 - r_lo) / (r_hi - r_lo) if r_hi > r_lo else 1.0
    return float(math.exp(math.log(lo) + frac * (math.log(hi) - math.log(lo))))
