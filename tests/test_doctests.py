"""The examples in the public API's docstrings run, and give what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["stelab.config", "stelab.engine.run", "stelab.analysis.proportions",
           "stelab.analysis.threshold", "stelab.analysis.intervals", "stelab.quantizers",
           "stelab.nn.layers", "stelab.nn.metrics", "stelab.nn.optim", "stelab.nn.summary",
           "stelab.diagnosis.loading", "stelab.analysis.tables", "stelab.analysis.trajectories",
           "stelab.analysis.exponents", "stelab.analysis.recurrence"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
