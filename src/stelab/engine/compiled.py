"""Compiled CPU kernels (numba) for the per-trial work of a step: update the pre-activations
from the flipped columns (incremental engine), decide every row exactly and build the residuals
and gradient bags (both engines' full passes, where the surrogate is {0, 1}-valued: the
kernels are compiled from the ends of its interval, :func:`interval_constants`), and the
per-step bookkeeping (signs and flips, the recorder's counts, the incremental engine's plan and
column cache).

Why compiled: a light step touches a few moving trials of a few thousand rows each; as a chain
of torch operations (gather, compare, fix-up, activations, mean, residual, mask, coefficients,
scatter) that work costs ~15 launches per call, and the launches, not the arithmetic, set its
time. One loop per trial that reads each row once does the same arithmetic without them.

The results are those of the torch code, bit for bit (tested):

* exact pre-activation of a row: h = sum_j Z_rj q_j in float64, summed in order j = 0..d-1
  (each product of float32 numbers is exact in float64); :func:`stelab.engine.passes.\
exact_preactivations` uses the same kernel on the CPU, so both engines write the same values;
* decisions, residuals and coefficients (formulas in :mod:`stelab.engine.decisions`): an entry
  of h within the error bound of a threshold is decided on its exact value, every other entry
  on its float value; res_i = (sum_j act_ij) / m - y_i and c_ij = res_i * sigma~'_ij / m, each
  operation rounded to the data dtype as the torch code rounds it (numba compiles without
  fast-math, so every product and quotient is rounded as written).

The gradient sums G = sum_r c_r Z_r stay with ``embedding_bag`` (:func:`stelab.engine.passes.\
bag_sums`): its sums define the canonical G of both engines, and it reads the rows faster
than a plain compiled loop (it prefetches).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

import numba
import numpy as np

from stelab.devices import cuda_available
from stelab.surrogates import SURROGATES, get_surrogate

if TYPE_CHECKING:
    from stelab.config import Config

__all__ = [
    "COLD_MAX_FLIPS", "FILL_BEFORE_END", "RESET_FACTOR", "add_columns", "assign_slots",
    "coefficients", "count_step", "decide", "exact_rows", "fill_fresh", "interval_constants",
    "plan_step", "refresh_kernel", "take_signs", "unsupported",
]

# The update policy of the engines that keep h = Z q from step to step (incremental, trialwise):
#: a trial with more flipped columns that are not cached than this is recomputed by a full pass
#: (a strided read of one column costs about 0.15-0.2 of a full pass)
COLD_MAX_FLIPS = 4
#: columns are not cached (copied) in the last steps (no time left to use them)
FILL_BEFORE_END = 8
#: recompute h in full when its error bound exceeds this multiple of a full pass's bound
RESET_FACTOR = 8.0

_jit = numba.njit(nogil=True, cache=True)
_inline = numba.njit(nogil=True, cache=True, inline="always")


@_jit
def _exact_dot(row: np.ndarray, q: np.ndarray) -> float:
    """sum_j row[j] q[j] in float64, in order (exact products, one rounding per addition)."""
    total = 0.0
    for j in range(row.shape[0]):
        total += np.float64(row[j]) * np.float64(q[j])
    return total


@_jit
def exact_rows(rows: np.ndarray, q: np.ndarray, out: np.ndarray) -> None:
    """out[i] = rows[i] . q[i] in float64 (rows (r, d), q (r, d), out (r,))."""
    for i in range(rows.shape[0]):
        out[i] = _exact_dot(rows[i], q[i])


@_jit
def _copy_column(Zk: np.ndarray, j: int, out: np.ndarray) -> None:
    """out = Z_k[:, j] (one strided read of the trial's rows)."""
    for r in range(out.shape[0]):
        out[r] = Zk[r, j]


@_jit
def take_signs(u: np.ndarray, q: np.ndarray, flips: np.ndarray) -> None:
    """q = sign(u) in place, sign(0) = +1 (as recorder.binary); flips[k, j]: q[k, j] changed."""
    for k in range(u.shape[0]):
        for j in range(u.shape[1]):
            new = q.dtype.type(1.0) if u[k, j] >= 0 else q.dtype.type(-1.0)
            flips[k, j] = new != q[k, j]
            q[k, j] = new


@_jit
def count_step(q: np.ndarray, w_star: np.ndarray, hamming: np.ndarray,
               q_sum: np.ndarray) -> int:
    """hamming[k] = #{j : q[k, j] != w*[k, j]} and q_sum += q (the recorder's per-step counts);
    returns the number of trials away from w*."""
    away = 0
    for k in range(q.shape[0]):
        count = 0
        for j in range(q.shape[1]):
            count += q[k, j] != w_star[k, j]
            q_sum[k, j] += np.int64(q[k, j])
        hamming[k] = count
        away += count > 0
    return away


@_jit
def plan_step(flips: np.ndarray, table: np.ndarray, err: np.ndarray, per_update: np.ndarray,
              bound: np.ndarray, cold_max_flips: int, reset_factor: float, moved: np.ndarray,
              full: np.ndarray, idle: np.ndarray) -> int:
    """For each trial k after a step: moved[k] (a column flipped), full[k] (recompute h by a
    full pass: more than ``cold_max_flips`` flipped columns are not cached, or the error bound
    err + flips * per_update would exceed ``reset_factor`` * bound) and idle[k] (steps since
    it last moved). Returns the number of trials with ``full``."""
    count = 0
    for k in range(flips.shape[0]):
        flipped = 0
        uncached = 0
        for j in range(flips.shape[1]):
            if flips[k, j]:
                flipped += 1
                uncached += table[k, j] < 0
        moved[k] = flipped > 0
        full[k] = uncached > cold_max_flips or \
            err[k] + flipped * per_update[k] > reset_factor * bound[k]
        count += full[k]
        idle[k] = 0 if flipped else idle[k] + 1
    return count


@_jit
def assign_slots(trials: np.ndarray, wanted: np.ndarray, table: np.ndarray, free: np.ndarray,
                 free_count: np.ndarray, fresh: np.ndarray) -> None:
    """Give each wanted (trial, column) not cached yet a slot of the shared column cache, while
    free slots last (``free[:free_count[0]]``, a stack): table[k, j] = slot, marked ``fresh``
    (its column is copied in by the worker that next updates or fills the trial)."""
    for k in trials:
        for j in range(wanted.shape[1]):
            if wanted[k, j] and table[k, j] < 0 and free_count[0] > 0:
                free_count[0] -= 1
                slot = free[free_count[0]]
                table[k, j] = slot
                fresh[slot] = True


@_jit
def _fetch_if_fresh(Zk: np.ndarray, j: int, slot: int, fresh: np.ndarray,
                    store: np.ndarray) -> None:
    """Copy column j of a trial into its cache slot when the slot still waits for it."""
    if fresh[slot]:
        _copy_column(Zk, j, store[slot])
        fresh[slot] = False


#: rows per tile when many columns of a trial are copied at once (the tile's rows stay in L2
#: while each column gets FILL_BLOCK consecutive floats: whole cache lines on both sides)
FILL_BLOCK = 16


@_jit
def fill_fresh(Zk: np.ndarray, table: np.ndarray, fresh: np.ndarray, store: np.ndarray) -> None:
    """Copy the columns of a trial whose slots are fresh into the cache (``table`` the trial's
    row): a blocked transpose, FILL_BLOCK rows at a time, so that the trial's data is read
    once however many columns are copied."""
    columns = np.empty(table.shape[0], dtype=np.int64)
    count = 0
    for j in range(table.shape[0]):
        if table[j] >= 0 and fresh[table[j]]:
            columns[count] = j
            count += 1
    for start in range(0, Zk.shape[0], FILL_BLOCK):
        stop = min(start + FILL_BLOCK, Zk.shape[0])
        for p in range(count):
            j = columns[p]
            column = store[table[j]]
            for r in range(start, stop):
                column[r] = Zk[r, j]
    for p in range(count):
        fresh[table[columns[p]]] = False


@_jit
def add_columns(hk, store, slots, weights, count):  # noqa: ANN001, ANN202
    """h_k += weights[p] * store[slots[p]] for p < count: eight columns per pass over h, each
    read as one sequential stream (measured 7x faster than adding them one by one, which
    re-reads h per column and does not vectorize). Per row the columns are added in order p."""
    p = 0
    while p + 8 <= count:
        c0, c1, c2, c3 = store[slots[p]], store[slots[p + 1]], store[slots[p + 2]], \
            store[slots[p + 3]]
        c4, c5, c6, c7 = store[slots[p + 4]], store[slots[p + 5]], store[slots[p + 6]], \
            store[slots[p + 7]]
        w0, w1, w2, w3 = weights[p], weights[p + 1], weights[p + 2], weights[p + 3]
        w4, w5, w6, w7 = weights[p + 4], weights[p + 5], weights[p + 6], weights[p + 7]
        for r in range(hk.shape[0]):
            x = hk[r] + w0 * c0[r]
            x = x + w1 * c1[r]
            x = x + w2 * c2[r]
            x = x + w3 * c3[r]
            x = x + w4 * c4[r]
            x = x + w5 * c5[r]
            x = x + w6 * c6[r]
            hk[r] = x + w7 * c7[r]
        p += 8
    while p < count:
        column = store[slots[p]]
        v = weights[p]
        for r in range(hk.shape[0]):
            hk[r] += v * column[r]
        p += 1


@_jit
def _apply_flips(hk, Zk, qk, flips, table, fresh, store, slots, weights):  # noqa: ANN001, ANN202
    """h_k += sum_j 2 q_j Z_k[:, j] over the flipped columns j: from the column cache where the
    column has a slot (copied in first when the slot is fresh), else from the data (strided).
    Returns the number of flipped columns. (The order of the additions does not matter for the
    outcomes: every decision on h is exact, within the error bound of h.)"""
    count = 0
    cached = 0
    for j in range(flips.shape[0]):
        if not flips[j]:
            continue
        count += 1
        v = qk[j] + qk[j]
        slot = table[j]
        if slot >= 0:
            _fetch_if_fresh(Zk, j, slot, fresh, store)
            slots[cached] = slot
            weights[cached] = v
            cached += 1
        else:
            for r in range(hk.shape[0]):
                hk[r] += v * Zk[r, j]
    add_columns(hk, store, slots, weights, cached)
    return count


def unsupported(cfg: Config, engine: str) -> str | None:
    """Why the compiled kernels cannot run ``cfg`` on ``engine`` (one line naming the field), or
    None: they need full batch, a {0, 1}-valued surrogate, float32 data and the CPU."""
    if cfg.train.batch_size is not None:
        return f"train.batch_size: the {engine} engine needs full batch (batch_size absent)"
    if not get_surrogate(cfg.train.ste).discrete:
        allowed = ", ".join(name for name, s in SURROGATES.items() if s.discrete)
        return f"train.ste: {cfg.train.ste!r} is not supported by the {engine} engine; " \
            f"allowed: {allowed}"
    if cfg.run.dtype != "float32":
        return f"run.dtype: the {engine} engine needs float32 (its exact fix-ups use float64)"
    if cfg.run.device == "cuda" or (cfg.run.device == "auto" and cuda_available()):
        return f"run.device: the {engine} engine runs on the CPU (its kernels are compiled " \
            "for it); allowed: cpu"
    return None


def interval_constants(
    surrogate: str, params: dict[str, float] | None = None
) -> tuple[float, float, bool]:
    """(lo, hi, closed) of a {0, 1}-valued surrogate's interval with its ``params`` (a width
    scales the ends, :meth:`stelab.quantizers.Surrogate.interval_for`), an unbounded end as
    -inf or +inf: the constants a kernel is compiled with. ValueError for a continuous
    surrogate (no compiled form)."""
    interval = get_surrogate(surrogate).interval_for(params)
    if interval is None:
        raise ValueError(f"surrogate {surrogate!r} is not {{0, 1}}-valued: no compiled form")
    lo = -np.inf if interval.lo is None else interval.lo
    hi = np.inf if interval.hi is None else interval.hi
    return lo, hi, interval.closed


# The kernels below are compiled with (lo, hi, closed) as constants: the tests on them fold
# away, leaving per row the comparisons of that one surrogate.
@_inline
def _near(hv, x: float, bound32, bound: float, s: float, lo: float, hi: float) -> bool:  # noqa: ANN001
    """Whether h (float hv, as float64 x) is within the error bound of 0 (float32 test, as
    decisions.near_threshold) or of a finite, non-zero end lo * s or hi * s of the
    surrogate's interval."""
    near = abs(hv) <= bound32
    if hi != np.inf and hi != 0.0:
        near = near or abs(x - hi * s) <= bound
    if lo != -np.inf and lo != 0.0:
        near = near or abs(x - lo * s) <= bound
    return near


@_inline
def _inside(x: float, s: float, lo: float, hi: float, closed: bool) -> bool:
    """x in (lo s, hi s), or [lo s, hi s] when closed; an infinite end is no bound (as
    :meth:`stelab.quantizers.Interval.contains`)."""
    inside = True
    if lo != -np.inf:
        lo_s = 0.0 if lo == 0.0 else lo * s
        inside = x >= lo_s if closed else x > lo_s
    if hi != np.inf:
        hi_s = 0.0 if hi == 0.0 else hi * s
        inside = inside and (x <= hi_s if closed else x < hi_s)
    return inside


@_inline
def _rule(x: float, s: float, sign: bool, lo: float, hi: float, closed: bool, one, low):  # noqa: ANN001, ANN202
    """(sigma(h), sigma~'(h / s)) of a pre-activation x: the activation is sign (h >= 0 -> 1,
    else -1) or step (h > 0 -> 1, else 0); the surrogate derivative is 1 inside its interval
    (lo, hi, closed), else 0."""
    positive = x >= 0 if sign else x > 0
    inside = _inside(x, s, lo, hi, closed)
    return (one if positive else low), (one if inside else one - one)


@_inline
def _round_up32(bound: float) -> np.float32:
    """The float64 bound as float32, at least as large (as decisions._round_up)."""
    return np.float32(bound * (1.0 + 2.0**-20))


@_inline
def decide(hk, Zk, qk, bound, s, sign, lo, hi, closed, act, derivative):  # noqa: ANN001, ANN202
    """act[r] = sigma(h_r), derivative[r] = sigma~'(h_r / s) for every row of one trial: each on
    the float value of h_r, except the rows within the error bound of a threshold, decided on
    their exact value (written back into hk as float32)."""
    bound32 = _round_up32(bound)
    one = np.ones(1, dtype=hk.dtype)[0]
    low = one - one - one if sign else one - one
    near_rows = 0
    # first every row on its float value (no calls in the loop: it vectorizes) ...
    for r in range(hk.shape[0]):
        x = np.float64(hk[r])
        near_rows += _near(hk[r], x, bound32, bound, s, lo, hi)
        act[r], derivative[r] = _rule(x, s, sign, lo, hi, closed, one, low)
    if near_rows == 0:
        return
    # ... then the few rows near a threshold again, on their exact value
    for r in range(hk.shape[0]):
        x = np.float64(hk[r])
        if _near(hk[r], x, bound32, bound, s, lo, hi):
            x = _exact_dot(Zk[r], qk)
            hk[r] = x
            act[r], derivative[r] = _rule(x, s, sign, lo, hi, closed, one, low)


@_inline
def coefficients(act, y, m, residual, coeff):  # noqa: ANN001, ANN202
    """residual[i] = (sum_j act[i m + j]) / m - y[i] and coeff[r] = residual * coeff[r] / m,
    ``coeff`` holding sigma~' on entry; for m = 1 the divisions by 1 are exact and left out."""
    if m == 1:
        for r in range(act.shape[0]):
            res = act[r] - y[r]
            residual[r] = res
            coeff[r] = res * coeff[r]
        return
    units = np.full(1, m, dtype=act.dtype)[0]  # m in the data dtype (an int promotes)
    for i in range(y.shape[0]):
        total = act[i * m]
        for r in range(i * m + 1, i * m + m):
            total += act[r]
        res = total / units - y[i]
        residual[i] = res
        for r in range(i * m, i * m + m):
            coeff[r] = res * coeff[r] / units


def refresh_kernel(
    activation: str, surrogate: str, m: int, params: dict[str, float] | None = None
) -> Callable[..., None]:
    """The compiled refresh of trials for one (activation, {0, 1}-valued surrogate with its
    ``params``, m); cached by the interval's ends, so a registered surrogate redefined under
    the same name gets its own kernel. See :func:`_refresh_kernel`."""
    return _refresh_kernel(activation, *interval_constants(surrogate, params), m)


@cache
def _refresh_kernel(
    activation: str, lo: float, hi: float, closed: bool, m: int
) -> Callable[..., None]:
    """The compiled refresh of trials for one (activation, surrogate interval, m): the
    constants (the surrogate's interval: :func:`interval_constants`) are
    compiled into the loops (a kernel that reads them as arguments measured 4x slower per trial,
    its row loops keeping every case's branches). Compiled on first use, cached on disk.

    The kernel ``(ks, Z3, h, q, y, err, per_update, scale, flips, apply, table, fresh, store,
    residual, bag_rows, bag_weights, bag_offsets)`` brings trials ``ks`` up to the current q;
    for the i-th, k = ks[i]:

    1. when apply[i]: h[k] += 2 q[k, j] Z_k[:, j] for the columns j that flipped (flips[k, j]),
       read from the column cache store[table[k, j]] where the column has a slot (a ``fresh``
       slot gets its column copied in first), else from the data; err[k] grows by
       per_update[k] a column;
    2. decides every row of h[k]: on the float value, except the rows within err[k] of 0 or of
       a threshold theta * scale[k] of the surrogate, decided on their exact value (written back
       into h as float32);
    3. writes residual[k] (n,) and the rows with a non-zero coefficient (module docstring) as
       the bag of the trial's gradient sum: rows k*n*m + r (``bag_rows``) with their
       coefficients (``bag_weights``), from bag_offsets[i] to bag_offsets[i+1] (the bags of
       :func:`stelab.engine.passes.bag_sums`, in row order).

    ``scale`` (t,) float64 holds s(q) with batch-norm statistics, else ones.
    """
    sign = activation == "sign"

    @_jit
    def kernel(ks, Z3, h, q, y, err, per_update, scale, flips, apply, table, fresh, store,  # noqa: ANN001, ANN202
               residual, bag_rows, bag_weights, bag_offsets):
        R = Z3.shape[1]
        act = np.empty(R, dtype=h.dtype)
        coeff = np.empty(R, dtype=h.dtype)
        slots = np.empty(Z3.shape[2], dtype=np.int64)
        weights = np.empty(Z3.shape[2], dtype=h.dtype)
        count = 0
        for i in range(ks.shape[0]):
            k = ks[i]
            if apply[i]:
                flipped = _apply_flips(h[k], Z3[k], q[k], flips[k], table[k], fresh, store,
                                       slots, weights)
                err[k] += flipped * per_update[k]
            decide(h[k], Z3[k], q[k], err[k], scale[k], sign, lo, hi, closed, act, coeff)
            coefficients(act, y[k], m, residual[k], coeff)
            bag_offsets[i] = count
            for r in range(R):
                if coeff[r] != 0:
                    bag_rows[count] = k * R + r
                    bag_weights[count] = coeff[r]
                    count += 1
        bag_offsets[ks.shape[0]] = count

    return kernel
