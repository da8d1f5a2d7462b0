"""What a diagnosis will cost, estimated before anything runs: :func:`diagnose` refuses a
diagnosis whose estimate exceeds its bound and says which part costs what."""

from __future__ import annotations

from stelab.config import NORMALIZATIONS
from stelab.diagnosis.reference import REFERENCE_EVALUATIONS, REFERENCE_TRIALS

__all__ = ["MAX_SECONDS", "describe_cost", "duration", "estimate_seconds"]

#: default bound on the estimated time of one diagnosis (seconds); above it, diagnose refuses
#: and says which part costs what (pass ``max_seconds`` / ``--max-seconds`` to allow more)
MAX_SECONDS = 600.0
#: rough speeds of this 2-core class of machine, for the estimate only (never for a result):
#: the engine's STE steps (flops of :func:`stelab.sweep.grid.trial_flops` per second) and a
#: dense symmetric eigendecomposition (d^3 per second; 3.7 s at d = 2000 measured)
ENGINE_FLOPS_PER_SECOND = 5e9
EIGEN_FLOPS_PER_SECOND = 2e9


def estimate_seconds(
    n: int,
    d: int,
    steps: int = 500,
    n50_given: bool = False,
    normalizations: tuple[str, ...] = NORMALIZATIONS,
    balances: int = 2,
    teachers: int = 16,
    measure: int = 0,
) -> dict[str, float]:
    """Rough seconds of each costly part of :func:`~stelab.diagnosis.diagnose` (for the
    announcement and the bound; the constants above, not a measurement of this machine)."""
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


def duration(seconds: float) -> str:
    """``42 s``, ``7 min``, ``2.5 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def describe_cost(parts: dict[str, float]) -> str:
    """``about 3 min (Gaussian reference n50: 3 min, ...)``, largest part first."""
    ranked = sorted(parts.items(), key=lambda kv: -kv[1])
    detail = ", ".join(f"{name}: {duration(sec)}" for name, sec in ranked if sec >= 1)
    return f"about {duration(sum(parts.values()))}" + (f" ({detail})" if detail else "")
