"""The campaign families of issue 23 under hypothesis (tests/campaign_integrity.py): single-bit
flips in every kind of stored file and the command that reads it, intervals printed by
``stelab run`` for random small runs (default suite), repeated kills and two reproduce at once
(slow). Every case must end clean."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import campaign as C
from tests import campaign_integrity as CI

FAST = settings(max_examples=12, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))
_counter = iter(range(10**9))


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("campaign-integrity")


def check(result: C.Result) -> None:
    assert C.is_clean(result), C.describe(result)


@pytest.mark.parametrize("kind", sorted(CI.KINDS))
def test_a_flipped_bit_in_every_kind_of_file_is_never_served(root, kind):
    check(CI.bit_flip_case(root, kind, 0.37, 5, next(_counter)))


@pytest.mark.slow
@settings(FAST, max_examples=60)
@given(kind=st.sampled_from(sorted(CI.KINDS)), at=st.floats(0, 0.999999), bit=st.integers(0, 7))
def test_bit_flips_at_random_offsets(root, kind, at, bit):
    check(CI.bit_flip_case(root, kind, at, bit, next(_counter)))


@FAST
@given(d=st.integers(2, 12), trials=st.integers(1, 9), noise=st.floats(0, 0.4))
def test_printed_intervals_stay_in_range(root, d, trials, noise):
    check(CI.interval_case(root, d, trials, noise, next(_counter)))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_repeated_kills_and_two_at_once(root):
    check(CI.kills_case(root, 4, 7, next(_counter)))
    check(CI.twin_case(root, next(_counter)))
