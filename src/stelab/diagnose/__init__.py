"""Diagnose a dataset for STE health: will the STE-gradient method (docs/diagnose.md) recover a
random binary teacher from these inputs, raw or after which normalization?

The modules, in the order a diagnosis uses them:

* :mod:`~stelab.diagnose.loading`: read and check a user's file (``.npz``, ``.npy``, ``.csv``).
* :mod:`~stelab.diagnose.cost`: the time a diagnosis will take, bounded before anything runs.
* :mod:`~stelab.diagnose.features`: descriptive statistics of the raw data (shown only).
* :mod:`~stelab.diagnose.reference`: the Gaussian reference (discrimination probability, n50).
* :mod:`~stelab.diagnose.prediction`: the predictor (discriminating samples of one-flip
  neighbours, n_eff) and :func:`diagnose`, which returns a :class:`Diagnosis`.
* :mod:`~stelab.diagnose.measurement`: :func:`simulate`, the engine's outcome on the data itself.
* :mod:`~stelab.diagnose.rendering`: rich tables and strict JSON of a diagnosis.
* :mod:`~stelab.diagnose.agreement`: :func:`engine_agreement`, the predictor against E4.
"""

from stelab.diagnose.agreement import engine_agreement
from stelab.diagnose.cost import MAX_SECONDS, describe_cost, estimate_seconds
from stelab.diagnose.loading import load_data, validate_data
from stelab.diagnose.measurement import simulate
from stelab.diagnose.prediction import Diagnosis, NormalizationCheck, diagnose
from stelab.diagnose.reference import gaussian_discrimination_probability, gaussian_n50

__all__ = [
    "MAX_SECONDS",
    "Diagnosis",
    "NormalizationCheck",
    "describe_cost",
    "diagnose",
    "engine_agreement",
    "estimate_seconds",
    "gaussian_discrimination_probability",
    "gaussian_n50",
    "load_data",
    "simulate",
    "validate_data",
]
