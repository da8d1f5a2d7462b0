"""Diagnose a dataset for STE health: will the STE-gradient method of PAPER.md recover a random
binary teacher from these inputs, raw or after which normalization?

Model assumed: the paper's single neuron (m = 1), teacher w* in {-1, +1}^d of balance b, labels
y = sign(x . w*) on the (normalized) inputs, identity STE, student trained on the same n rows.

The predictor: discriminating samples of one-flip neighbours
-----------------------------------------------------------------
Let q^(j) be w* with coordinate j flipped. Sample x_i *discriminates* w* from q^(j) when
sign(x_i . q^(j)) != sign(x_i . w*) (sign(0) = +1). These samples are exactly the ones that carry
the coarse gradient at q^(j): with the identity STE,

    g(q^(j))_j = (1/n) sum_i (sign(x_i . q^(j)) - y_i) x_ij,   and   -w*_j g(q^(j))_j =
    (2/n) sum_{i discriminating} |x_ij| >= 0,

so the coarse gradient always points back to w* along j, with a strength carried by the
D_j = #{discriminating samples}; with D_j = 0, q^(j) fits every label and is a spurious zero-loss
point where STE stops. Let Dbar be the mean of D_j over coordinates j and random teachers of
balance b. For Gaussian rows, P(discriminate) = theta_1 / pi with cos(theta_1) = 1 - 2/d, so

    n_eff = Dbar * pi / theta_1

is the Gaussian sample size with as many discriminating samples (n_eff = n for Gaussian data).
The data are predicted *healthy* for balance b when they are at least as informative as Gaussian
data at n50_gauss(d, T), the Gaussian sample size at which the STE-gradient method succeeds (last
iterate = w* after T steps) in half the trials:

    n_eff >= n50_gauss   and   (1 - unpinned)^d >= 1/2

where ``unpinned`` is the share of one-flip neighbours with D_j = 0, so (1 - unpinned)^d
estimates the chance that a sample like this one tells every neighbour apart from w* (without
that, exact recovery is impossible; the 1/2 matches "success in half the trials"). n50_gauss
is measured by the engine on Gaussian data (:func:`gaussian_n50`), or given. Nothing in the
prediction looks at the name of a distribution.

Descriptive statistics (shown, not used by the prediction): feature means and scales (mean offset
|mu_i| / sd_i), skewness and excess kurtosis per feature, the Kolmogorov-Smirnov distance to
N(0, 1) of standardized projections on random binary directions, the covariance condition
number, the minority-label share and mean offset |E[x.w*]| / sd(x.w*) of a random teacher, and
the cosine between the coarse-gradient step -g(q0) at a random start q0 and w* (for Gaussian rows
E[-g(q)] = sqrt(2/pi) (w*/||w*|| - q/||q||), whose cosine with w* is sqrt((1 - cos(q, w*)) / 2)
~ 0.71 at a random start).

Normalizations are those of :mod:`stelab.normalize`; ``batchnorm`` divides each pre-activation by
a positive number, which changes no sign, so its prediction equals ``center``'s.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats as scipy_stats

from stelab.config import NORMALIZATIONS
from stelab.data import make_teacher
from stelab.errors import ConfigError, DataError
from stelab.model import BinaryTwoLayer
from stelab.normalize import normalize_inputs, row_covariance
from stelab.quantizers import sign

Tensor = torch.Tensor

__all__ = [
    "Diagnosis",
    "NormalizationCheck",
    "diagnose",
    "describe_cost",
    "estimate_seconds",
    "gaussian_n50",
    "gaussian_discrimination_probability",
    "load_data",
    "validate_data",
    "simulate",
    "engine_agreement",
]

#: least to most invasive; the recommendation is the first predicted healthy for every balance
PREFERENCE = ("none", "center", "standardize", "batchnorm", "whiten")
_CHUNK_ELEMENTS = 1 << 22

#: default bound on the estimated time of one diagnosis (seconds); above it, diagnose refuses
#: and says which part costs what (pass ``max_seconds`` / ``--max-seconds`` to allow more)
MAX_SECONDS = 600.0
#: rough speeds of this 2-core class of machine, for the estimate only (never for a result):
#: the engine's STE steps (flops of :func:`stelab.sweep.grid.trial_flops` per second) and a
#: dense symmetric eigendecomposition (d^3 per second; 3.7 s at d = 2000 measured)
ENGINE_FLOPS_PER_SECOND = 5e9
EIGEN_FLOPS_PER_SECOND = 2e9
#: trials and work of the Gaussian reference (:func:`gaussian_n50`): about 17 evaluations of
#: n = d's cost (doubling from n = d to ~2-4 d, then four bisections)
REFERENCE_TRIALS = 32
REFERENCE_EVALUATIONS = 17


# --------------------------------------------------------------------------------- input
def validate_data(X: Any, name: str = "X") -> np.ndarray:
    """``X`` as a float64 array (samples x features), or DataError with one line saying why not."""
    try:
        arr = np.asarray(X)
    except Exception as err:  # ragged nested lists and the like
        raise DataError(f"{name}: cannot be read as an array ({err})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DataError(f"{name}: expected numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise DataError(f"{name}: complex values are not supported")
    if arr.ndim != 2:
        raise DataError(
            f"{name}: expected a 2-D array (samples x features), got shape {arr.shape}"
        )
    n, d = arr.shape
    if n < 2 or d < 1:
        raise DataError(f"{name}: need at least 2 samples and 1 feature, got shape {arr.shape}")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(
            f"{name}: {int(bad.sum())} entries are NaN or infinite (first at row {row}, "
            f"column {col}); remove or impute them"
        )
    return arr


def load_data(path: str | Path, key: str | None = None, drop: tuple[str, ...] = ()) -> np.ndarray:
    """Read a samples x features matrix from ``.npz`` (array ``key``, or the only array, or
    ``X``), ``.npy`` or ``.csv`` (every column numeric after dropping ``drop``; a header row is
    detected). Problems raise DataError with one line."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".npy", ".csv"):
        raise DataError(f"data: unsupported file type {path.suffix!r}; allowed: .npz, .npy, .csv")
    if not path.is_file():
        raise DataError(f"data: file not found: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"data: {path} is empty")
    if key is not None and suffix != ".npz":
        raise DataError(f"--key: {path.name} is a {suffix} file; --key selects an array of an "
                        ".npz file only")
    if drop and suffix != ".csv":
        raise DataError(f"--drop: {path.name} is a {suffix} file; --drop leaves out columns of "
                        "a .csv file only")
    if suffix == ".csv":
        return validate_data(_read_csv(path, drop), name=path.name)
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as err:
        raise DataError(f"data: cannot read {path} as {suffix}: {err}") from None
    if suffix == ".npy":
        return validate_data(loaded, name=path.name)
    with loaded:
        keys = list(loaded.keys())
        if not keys:
            raise DataError(f"data: {path} holds no arrays")
        if key is None:
            if len(keys) == 1:
                key = keys[0]
            elif "X" in keys:
                key = "X"
            else:
                raise DataError(
                    f"--key: {path.name} holds several arrays and none is named 'X'; "
                    f"allowed: {', '.join(keys)}"
                )
        if key not in keys:
            raise DataError(f"--key: no array {key!r} in {path.name}; allowed: {', '.join(keys)}")
        try:
            arr = loaded[key]
        except Exception as err:
            raise DataError(f"data: cannot read array {key!r} of {path}: {err}") from None
    return validate_data(arr, name=f"{path.name}[{key}]")


def _read_csv(path: Path, drop: tuple[str, ...]) -> np.ndarray:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"data: {path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"data: cannot parse {path} as CSV: {str(err).splitlines()[0]}") from None
    if all(_is_number(c) for c in frame.columns):  # no header row: the first row is data
        frame = pd.read_csv(path, header=None)
    missing = [c for c in drop if c not in frame.columns]
    if missing:
        raise DataError(
            f"--drop: no column {missing[0]!r} in {path.name}; columns: "
            + ", ".join(map(str, frame.columns[:20]))
        )
    frame = frame.drop(columns=list(drop))
    if frame.shape[0] == 0:
        raise DataError(f"data: {path} has a header but no rows")
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(
            frame[column]
        ):
            values = pd.to_numeric(frame[column], errors="coerce")
            first_bad = frame[column][values.isna() & frame[column].notna()]
            if len(first_bad):
                raise DataError(
                    f"data: column {column!r} of {path.name} is not numeric (e.g. "
                    f"{first_bad.iloc[0]!r} in row {first_bad.index[0]}); drop it with --drop"
                )
            frame[column] = values
    return frame.to_numpy()


def _is_number(text: Any) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


# ------------------------------------------------------------------------- Gaussian reference
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
    from stelab.config import parse_config
    from stelab.engine import run_experiment

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


# --------------------------------------------------------------------------------- statistics
@dataclass(frozen=True)
class NormalizationCheck:
    """The predictor and its companions for one (normalization, teacher balance)."""

    normalization: str
    teacher_balance: float
    discriminating_mean: float  # Dbar: mean discriminating samples per one-flip neighbour
    discriminating_p05: float  # its 5th percentile over (teacher, coordinate)
    unpinned_share: float  # share of one-flip neighbours with D_j = 0 (spurious zero-loss points)
    identifiable: float  # (1 - unpinned_share)^d: chance that no neighbour is unpinned
    n_eff: float  # Dbar * pi / theta_1: Gaussian-equivalent sample size
    minority_label_share: float  # share of the rarer label, mean over teachers
    label_offset: float  # |mean(x.w*)| / sd(x.w*), mean over teachers
    start_alignment: float  # cos(-g(q0), w*) at a random start q0, mean over teachers
    predicted_healthy: bool
    measured_success: float | None = None  # with measure > 0: :func:`simulate`'s success rate


@dataclass(frozen=True)
class Diagnosis:
    """The result of :func:`diagnose`; ``to_dict`` / ``to_json`` for machines, ``to_rich``."""

    n: int
    d: int
    d_analysed: int  # non-constant features: the STE checks use these
    # feature geometry (raw data)
    mean_offset: float  # mean over non-constant features of |mu_i| / sd_i
    max_offset: float
    scale_min: float  # smallest non-zero feature sd
    scale_max: float
    constant_features: int
    skewness_mean_abs: float
    skewness_max_abs: float
    excess_kurtosis_mean: float
    excess_kurtosis_max: float
    projection_ks_mean: float  # KS distance to N(0,1) of standardized random binary projections
    projection_ks_reference: float  # 1.36 / sqrt(n): the 5% critical value for one projection
    covariance_condition: float  # largest / smallest positive eigenvalue of the covariance
    # prediction
    gaussian_n50: float
    steps: int
    checks: tuple[NormalizationCheck, ...]
    recommended: str
    healthy_raw: bool
    features: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def check(self, normalization: str, balance: float) -> NormalizationCheck:
        for c in self.checks:
            if c.normalization == normalization and math.isclose(c.teacher_balance, balance):
                return c
        raise ConfigError(
            f"normalization/balance: no check for ({normalization!r}, {balance}); allowed: "
            + ", ".join(f"({c.normalization}, {c.teacher_balance})" for c in self.checks)
        )

    def predicted(self, normalization: str) -> bool:
        """Healthy for every teacher balance checked."""
        return all(c.predicted_healthy for c in self.checks if c.normalization == normalization)

    def to_dict(self, features: bool = False) -> dict[str, Any]:
        out = asdict(self)
        out["checks"] = [asdict(c) for c in self.checks]
        if not features:
            out.pop("features")
        return out

    def to_json(self, features: bool = False) -> str:
        """Strict JSON (RFC 8259 has no NaN or Infinity): a non-finite number is written as
        null, e.g. ``label_offset`` when every projection x.w* is equal (sd 0) or
        ``covariance_condition`` of a covariance with a single positive eigenvalue direction."""
        return json.dumps(_finite_or_null(self.to_dict(features)), indent=2,
                          default=_json_default, allow_nan=False)

    def to_rich(self, title: str = "dataset") -> list[Any]:
        """Rich renderables: the geometry table, the prediction table, a recommendation line."""
        from rich.table import Table

        geometry = Table(title=f"{title}: {self.n} samples x {self.d} features")
        geometry.add_column("statistic")
        geometry.add_column("value", justify="right")
        geometry.add_column("Gaussian", justify="right")
        for label, value, ref in [
            ("mean offset |mu|/sd (mean, max)",
             f"{self.mean_offset:.3g}, {self.max_offset:.3g}", "0"),
            ("feature sd (min, max)", f"{self.scale_min:.3g}, {self.scale_max:.3g}", "equal"),
            ("constant features", f"{self.constant_features}", "0"),
            ("|skewness| (mean, max)",
             f"{self.skewness_mean_abs:.3g}, {self.skewness_max_abs:.3g}", "0"),
            ("excess kurtosis (mean, max)",
             f"{self.excess_kurtosis_mean:.3g}, {self.excess_kurtosis_max:.3g}", "0"),
            ("KS of random projections", f"{self.projection_ks_mean:.3g}",
             f"< {self.projection_ks_reference:.2g}"),
            ("covariance condition number", f"{self.covariance_condition:.3g}", "1"),
        ]:
            geometry.add_row(label, value, ref)
        prediction = Table(
            title=f"STE health (m = 1, identity STE, T = {self.steps}, d = {self.d_analysed}"
            f"{' non-constant' if self.d_analysed < self.d else ''}; "
            f"Gaussian n50 = {self.gaussian_n50:.0f})"
        )
        columns = ("norm.", "bal.", "n_eff", "disc/nbr", "unpinned", "minority", "offset", "cos0",
                   "verdict")
        measured = any(c.measured_success is not None for c in self.checks)
        if measured:
            columns = (*columns, "measured")
        for col in columns:
            prediction.add_column(col, justify="left" if col == "norm." else "right")
        for c in self.checks:
            verdict = "[green]ok[/]" if c.predicted_healthy else "[red]FAILS[/]"
            prediction.add_row(
                c.normalization, f"{c.teacher_balance:g}", f"{c.n_eff:.0f}",
                f"{c.discriminating_mean:.1f}", f"{c.unpinned_share:.2f}",
                f"{c.minority_label_share:.3f}", f"{c.label_offset:.2f}",
                f"{c.start_alignment:.2f}", verdict,
                *([] if not measured else [
                    "-" if c.measured_success is None else f"{c.measured_success:.2f}"
                ]),
            )
        legend = (
            "n_eff: Gaussian-equivalent sample size; disc/nbr: samples telling w* from a "
            "one-flip neighbour; unpinned: share of neighbours no sample tells apart (ok: n_eff >= "
            "Gaussian n50 and (1 - unpinned)^d >= 1/2); "
            "minority: share of the rarer label; offset: |mean(x.w*)|/sd(x.w*); cos0: cosine of "
            "-g(q0) with w* at a random start"
        )
        if self.healthy_raw:
            advice = "raw inputs are predicted healthy: no normalization needed (recommended: none)"
        elif self.predicted(self.recommended):
            advice = f"recommended normalization: {self.recommended}"
        else:
            advice = (
                f"no normalization is predicted healthy; best: {self.recommended} "
                "(more samples needed)"
            )
        if self.d_analysed < self.d:
            advice += (
                f"\n{self.d - self.d_analysed} constant feature(s) left out: no sample can tell "
                "the teacher's weights on them, under any normalization"
            )
        return [geometry, prediction, legend, advice]


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_null(v) for v in value]
    if isinstance(value, float | np.floating) and not math.isfinite(value):
        return None
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _constant_features(X: np.ndarray) -> np.ndarray:
    """Boolean mask of the features that take a single value."""
    return np.all(X == X[0:1], axis=0)


def _feature_stats(X: np.ndarray, rng: np.random.Generator, projections: int) -> dict[str, Any]:
    n, d = X.shape
    mu = X.mean(axis=0)
    sd = X.std(axis=0)
    live = ~_constant_features(X)
    offset = np.abs(mu[live]) / sd[live]
    skew = scipy_stats.skew(X[:, live], axis=0) if live.any() else np.zeros(0)
    kurt = scipy_stats.kurtosis(X[:, live], axis=0) if live.any() else np.zeros(0)
    centred = X - mu
    ks = []
    for _ in range(projections):
        p = centred @ np.where(rng.random(d) < 0.5, -1.0, 1.0)
        s = p.std()
        ks.append(scipy_stats.kstest(p / s, "norm").statistic if s > 0 else 1.0)
    # the positive eigenvalues of the covariance C^T C / n are those of the Gram matrix
    # C C^T / n: the smaller of the two costs min(n, d)^3 (wide, short data stay cheap)
    gram = centred.T @ centred if d <= n else centred @ centred.T
    eig = np.linalg.eigvalsh(gram / n)
    positive = eig[eig > 1e-12 * max(eig.max(), 1e-300)]

    def agg(fn: Any, values: np.ndarray) -> float:
        return float(fn(values)) if values.size else 0.0

    return {
        "mean_offset": agg(np.mean, offset),
        "max_offset": agg(np.max, offset),
        "scale_min": agg(np.min, sd[live]),
        "scale_max": agg(np.max, sd[live]),
        "constant_features": int((~live).sum()),
        "skewness_mean_abs": agg(np.mean, np.abs(skew)),
        "skewness_max_abs": agg(np.max, np.abs(skew)),
        "excess_kurtosis_mean": agg(np.mean, kurt),
        "excess_kurtosis_max": agg(np.max, kurt),
        "projection_ks_mean": float(np.mean(ks)),
        "projection_ks_reference": 1.36 / math.sqrt(n),
        "covariance_condition": (
            float(positive.max() / positive.min()) if positive.size else math.inf
        ),
        "features": {"mean": mu.tolist(), "sd": sd.tolist(), "skewness": _full(skew, live),
                     "excess_kurtosis": _full(kurt, live)},
    }


def _full(values: np.ndarray, live: np.ndarray) -> list[float]:
    out = np.zeros(live.shape)
    out[live] = values
    return out.tolist()


def _discriminating_counts(Z: Tensor, w: Tensor) -> Tensor:
    """D_j for j = 1..d: rows i with sign(x_i.w - 2 w_j x_ij) != sign(x_i.w), chunked over rows."""
    n, d = Z.shape
    counts = torch.zeros(d, dtype=torch.int64)
    rows = max(1, _CHUNK_ELEMENTS // d)
    for start in range(0, n, rows):
        X = Z[start : start + rows]
        h = X @ w
        flipped = h[:, None] - 2.0 * X * w[None, :]
        counts += (sign(flipped) != sign(h)[:, None]).sum(dim=0)
    return counts


def _check(
    Z: Tensor,
    model: BinaryTwoLayer,
    normalization: str,
    balance: float,
    teachers: int,
    rng: np.random.Generator,
    n50: float,
) -> NormalizationCheck:
    n, d = Z.shape
    Z4 = Z[None, :, None, :]
    p1 = gaussian_discrimination_probability(d)
    counts, minority, offsets, cosines = [], [], [], []
    for _ in range(teachers):
        w = torch.from_numpy(make_teacher(rng, d, balance)).to(torch.float64)
        counts.append(_discriminating_counts(Z, w))
        y = model.outputs(model.preactivations(Z4, w[None]))
        minority.append(float(min((y > 0).double().mean(), (y < 0).double().mean())))
        proj = Z @ w
        sd = float(proj.std(correction=0))
        offsets.append(abs(float(proj.mean())) / sd if sd > 0 else math.inf)
        q0 = sign(torch.from_numpy(rng.standard_normal(d)))[None]
        h = model.preactivations(Z4, q0)
        g = model.coarse_gradient(Z4, h, model.outputs(h) - y, q0, q0)[0]
        norm = float(g.norm())
        cosines.append(float(-g @ w) / (norm * math.sqrt(d)) if norm > 0 else 0.0)
    D = torch.cat(counts).to(torch.float64)
    mean_D = float(D.mean())
    unpinned = float((D == 0).double().mean())
    identifiable = (1.0 - unpinned) ** d
    n_eff = mean_D / p1
    return NormalizationCheck(
        normalization=normalization,
        teacher_balance=float(balance),
        discriminating_mean=mean_D,
        discriminating_p05=float(torch.quantile(D, 0.05)),
        unpinned_share=unpinned,
        n_eff=n_eff,
        minority_label_share=float(np.mean(minority)),
        label_offset=float(np.mean(offsets)),
        start_alignment=float(np.mean(cosines)),
        identifiable=identifiable,
        predicted_healthy=bool(n_eff >= n50 and identifiable >= 0.5),
    )


def estimate_seconds(
    n: int,
    d: int,
    steps: int = 500,
    n50_given: bool = False,
    normalizations: tuple[str, ...] = PREFERENCE,
    balances: int = 2,
    teachers: int = 16,
    measure: int = 0,
) -> dict[str, float]:
    """Rough seconds of each costly part of :func:`diagnose` (for the announcement and the
    bound; the constants above, not a measurement of this machine)."""
    parts = {"covariance spectrum": float(min(n, d)) ** 3 / EIGEN_FLOPS_PER_SECOND}
    if "whiten" in normalizations:
        parts["whitening (d^3)"] = float(d) ** 3 / EIGEN_FLOPS_PER_SECOND
    if not n50_given:
        parts["Gaussian reference n50"] = (
            REFERENCE_EVALUATIONS * 4.0 * REFERENCE_TRIALS * steps * float(d) * d
            / ENGINE_FLOPS_PER_SECOND
        )
    checks = len(normalizations) * balances
    parts["discrimination checks"] = checks * teachers * 8.0 * n * d / ENGINE_FLOPS_PER_SECOND
    if measure > 0:
        parts["measured STE runs"] = (
            checks * measure * 4.0 * steps * float(n) * d / ENGINE_FLOPS_PER_SECOND
        )
    return parts


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def describe_cost(parts: dict[str, float]) -> str:
    """``about 3 min (Gaussian reference n50: 3 min, ...)``, largest part first."""
    ranked = sorted(parts.items(), key=lambda kv: -kv[1])
    detail = ", ".join(f"{name}: {_duration(sec)}" for name, sec in ranked if sec >= 1)
    return f"about {_duration(sum(parts.values()))}" + (f" ({detail})" if detail else "")


def _unit_scale(X: np.ndarray) -> tuple[np.ndarray, float]:
    """X / s with s a power of two such that max |X / s| is in [0.5, 1): exact (no rounding),
    and it keeps squares and covariances finite for data at any scale (1e300 or 1e-300).
    Every statistic of the prediction is invariant under a positive global scale."""
    peak = float(np.abs(X).max())
    if peak == 0.0 or not math.isfinite(peak):
        return X, 1.0
    scale = math.ldexp(1.0, math.frexp(peak)[1])
    return X / scale, scale


def diagnose(
    X: np.ndarray,
    teacher_balances: tuple[float, ...] = (0.5, 0.75),
    normalizations: tuple[str, ...] = PREFERENCE,
    teachers: int = 16,
    steps: int = 500,
    n50: float | None = None,
    seed: int = 0,
    projections: int = 32,
    measure: int = 0,
    max_seconds: float = MAX_SECONDS,
) -> Diagnosis:
    """Statistics of ``X`` (samples x features) that predict STE health, raw and after each of
    ``normalizations``, for random binary teachers of each balance in ``teacher_balances``.

    ``n50``: the Gaussian 50% sample size at this d and horizon ``steps``; measured with the
    engine (:func:`gaussian_n50`, cached per process) when None. ``measure`` > 0 also runs
    :func:`simulate` with that many trials for every check (the measured outcome on X itself).

    The cost is bounded: when :func:`estimate_seconds` exceeds ``max_seconds`` the diagnosis is
    refused (ConfigError naming the costly part and what to pass instead). Data at any finite
    scale are accepted (they are rescaled by a power of two first); NaN or inf is refused.
    """
    X = validate_data(X)
    n, d = X.shape
    if n50 is not None and not (math.isfinite(n50) and n50 > 0):
        raise ConfigError(f"--gaussian-n50: {n50} is not allowed; allowed: a finite number > 0")
    if not math.isfinite(max_seconds) or max_seconds <= 0:
        raise ConfigError(
            f"--max-seconds: {max_seconds} is not allowed; allowed: a finite number > 0")
    X, scale = _unit_scale(X)
    constant = _constant_features(X)
    if constant.all():
        raise DataError(f"X: all {d} features are constant; nothing to learn from")
    X_live = X[:, ~constant]
    d_live = X_live.shape[1]
    for b in teacher_balances:
        if not 0.0 <= b <= 1.0:
            raise ConfigError(f"teacher_balance: {b} is outside the allowed range [0, 1]")
    if not teacher_balances:
        raise ConfigError("teacher_balance: give at least one balance in [0, 1]")
    for z in normalizations:
        if z not in NORMALIZATIONS:
            raise ConfigError(
                f"normalization: unknown value {z!r}; allowed: {', '.join(NORMALIZATIONS)}"
            )
    if teachers < 1:
        raise ConfigError(f"teachers: {teachers} must be >= 1")
    if measure < 0:
        raise ConfigError(f"measure: {measure} must be >= 0 (0 = predict only)")
    cost = estimate_seconds(n, d_live, steps, n50 is not None, tuple(normalizations),
                            len(teacher_balances), teachers, measure)
    if sum(cost.values()) > max_seconds:
        raise ConfigError(
            f"diagnose: n = {n}, d = {d_live} would take {describe_cost(cost)}, over the "
            f"{_duration(max_seconds)} bound; give --gaussian-n50, fewer features, a smaller "
            "--steps or --measure, or allow more with --max-seconds"
        )
    reference = float(n50) if n50 is not None else gaussian_n50(
        d_live, steps, max_flops=2.0 * max_seconds * ENGINE_FLOPS_PER_SECOND
    )
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    feature_stats = _feature_stats(X, rng, projections)
    for name in ("scale_min", "scale_max"):  # back to the units of the data given
        feature_stats[name] *= scale
    for name in ("mean", "sd"):
        feature_stats["features"][name] = [v * scale for v in feature_stats["features"][name]]
    # constant features never change a label (no normalization changes that): w* on them cannot
    # be recovered from any sample, so the checks concern the other d_live features
    raw = torch.from_numpy(X_live)[None, :, None, :]
    checks = []
    for z in normalizations:
        cov = row_covariance(raw) if z == "batchnorm" else None
        Z = normalize_inputs(raw, z)[0, :, 0, :]
        model = BinaryTwoLayer(m=1, preact_cov=cov)
        for b in teacher_balances:
            # one stream per (normalization, balance): the same teachers under every normalization
            sub = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(int(b * 1e6),)))
            check = _check(Z, model, z, b, teachers, sub, reference)
            if measure > 0:
                rate = simulate(X_live, z, b, trials=measure, steps=steps, seed=seed)
                check = replace(check, measured_success=rate)
            checks.append(check)
    by_norm = {z: [c for c in checks if c.normalization == z] for z in normalizations}
    healthy = [
        z for z in PREFERENCE if z in by_norm and all(c.predicted_healthy for c in by_norm[z])
    ]
    if healthy:
        recommended = healthy[0]
    else:
        recommended = max(by_norm, key=lambda z: min(c.n_eff for c in by_norm[z]))
    features = feature_stats.pop("features")
    return Diagnosis(
        n=n,
        d=d,
        d_analysed=d_live,
        **feature_stats,
        gaussian_n50=reference,
        steps=steps,
        checks=tuple(checks),
        recommended=recommended,
        healthy_raw="none" in by_norm and all(c.predicted_healthy for c in by_norm["none"]),
        features=features,
    )


# --------------------------------------------------------------------------------- measured on X
def simulate(
    X: np.ndarray,
    normalization: str = "none",
    teacher_balance: float = 0.5,
    trials: int = 16,
    steps: int = 500,
    seed: int = 0,
) -> float:
    """Measure instead of predict: run the engine's STE-gradient method (m = 1, sign, identity
    STE, default step size and small init) on the rows of ``X`` (constant features left out),
    with ``trials`` random teachers of balance ``teacher_balance``; return the share of trials
    whose last iterate equals w* (E4 on this dataset)."""
    from stelab.config import parse_config
    from stelab.engine.dense import run_dense
    from stelab.engine.problem import Problem, _initial_weights
    from stelab.seeds import trial_rng

    X = validate_data(X)
    X = _unit_scale(X[:, ~_constant_features(X)])[0]  # float32 holds any scale of data
    n, d = X.shape
    cfg = parse_config(
        {
            "model": {"d": d, "teacher_balance": teacher_balance},
            "data": {"normalization": normalization},
            "train": {"n": n, "steps": steps},
            "run": {"trials": trials, "seed": seed, "device": "cpu"},
        }
    )
    ids = list(range(trials))
    raw = torch.from_numpy(X).to(torch.float32)[None, :, None, :].expand(trials, n, 1, d)
    cov = row_covariance(raw) if normalization == "batchnorm" else None
    Z = normalize_inputs(raw.contiguous(), normalization)
    model = BinaryTwoLayer(m=1, preact_cov=cov)
    teacher = np.stack(
        [make_teacher(trial_rng(seed, k, "teacher"), d, teacher_balance) for k in ids]
    )
    w_star = torch.from_numpy(teacher)
    y = model.outputs(model.preactivations(Z, w_star))
    u0 = torch.from_numpy(_initial_weights(cfg, ids)).to(torch.float32)
    problem = Problem(trials=ids, Z=Z, y=y, teacher=w_star, u0=u0, model=model)
    out = run_dense(problem, cfg)
    return float((out.hamming[:, -1] == 0).mean())


# --------------------------------------------------------------------------------- check vs E4
def engine_agreement(
    distributions: tuple[str, ...] | None = None,
    d: int = 32,
    n: int = 1000,
    steps: int = 500,
    trials: int = 16,
    teacher_balances: tuple[float, ...] = (0.5, 0.75),
    normalizations: tuple[str, ...] = PREFERENCE,
    seed: int = 0,
) -> Any:
    """For each distribution of :data:`stelab.data.DISTRIBUTIONS`: the engine's measured
    outcome (E4: success rate of the last iterate over ``trials``; success = rate >= 0.5, the
    same notion as :func:`gaussian_n50`) next to :func:`diagnose`'s prediction on an independent
    sample of n rows of that distribution. One row per (distribution, balance, normalization).
    """
    import pandas as pd

    from stelab.config import parse_config
    from stelab.data import DISTRIBUTIONS
    from stelab.engine import run_experiment

    names = tuple(DISTRIBUTIONS) if distributions is None else distributions
    n50 = gaussian_n50(d, steps)
    rows = []
    for k, name in enumerate(names):
        # the diagnosed sample comes from a stream the engine's trials never use
        sample_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(10_000 + k,)))
        sample = DISTRIBUTIONS[name].sample(sample_rng, (n, d))
        diagnosis = diagnose(
            sample, teacher_balances, normalizations, steps=steps, n50=n50, seed=seed
        )
        for balance in teacher_balances:
            for z in normalizations:
                cfg = parse_config(
                    {
                        "model": {"d": d, "teacher_balance": balance},
                        "data": {"distribution": name, "normalization": z},
                        "train": {"n": n, "steps": steps},
                        "run": {"trials": trials, "seed": seed, "device": "cpu"},
                    }
                )
                rate = float(run_experiment(cfg)["success_last"].mean())
                check = diagnosis.check(z, balance)
                rows.append(
                    {
                        "distribution": name,
                        "teacher_balance": balance,
                        "normalization": z,
                        "success_rate": rate,
                        "measured_healthy": rate >= 0.5,
                        "n_eff": check.n_eff,
                        "gaussian_n50": n50,
                        "predicted_healthy": check.predicted_healthy,
                        "agree": (rate >= 0.5) == check.predicted_healthy,
                    }
                )
    return pd.DataFrame(rows)
