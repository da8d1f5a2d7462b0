"""Per-trial outcomes from a Hamming-distance trajectory: the definitions of the outcome columns.

Neither engine nor analysis: the engine makes each trial's row with :func:`trajectory_outcomes`
(:mod:`stelab.engine.run`), and :mod:`stelab.analysis` recomputes the same statistics at shorter
horizons from stored trajectories.

H[k, t] = #{i : Q(u_t)_i != w*_i} for t = 0 (initialization) .. T. The iterates the method
produces are t = 1..T; every statistic below is over those, so the initialization never counts
as a success.

* success_last    : H_T = 0                              (non-ergodic, last iterate)
* success_ergodic : sign(qbar_T) = w*, qbar_T = (1/T) sum_{t=1..T} Q(u_t), sign(0) = +1
* success_best    : min_{1<=t<=T} H_t = 0                 (best iterate)
* absorbed        : H_t = 0 for all t in the last K iterations
* occupation      : share of t in 1..T with H_t = 0
* first_hit_step  : first t >= 1 with H_t = 0, -1 if none
* n_exits         : escapes, t with H_{t-1} = 0 and H_t > 0 (t >= 1)
* n_returns       : entries into H = 0 that follow an earlier visit (the first hit is no return)
* max_excursion   : longest completed excursion (steps with H > 0 between two visits of H = 0)
"""

from __future__ import annotations

import numpy as np


def zero_visit_runs(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Excursions and sojourns of one trajectory h (length T+1) with respect to H = 0.

    Returns (excursion_lengths, sojourn_lengths): lengths of the completed runs of H > 0 that
    start after a visit of 0 and end with a return to 0, and lengths of the runs of H = 0 among
    the iterates t = 1..T. An excursion length L means the return time is L + 1.
    """
    at_zero = np.asarray(h)[1:] == 0
    if at_zero.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(np.diff(at_zero.astype(np.int8))) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [at_zero.size]))
    lengths = ends - starts
    is_zero_run = at_zero[starts]
    sojourns = lengths[is_zero_run]
    # completed excursions: runs of H > 0 with a zero run before and after
    excursion_idx = np.flatnonzero(~is_zero_run)
    completed = excursion_idx[(excursion_idx > 0) & (excursion_idx < len(starts) - 1)]
    return lengths[completed], sojourns


def trajectory_outcomes(
    hamming: np.ndarray, ergodic_hamming: np.ndarray, absorb_window: int
) -> dict[str, np.ndarray]:
    """Outcome columns for trials with Hamming trajectories ``hamming`` (trials, T+1).

    ``ergodic_hamming`` is the Hamming distance of sign(qbar_T) to w* for each trial.
    """
    H = np.asarray(hamming)
    iterates = H[:, 1:]
    at_zero = iterates == 0
    T = iterates.shape[1]
    hit_any = at_zero.any(axis=1)
    first_hit = np.where(hit_any, at_zero.argmax(axis=1) + 1, -1)
    prev_zero = H[:, :-1] == 0
    entries = (at_zero & ~prev_zero).sum(axis=1)
    exits = (~at_zero & prev_zero).sum(axis=1)
    first_is_entry = hit_any & (H[:, 0] != 0)
    returns = entries - first_is_entry.astype(np.int64)
    max_excursion = np.array(
        [max(zero_visit_runs(row)[0], default=0) for row in H], dtype=np.int64
    )
    k = min(absorb_window, T)
    return {
        "success_last": H[:, -1] == 0,
        "success_ergodic": np.asarray(ergodic_hamming) == 0,
        "success_best": hit_any,
        "absorbed": at_zero[:, T - k :].all(axis=1),
        "occupation": at_zero.mean(axis=1),
        "first_hit_step": first_hit.astype(np.int64),
        "n_exits": exits.astype(np.int64),
        "n_returns": returns.astype(np.int64),
        "max_excursion": max_excursion,
        "min_hamming": iterates.min(axis=1).astype(np.int64),
        "final_hamming": H[:, -1].astype(np.int64),
        "ergodic_hamming": np.asarray(ergodic_hamming).astype(np.int64),
    }
