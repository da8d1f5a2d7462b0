"""Proportions: the Wilson score interval of a binomial success rate (summaries and reports)."""

from __future__ import annotations

import math


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    With p = k/n and z the two-sided normal quantile::

        centre = (p + z^2 / 2n) / (1 + z^2 / n)
        half   = z sqrt(p (1 - p) / n + z^2 / 4n^2) / (1 + z^2 / n)

    The interval always contains p (the ends are exactly 0 at k = 0 and 1 at k = n, where
    rounding would otherwise leave them a hair off).

    Parameters
    ----------
    successes : int
        k, the number of successes (0 <= k <= n).
    trials : int
        n, the number of trials.
    confidence : float
        Two-sided coverage, in (0, 1).

    Returns
    -------
    (float, float)
        (low, high), within [0, 1]; (nan, nan) for n = 0.

    Examples
    --------
    >>> low, high = wilson_interval(7, 10)
    >>> round(low, 4), round(high, 4)
    (0.3968, 0.8922)
    >>> wilson_interval(0, 10)[0], wilson_interval(10, 10)[1]
    (0.0, 1.0)
    """
    if trials <= 0:
        return (math.nan, math.nan)
    # scipy.special.ndtri is what scipy.stats.norm.ppf computes (bit for bit), without the
    # ~0.5 s import of scipy.stats that every `stelab run` summary used to pay
    from scipy.special import ndtri

    z = float(ndtri(0.5 + confidence / 2.0))
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= trials else min(1.0, centre + half)
    return (low, high)
