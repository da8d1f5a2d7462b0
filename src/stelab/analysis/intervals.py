"""The rule every reported interval follows: it contains its point estimate."""

from __future__ import annotations

import math


def contain_estimate(low: float, high: float, estimate: float) -> tuple[float, float]:
    """Widen a percentile interval to contain its point estimate: (min(low, est), max(high, est)).

    A percentile bootstrap interval can miss the estimate (a skewed or biased replicate
    distribution, a parametric bootstrap from a penalized fit); moving the nearer end to the
    estimate is the smallest change that restores low <= estimate <= high. The widened interval
    stays inside the quantity's range when the interval and the estimate both were.

    Parameters
    ----------
    low, high : float
        The interval's ends (same units as ``estimate``); a nan end means "not reported" and
        stays nan.
    estimate : float
        The point estimate; when it is nan the ends are returned unchanged.

    Returns
    -------
    (float, float)
        The ends, ``low <= estimate <= high`` wherever all three are finite.

    Examples
    --------
    >>> contain_estimate(2.0, 3.0, 1.5)
    (1.5, 3.0)
    >>> contain_estimate(float("nan"), 3.0, 3.5)
    (nan, 3.5)
    """
    low, high, estimate = float(low), float(high), float(estimate)
    if math.isnan(estimate):
        return (low, high)
    if not math.isnan(low):
        low = min(low, estimate)
    if not math.isnan(high):
        high = max(high, estimate)
    return (low, high)
