"""Diagnose a dataset for STE health: will the STE-gradient method (docs/diagnose.md) recover a
random binary teacher from these inputs, raw or after which normalization?

The modules, in the order a diagnosis uses them:

* :mod:`~stelab.diagnosis.loading`: read and check a user's file (``.npz``, ``.npy``, ``.csv``).
* :mod:`~stelab.diagnosis.cost`: the time a diagnosis will take, bounded before anything runs.
* :mod:`~stelab.diagnosis.features`: descriptive statistics of the raw data (shown only).
* :mod:`~stelab.diagnosis.reference`: the Gaussian reference (discrimination probability, n50).
* :mod:`~stelab.diagnosis.prediction`: the predictor (discriminating samples of one-flip
  neighbours, n_eff) and :func:`diagnose`, which returns a :class:`Diagnosis`.
* :mod:`~stelab.diagnosis.measurement`: :func:`simulate`, the engine's outcome on the data itself.
* :mod:`~stelab.diagnosis.rendering`: rich tables and strict JSON of a diagnosis.
* :mod:`~stelab.diagnosis.agreement`: :func:`engine_agreement`, the predictor against E4.
"""

from stelab.diagnosis.agreement import engine_agreement
from stelab.diagnosis.cost import MAX_SECONDS, describe_cost, estimate_seconds
from stelab.diagnosis.loading import load_data, validate_data
from stelab.diagnosis.measurement import simulate
from stelab.diagnosis.prediction import Diagnosis, NormalizationCheck, diagnose
from stelab.diagnosis.reference import gaussian_discrimination_probability, gaussian_n50

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
