"""The prediction of STE health: will the STE-gradient method recover a random binary teacher
from these inputs, raw or after which normalization?

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
is measured by the engine on Gaussian data (:func:`~stelab.diagnosis.reference.gaussian_n50`),
or given. Nothing in the prediction looks at the name of a distribution.

Companions of each check (shown, not used by the prediction): the minority-label share and mean
offset |E[x.w*]| / sd(x.w*) of a random teacher, and the cosine between the coarse-gradient step
-g(q0) at a random start q0 and w* (for Gaussian rows E[-g(q)] = sqrt(2/pi) (w*/||w*|| -
q/||q||), whose cosine with w* is sqrt((1 - cos(q, w*)) / 2) ~ 0.71 at a random start).

Normalizations are those of :mod:`stelab.normalize`; ``batchnorm`` divides each pre-activation by
a positive number, which changes no sign, so its prediction equals ``center``'s.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch

from stelab.config import NORMALIZATIONS
from stelab.data import make_teacher
from stelab.diagnosis.cost import (
    ENGINE_FLOPS_PER_SECOND,
    MAX_SECONDS,
    describe_cost,
    duration,
    estimate_seconds,
)
from stelab.diagnosis.features import constant_features, feature_statistics, unit_scale
from stelab.diagnosis.loading import validate_data
from stelab.diagnosis.measurement import simulate
from stelab.diagnosis.reference import gaussian_discrimination_probability, gaussian_n50
from stelab.diagnosis.rendering import diagnosis_json, diagnosis_renderables
from stelab.errors import ConfigError, DataError
from stelab.model import BinaryTwoLayer
from stelab.normalize import normalize_inputs, row_covariance
from stelab.quantizers import sign

Tensor = torch.Tensor

__all__ = ["Diagnosis", "NormalizationCheck", "diagnose"]

#: rows x features per block of the discrimination counts (bounds their temporaries)
_CHUNK_ELEMENTS = 1 << 22


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
    # feature geometry (raw data; :func:`~stelab.diagnosis.features.feature_statistics`)
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
        """Strict JSON: a non-finite number is written as null
        (:func:`~stelab.diagnosis.rendering.diagnosis_json`)."""
        return diagnosis_json(self.to_dict(features))

    def to_rich(self, title: str = "dataset") -> list[Any]:
        """Rich renderables: the geometry table, the prediction table, a recommendation line."""
        return diagnosis_renderables(self, title)


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


def diagnose(
    X: np.ndarray,
    teacher_balances: tuple[float, ...] = (0.5, 0.75),
    normalizations: tuple[str, ...] = NORMALIZATIONS,
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
    engine (:func:`~stelab.diagnosis.reference.gaussian_n50`, cached per process) when None.
    ``measure`` > 0 also runs :func:`~stelab.diagnosis.measurement.simulate` with that many trials
    for every check (the measured outcome on X itself).

    The cost is bounded: when :func:`~stelab.diagnosis.cost.estimate_seconds` exceeds
    ``max_seconds`` the diagnosis is refused (ConfigError naming the costly part and what to pass
    instead). Data at any finite scale are accepted (they are rescaled by a power of two first);
    NaN or inf is refused.

    Parameters
    ----------
    X : array_like, shape (n, d), numeric
        The samples (rows) and features (columns); read as float64.
    teacher_balances : tuple of float
        Shares of +1 weights of the random binary teachers, each in [0, 1].
    normalizations : tuple of str
        Input normalizations to check, from :data:`stelab.config.NORMALIZATIONS`.
    teachers : int
        Random teachers per (normalization, balance), >= 1.
    steps : int
        The training horizon (steps) the Gaussian reference n50 refers to.
    n50 : float or None
        The Gaussian reference n50 (samples) at d and ``steps``; None: measured.
    seed : int
        Seed of the teachers and the random projections.
    projections : int
        Random projections used for the feature statistics.
    measure : int
        Trials of a measured run on ``X`` per check (0: predict only).
    max_seconds : float
        Bound (seconds) on the estimated cost; more is refused.

    Returns
    -------
    Diagnosis
        Feature statistics (in the units of ``X``), one ``NormalizationCheck`` per
        (normalization, balance) in ``checks``, ``recommended`` (a normalization name) and
        ``healthy_raw``.

    Raises
    ------
    DataError
        ``X`` not a finite 2-D numeric array, or every feature constant.
    ConfigError
        A balance outside [0, 1], an unknown normalization, ``teachers`` < 1, ``measure`` < 0,
        a non-positive ``n50`` or ``max_seconds``, or an estimated cost over ``max_seconds``.
    """
    X = validate_data(X)
    n, d = X.shape
    if n50 is not None and not (math.isfinite(n50) and n50 > 0):
        raise ConfigError(f"--gaussian-n50: {n50} is not allowed; allowed: a finite number > 0")
    if not math.isfinite(max_seconds) or max_seconds <= 0:
        raise ConfigError(
            f"--max-seconds: {max_seconds} is not allowed; allowed: a finite number > 0")
    X, scale = unit_scale(X)
    constant = constant_features(X)
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
            f"{duration(max_seconds)} bound; give --gaussian-n50, fewer features, a smaller "
            "--steps or --measure, or allow more with --max-seconds"
        )
    reference = float(n50) if n50 is not None else gaussian_n50(
        d_live, steps, max_flops=2.0 * max_seconds * ENGINE_FLOPS_PER_SECOND
    )
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    feature_stats = feature_statistics(X, rng, projections)
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
    # NORMALIZATIONS runs from least to most invasive: recommend the first healthy one
    healthy = [
        z for z in NORMALIZATIONS if z in by_norm and all(c.predicted_healthy for c in by_norm[z])
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
