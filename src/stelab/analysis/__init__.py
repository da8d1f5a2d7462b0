"""Statistics of experiment rows: thresholds, scaling exponents, recurrence, success tables.

Every function is a pure function of tidy per-trial rows (``stelab.engine.run_experiment``
output, or a sweep's merged table) or of tables derived from them; nothing reruns experiments.

Each name is imported on first use (as in :mod:`stelab`): a run that needs only the success
tables does not load the curve fits and their scipy.
"""

from __future__ import annotations

# the one name that is also a submodule's: imported now, so the attribute is the function (a
# later import of the submodule would otherwise leave the module object in its place)
from stelab.analysis.trajectories import trajectories as trajectories
from stelab.lazy import lazy_names

#: public name -> the module that holds it
_API = {
    "local_exponents": "stelab.analysis.exponents",
    "reference_curve": "stelab.analysis.exponents",
    "reference_ratios": "stelab.analysis.exponents",
    "threshold_ratios": "stelab.analysis.exponents",
    "law_sentence": "stelab.analysis.laws",
    "law_verdicts": "stelab.analysis.laws",
    "recurrence_table": "stelab.analysis.recurrence",
    "return_growth": "stelab.analysis.recurrence",
    "return_time_distribution": "stelab.analysis.recurrence",
    "return_time_summary": "stelab.analysis.recurrence",
    "returns_vs_horizon": "stelab.analysis.recurrence",
    "trial_recurrence": "stelab.analysis.recurrence",
    "LAW_MODELS": "stelab.analysis.scaling",
    "ScalingFit": "stelab.analysis.scaling",
    "compare_scaling_models": "stelab.analysis.scaling",
    "fit_scaling": "stelab.analysis.scaling",
    "scaling_by": "stelab.analysis.scaling",
    "mean_ci": "stelab.analysis.tables",
    "mean_ci_by": "stelab.analysis.tables",
    "success_by_steps": "stelab.analysis.tables",
    "success_table": "stelab.analysis.tables",
    "success_vs_horizon": "stelab.analysis.tables",
    "ThresholdFit": "stelab.analysis.threshold",
    "fit_binomial_curves": "stelab.analysis.threshold",
    "fit_threshold": "stelab.analysis.threshold",
    "thresholds_by": "stelab.analysis.threshold",
    "at_checkpoints": "stelab.analysis.trajectories",
    "horizon_grid": "stelab.analysis.trajectories",
    "horizon_stats": "stelab.analysis.trajectories",
    "per_horizon": "stelab.analysis.trajectories",
    "trajectories": "stelab.analysis.trajectories",
    "trajectory_bands": "stelab.analysis.trajectories",
}

__all__ = sorted(_API)

__getattr__, __dir__ = lazy_names(__name__, _API, globals(), __all__)
