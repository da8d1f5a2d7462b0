"""Statistics of experiment rows: thresholds, scaling exponents, recurrence, success tables.

Every function is a pure function of tidy per-trial rows (``stelab.engine.run_experiment``
output, or a sweep's merged table) or of tables derived from them; nothing reruns experiments.
"""

from stelab.analysis.exponents import (
    local_exponents,
    reference_curve,
    reference_ratios,
    threshold_ratios,
)
from stelab.analysis.laws import law_sentence, law_verdicts
from stelab.analysis.recurrence import (
    recurrence_table,
    return_growth,
    return_time_distribution,
    return_time_summary,
    returns_vs_horizon,
    trial_recurrence,
)
from stelab.analysis.scaling import (
    LAW_MODELS,
    ScalingFit,
    compare_scaling_models,
    fit_scaling,
    scaling_by,
)
from stelab.analysis.tables import (
    mean_ci,
    mean_ci_by,
    success_by_steps,
    success_table,
    success_vs_horizon,
)
from stelab.analysis.threshold import (
    ThresholdFit,
    fit_binomial_curves,
    fit_threshold,
    thresholds_by,
)
from stelab.analysis.trajectories import (
    at_checkpoints,
    horizon_grid,
    horizon_stats,
    per_horizon,
    trajectories,
    trajectory_bands,
)

__all__ = [
    "LAW_MODELS", "ScalingFit", "ThresholdFit", "at_checkpoints", "compare_scaling_models",
    "fit_binomial_curves", "fit_scaling", "fit_threshold", "horizon_grid", "horizon_stats",
    "law_sentence", "law_verdicts", "local_exponents", "mean_ci", "mean_ci_by", "per_horizon",
    "recurrence_table",
    "reference_curve", "reference_ratios", "return_growth", "return_time_distribution",
    "return_time_summary", "returns_vs_horizon", "scaling_by", "success_by_steps",
    "success_table", "success_vs_horizon", "threshold_ratios", "thresholds_by",
    "trajectories", "trajectory_bands", "trial_recurrence",
]
