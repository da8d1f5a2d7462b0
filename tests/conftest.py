"""The suite's fixtures. Shared helpers live in tests/helpers.py (``make_config`` is
imported here too, for test files that still import it from conftest)."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import make_config  # noqa: F401


@pytest.fixture(autouse=True)
def _deterministic_threads():
    """Keep torch on the machine's two cores, as CI runs it."""
    torch.set_num_threads(min(2, torch.get_num_threads()))
    yield
