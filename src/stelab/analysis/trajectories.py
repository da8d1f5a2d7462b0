"""Statistics of recorded trajectories (H_0..H_T, loss_0..loss_T) at shorter horizons T' <= T.

At horizon T' the iterates are t = 1..T' (t = 0 is the initialization), matching
:mod:`stelab.outcomes`; at T' = T every statistic equals the row's outcome column:

    last(T')       = 1[H_T' = 0]
    best(T')       = 1[min_{1<=t<=T'} H_t = 0]
    occupation(T') = (1/T') #{1 <= t <= T' : H_t = 0}
    returns(T')    = #{1 <= t <= T' : H_t = 0, H_{t-1} > 0} - 1[first hit <= T' and H_0 > 0]
    exits(T')      = #{1 <= t <= T' : H_t > 0, H_{t-1} = 0}
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stelab.errors import DataError
from stelab.outcomes import zero_visit_runs

TRAJECTORY_COLUMNS = ("hamming_trajectory", "loss_trajectory")


def trajectories(rows: pd.DataFrame, column: str = "hamming_trajectory") -> list[np.ndarray]:
    """The per-row trajectory arrays of ``column`` (DataError when it was not recorded).

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows.
    column : str
        ``"hamming_trajectory"`` (H_t, integers) or ``"loss_trajectory"``.

    Returns
    -------
    list of ndarray, each shape (T + 1,)
        One array per row, in row order.

    Raises
    ------
    DataError
        The column is missing or a row has no trajectory.
    """
    if column not in rows:
        raise DataError(f"rows.{column}: column missing; run with [record] trajectory = true"
                        + (" and loss_trajectory = true" if column == "loss_trajectory" else ""))
    out = []
    for value in rows[column]:
        if value is None or (np.ndim(value) == 0):
            raise DataError(f"rows.{column}: a row has no trajectory; record it for every trial")
        out.append(np.asarray(value))
    return out


def horizon_grid(steps: int, points: int = 25) -> np.ndarray:
    """About ``points`` distinct horizons from 1 to ``steps``, evenly spaced in log T.

    Parameters
    ----------
    steps : int
        The largest horizon T (steps), >= 1.
    points : int
        Horizons asked for (rounding can merge some).

    Returns
    -------
    ndarray, shape (<= points,), int64
        Sorted distinct horizons in 1..steps.

    Raises
    ------
    DataError
        ``steps`` < 1.

    Examples
    --------
    >>> horizon_grid(100, 5)
    array([  1,   3,  10,  32, 100])
    """
    if steps < 1:
        raise DataError(f"steps: {steps} < 1")
    grid = np.unique(np.round(np.geomspace(1, steps, points)).astype(np.int64))
    return grid[(grid >= 1) & (grid <= steps)]


def horizon_stats(hamming: np.ndarray, horizons: np.ndarray) -> dict[str, np.ndarray]:
    """The statistics of the module docstring for trajectories ``hamming`` (k, T+1).

    Parameters
    ----------
    hamming : ndarray, shape (k, T + 1) or (T + 1,), int
        Hamming distances H_t of k trajectories, t = 0..T.
    horizons : ndarray, shape (h,), int
        Horizons T' in 1..T (steps).

    Returns
    -------
    dict of str to ndarray, each shape (k, h)
        success_last, success_best (bool), occupation (float, share of steps in 1..T' with
        H = 0), n_returns, n_exits (int64).

    Raises
    ------
    DataError
        A horizon outside 1..T.
    """
    H = np.atleast_2d(np.asarray(hamming))
    T = H.shape[1] - 1
    horizons = np.asarray(horizons, dtype=np.int64)
    if horizons.size and (horizons.min() < 1 or horizons.max() > T):
        raise DataError(f"horizons: must lie in 1..{T} (the recorded steps)")
    zero = H == 0
    at = zero[:, 1:]
    entries = np.cumsum(at & ~zero[:, :-1], axis=1)
    exits = np.cumsum(~at & zero[:, :-1], axis=1)
    visits = np.cumsum(at, axis=1)
    idx = horizons - 1
    hit = visits[:, idx] > 0
    first_is_entry = hit & ~zero[:, :1]
    return {
        "success_last": at[:, idx],
        "success_best": hit,
        "occupation": visits[:, idx] / horizons[None, :],
        "n_returns": entries[:, idx] - first_is_entry.astype(np.int64),
        "n_exits": exits[:, idx],
    }


def group_keys(rows: pd.DataFrame, by: list[str]):  # noqa: ANN201
    """(key tuple, rows) of each group of ``rows`` by the columns ``by``, in sorted key order
    (one group with key () when ``by`` is empty); DataError naming a missing column."""
    missing = [c for c in by if c not in rows]
    if missing:
        raise DataError(f"by: column {missing[0]!r} not in rows")
    if not by:
        yield (), rows
        return
    for key, group in rows.groupby(by, sort=True):
        yield (key if isinstance(key, tuple) else (key,)), group


def per_horizon(
    rows: pd.DataFrame,
    horizons: np.ndarray | list[int] | None = None,
    by: str | list[str] | tuple[str, ...] = (),
    column: str = "hamming_trajectory",
) -> pd.DataFrame:
    """Long table, one row per (trial row, horizon T'): the statistics of the module docstring.

    ``horizons`` default: :func:`horizon_grid` of the longest trajectory; horizons beyond a
    row's own T are skipped for that row. Columns: the ``by`` columns, ``trial`` (when present),
    ``row`` (the index in ``rows``), ``T``, and the statistics.

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows with a recorded trajectory column (arrays of length T + 1, t = 0..T).
    horizons : array_like of int or None
        The horizons T' (steps).
    by : str or sequence of str
        Columns of ``rows`` copied to every output row.
    column : str
        The Hamming trajectory column.

    Returns
    -------
    DataFrame
        The columns above, one row per (trial row, horizon).

    Raises
    ------
    DataError
        The trajectory column or a ``by`` column is missing.
    """
    by = [by] if isinstance(by, str) else list(by)
    paths = trajectories(rows, column)
    lengths = np.array([p.size - 1 for p in paths])
    if horizons is None:
        horizons = horizon_grid(int(lengths.max()))
    horizons = np.asarray(horizons, dtype=np.int64)
    frames = []
    for T in np.unique(lengths):
        sel = np.flatnonzero(lengths == T)
        hz = horizons[(horizons >= 1) & (horizons <= T)]
        if hz.size == 0:
            continue
        stats = horizon_stats(np.stack([paths[i] for i in sel]), hz)
        frame = pd.DataFrame({"row": np.repeat(rows.index[sel], hz.size),
                              "T": np.tile(hz, sel.size)})
        for name, values in stats.items():
            frame[name] = values.reshape(-1)
        for col in [*by, "trial"]:
            if col in rows:
                frame[col] = np.repeat(rows[col].to_numpy()[sel], hz.size)
        frames.append(frame)
    front = [c for c in [*by, "trial"] if c in rows] + ["row", "T"]
    table = pd.concat(frames, ignore_index=True)
    return table[front + [c for c in table.columns if c not in front]]


def trajectory_bands(
    rows: pd.DataFrame,
    column: str = "hamming_trajectory",
    by: str | list[str] | tuple[str, ...] = ("n",),
    quantiles: tuple[float, float] = (0.1, 0.9),
    per_d: bool = False,
) -> pd.DataFrame:
    """Per group and step t: median, mean and the ``quantiles`` band of ``column`` across trials.

    ``per_d`` divides each trajectory by its row's d (bit error H_t / d). Trajectories of
    different lengths are padded with nan (a step counts only the trials that reached it).
    Columns: the ``by`` columns, t, trials, mean, median, q_low, q_high.

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows with a recorded trajectory column (arrays of length T + 1, t = 0..T).
    column : str
        The trajectory column.
    by : str or sequence of str
        Grouping columns.
    quantiles : (float, float)
        The band's lower and upper quantile, in [0, 1].
    per_d : bool
        Divide by the row's ``d`` (needs a ``d`` column).

    Returns
    -------
    DataFrame
        The columns above, one row per (group, t); values in the units of ``column`` (per
        bit with ``per_d``).

    Raises
    ------
    DataError
        The trajectory, a ``by`` column or (with ``per_d``) ``d`` is missing.
    """
    by = [by] if isinstance(by, str) else list(by)
    frames = []
    for key, group in group_keys(rows, by):
        paths = trajectories(group, column)
        if per_d:
            if "d" not in group:
                raise DataError("rows.d: column missing (needed for per_d)")
            paths = [p / float(d) for p, d in zip(paths, group["d"], strict=True)]
        width = max(p.size for p in paths)
        mat = np.full((len(paths), width), np.nan)
        for i, p in enumerate(paths):
            mat[i, : p.size] = p
        with np.errstate(all="ignore"):
            q = np.nanquantile(mat, [quantiles[0], 0.5, quantiles[1]], axis=0)
        frame = pd.DataFrame({"t": np.arange(width), "trials": np.isfinite(mat).sum(0),
                              "mean": np.nanmean(mat, axis=0), "median": q[1],
                              "q_low": q[0], "q_high": q[2]})
        for col, value in zip(by, key, strict=True):
            frame.insert(0, col, value)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    return table[[*by] + [c for c in table.columns if c not in by]]


#: Columns of a run that describe its whole horizon and are recomputed (or dropped) per checkpoint.
_HORIZON_COLUMNS = (
    "success_last", "success_ergodic", "success_best", "absorbed", "occupation", "first_hit_step",
    "n_exits", "n_returns", "max_excursion", "min_hamming", "final_hamming", "ergodic_hamming",
    "final_loss", "wall_seconds", "checkpoint_steps", "ergodic_hamming_at",
)


def at_checkpoints(rows: pd.DataFrame, keep_trajectories: bool = False) -> pd.DataFrame:
    """Rows as if each run had stopped at each of its ergodic checkpoints T' (``[record]
    checkpoints``): one row per (trial, T') with ``steps`` = T' and ``run_steps`` = the run's T.

    From ``ergodic_hamming_at``: ergodic_hamming, success_ergodic. From ``hamming_trajectory``
    (when recorded; else these columns are absent): success_last, success_best, occupation,
    first_hit_step, n_exits, n_returns, max_excursion, min_hamming, final_hamming, exactly as
    :mod:`stelab.outcomes` defines them over t = 1..T'. final_loss comes from
    ``loss_trajectory`` when recorded.
    ``absorbed`` (its window depends on the config) and wall_seconds are dropped. With identity
    STEs a run of T' steps gives the same rows (the iterates do not depend on the horizon), so
    :func:`~stelab.analysis.threshold.thresholds_by` with by=[..., "steps"] gives thresholds per
    horizon and :func:`~stelab.analysis.tables.success_by_steps` ergodic vs last success vs T.

    Parameters
    ----------
    rows : DataFrame
        Per-trial rows with ``checkpoint_steps`` and ``ergodic_hamming_at`` (arrays, one value
        per checkpoint).
    keep_trajectories : bool
        Keep the trajectory columns (cut to t = 0..T') in the output.

    Returns
    -------
    DataFrame
        One row per (trial, checkpoint): the rows' other columns, ``steps`` = T',
        ``run_steps`` = T and the outcomes above.

    Raises
    ------
    DataError
        ``checkpoint_steps`` or ``ergodic_hamming_at`` missing.
    """
    for column in ("checkpoint_steps", "ergodic_hamming_at"):
        if column not in rows:
            raise DataError(f"rows.{column}: column missing; run with [record] checkpoints = [...]")
    has_h = "hamming_trajectory" in rows
    has_loss = "loss_trajectory" in rows
    scalar = [c for c in rows.columns if c not in _HORIZON_COLUMNS and c not in TRAJECTORY_COLUMNS]
    records = []
    for idx, row in zip(rows.index, rows.itertuples(index=False), strict=True):
        base = {c: getattr(row, c) for c in scalar} if scalar else {}
        steps_at = np.asarray(row.checkpoint_steps, dtype=np.int64)
        erg = np.asarray(row.ergodic_hamming_at, dtype=np.int64)
        if has_h:
            h = np.asarray(row.hamming_trajectory)
            stats = horizon_stats(h[None, :], steps_at)
        for j, horizon in enumerate(steps_at):
            rec = {**base, "row": idx, "run_steps": base.get("steps", h.size - 1 if has_h else -1),
                   "steps": int(horizon), "ergodic_hamming": int(erg[j]),
                   "success_ergodic": bool(erg[j] == 0)}
            if has_h:
                prefix = h[: horizon + 1]
                for name in ("success_last", "success_best", "occupation", "n_returns",
                             "n_exits"):
                    rec[name] = stats[name][0, j].item()
                hits = np.flatnonzero(prefix[1:] == 0)
                rec["first_hit_step"] = int(hits[0]) + 1 if hits.size else -1
                rec["max_excursion"] = int(max(zero_visit_runs(prefix)[0], default=0))
                rec["min_hamming"] = int(prefix[1:].min())
                rec["final_hamming"] = int(prefix[-1])
                if keep_trajectories:
                    rec["hamming_trajectory"] = prefix
            if has_loss:
                loss = np.asarray(row.loss_trajectory)
                rec["final_loss"] = float(loss[horizon])
                if keep_trajectories:
                    rec["loss_trajectory"] = loss[: horizon + 1]
            records.append(rec)
    return pd.DataFrame(records)
