"""Which growth laws of n50(d) the thresholds exclude, from a pooled model comparison.

:func:`~stelab.analysis.scaling.compare_scaling_models` fits every candidate law (e.g.
:data:`~stelab.analysis.scaling.LAW_MODELS`: a d^alpha, a d, a d ln d, a d^2, a d^2 ln d) to the
same thresholds. A law is **excluded** when either rule fires:

* lack of fit: its chi2 test against the bootstrap variances of log n50 gives p < ``p_level``
  (default 0.05): the law's shape does not fit within the sampling noise; or
* AIC: its AIC_w (chi2 + 2 k, the bootstrap variances taken as known) exceeds the best law's by
  more than ``aic_margin`` (default 10, "essentially no support" on the usual scale).

It is **not excluded** when both were computed and neither fires, and **undetermined** when the
rules cannot be evaluated (no bootstrap variances, or no residual degree of freedom and no AIC
to compare): a missing statistic never becomes a verdict. "Not excluded" is not "confirmed":
several laws can fit the same thresholds when their intervals are wide.
"""

from __future__ import annotations

import math

import pandas as pd

from stelab.errors import DataError

VERDICTS = ("excluded", "not excluded", "undetermined")


def _verdict(
    p: float, delta: float, p_level: float, aic_margin: float, dof: float
) -> tuple[str, str]:
    """(verdict, rule) of one law from its lack-of-fit p and delta AIC_w (nan: not computed)
    and its residual degrees of freedom (nan: unknown)."""
    fired = []
    if not math.isnan(p) and p < p_level:
        fired.append(f"lack of fit p = {p:.2g} < {p_level:g}")
    if not math.isnan(delta) and delta > aic_margin:
        fired.append(f"AIC_w {delta:.1f} above the best law's (> {aic_margin:g})")
    if fired:
        return "excluded", "; ".join(fired)
    if math.isnan(p) or math.isnan(delta):
        missing = "lack-of-fit test" if math.isnan(p) else "AIC_w comparison"
        why = ("no residual degree of freedom: too few d for its parameters" if dof <= 0
               else "no bootstrap variances or too few d")
        return "undetermined", f"no {missing} ({why})"
    return "not excluded", (f"lack of fit p = {p:.2g} >= {p_level:g} and AIC_w within "
                            f"{aic_margin:g} of the best law's ({delta:.1f})")


def law_verdicts(
    models: pd.DataFrame, p_level: float = 0.05, aic_margin: float = 10.0
) -> pd.DataFrame:
    """The comparison table with each law's ``verdict`` and the ``rule`` behind it.

    Parameters
    ----------
    models : DataFrame
        :func:`~stelab.analysis.scaling.compare_scaling_models` output (columns ``model``,
        ``lack_of_fit_p``, ``delta_aic_w``), one comparison or several concatenated (each
        with its own ``delta_aic_w``).
    p_level : float
        Lack-of-fit level, in (0, 1).
    aic_margin : float
        AIC_w difference (> 0) above which a law is excluded.

    Returns
    -------
    DataFrame
        ``models`` with ``verdict`` (one of :data:`VERDICTS`) and ``rule`` (str: the rule that
        fired with its numbers, or why none could be evaluated).

    Raises
    ------
    DataError
        A missing column, or ``p_level``/``aic_margin`` out of range.

    Examples
    --------
    >>> table = pd.DataFrame({"model": ["d", "dlogd"], "lack_of_fit_p": [1e-6, 0.4],
    ...                       "delta_aic_w": [40.0, 0.0]})
    >>> law_verdicts(table)["verdict"].tolist()
    ['excluded', 'not excluded']
    """
    for column in ("model", "lack_of_fit_p", "delta_aic_w"):
        if column not in models:
            raise DataError(f"models.{column}: column missing (use compare_scaling_models "
                            "output)")
    if not 0.0 < p_level < 1.0:
        raise DataError(f"p_level: {p_level} outside (0, 1)")
    if not aic_margin > 0.0:
        raise DataError(f"aic_margin: {aic_margin} must be > 0")
    out = models.copy()
    dof = (out["n_points"] - out["n_params"] if {"n_points", "n_params"} <= set(out)
           else pd.Series(math.nan, index=out.index))
    pairs = [_verdict(float(p), float(delta), p_level, aic_margin, float(f))
             for p, delta, f in zip(out["lack_of_fit_p"], out["delta_aic_w"], dof, strict=True)]
    out["verdict"] = [v for v, _ in pairs]
    out["rule"] = [r for _, r in pairs]
    return out


def law_sentence(verdicts: pd.DataFrame) -> str:
    """One sentence: which laws the data exclude (with the rule) and which they cannot.

    Parameters
    ----------
    verdicts : DataFrame
        :func:`law_verdicts` output for one comparison.

    Returns
    -------
    str
        E.g. "exclude d (lack of fit p = 1e-06 < 0.05); cannot exclude dlogd.". When every
        law is excluded, it names the one with the lowest AIC_w (and the next, with its
        difference).

    Examples
    --------
    >>> table = pd.DataFrame({"model": ["d", "dlogd"], "lack_of_fit_p": [1e-6, 0.4],
    ...                       "delta_aic_w": [4.0, 0.0]})
    >>> law_sentence(law_verdicts(table))
    'exclude d (lack of fit p = 1e-06 < 0.05); cannot exclude dlogd.'
    """
    if verdicts.empty:
        return "no laws compared."
    parts = []
    excluded = verdicts[verdicts["verdict"] == "excluded"]
    if len(excluded):
        parts.append("exclude " + ", ".join(f"{r.model} ({r.rule})"
                                            for r in excluded.itertuples()))
    kept = verdicts.loc[verdicts["verdict"] == "not excluded", "model"].tolist()
    if kept:
        parts.append("cannot exclude " + ", ".join(kept))
    unknown = verdicts[verdicts["verdict"] == "undetermined"]
    if len(unknown):
        parts.append("undetermined: " + ", ".join(f"{r.model} ({r.rule})"
                                                  for r in unknown.itertuples()))
    ranked = verdicts.dropna(subset=["delta_aic_w"]).sort_values("delta_aic_w")
    if len(excluded) == len(verdicts) and len(ranked):
        runner = (f" (next: {ranked['model'].iloc[1]}, +{ranked['delta_aic_w'].iloc[1]:.1f})"
                  if len(ranked) > 1 else "")
        parts.append(f"no law compared fits within the bootstrap noise; the least bad by "
                     f"AIC_w is {ranked['model'].iloc[0]}{runner}")
    return "; ".join(parts) + "."
