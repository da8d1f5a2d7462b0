"""The reliability campaign under hypothesis (tests/campaign.py): hostile configs, config
files, paths, data files, corrupted sweep stores and folders given to plot (fast, default
suite), interrupts at random moments and full disks (slow). Every case must end clean: success
where the oracle expects it, else one line with the right status naming the field, no
traceback, stored results unchanged, no hang."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import campaign as C

FAST = settings(max_examples=40, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("campaign")


def check(result: C.Result) -> None:
    assert C.is_clean(result), C.describe(result)


_counter = iter(range(10**9))


@FAST
@given(key=st.sampled_from(sorted(C.RULES)), value=C.hostile_values)
def test_config_values_run_or_are_refused_naming_the_key(root, key, value):
    check(C.config_value_case(root, key, value, next(_counter)))


@settings(FAST, max_examples=25)
@given(command=st.sampled_from(["run", "sweep"]), document=C.random_documents)
def test_random_config_files_are_refused_in_one_line(root, command, document):
    check(C.config_file_case(root, command, document, next(_counter)))


def test_unusable_paths_and_held_folders(root):
    for result in C.path_cases(root):
        check(result)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a read-only tmpfs")
def test_read_only_output_folders(root):
    results = C.read_only_cases(root)
    assert results
    for result in results:
        check(result)


@settings(FAST, max_examples=30)
@given(X=C.arrays, fmt=st.sampled_from(["npy", "npz", "csv", "garbage"]), n50=C.n50_values)
def test_data_files_are_diagnosed_or_refused(root, X, fmt, n50):
    if n50 is None:
        n50 = 20.0  # measuring the Gaussian reference is covered by test_diagnose
    check(C.data_case(root, X, fmt, n50, next(_counter)))


@settings(FAST, max_examples=20)
@given(target=st.sampled_from(["manifest", "cell", "results", "lock"]),
       how=st.sampled_from(C.CORRUPTIONS), cut=st.floats(0, 1))
def test_corrupted_store_resumes_to_the_same_table_or_refuses(root, target, how, cut):
    check(C.store_case(root, target, how, cut, next(_counter)))


@pytest.mark.parametrize("layout", C.PLOT_LAYOUTS)
def test_plot_refuses_folders_that_are_not_reproduce_runs(root, layout):
    check(C.plot_case(root, layout, next(_counter)))


def test_options_outside_their_values_are_refused_naming_the_option(root):
    for result in C.option_cases(root):
        check(result)


@settings(FAST, max_examples=20)
@given(profile=C.random_profiles)
def test_random_reproduce_profiles_are_refused_before_running(root, profile):
    check(C.profile_case(root, profile, next(_counter)))


# ------------------------------------------------------------------------------------- slow
@pytest.mark.slow
@settings(deadline=None, database=None, max_examples=6,
          suppress_health_check=list(HealthCheck))
@given(signum=st.sampled_from([signal.SIGINT, signal.SIGTERM, signal.SIGKILL]),
       delay=st.floats(1.0, 20.0))
def test_interrupt_at_a_random_moment_then_resume(root, signum, delay):
    check(C.interrupt_case(root, signum, delay, next(_counter),
                           lambda: C.slow_sweep_baseline(root)))


@pytest.mark.slow
@settings(deadline=None, database=None, max_examples=3,
          suppress_health_check=list(HealthCheck))
@given(signum=st.sampled_from([signal.SIGINT, signal.SIGTERM]), delay=st.floats(2.0, 12.0))
def test_interrupted_run_keeps_the_stored_results(root, signum, delay):
    check(C.run_interrupt_case(root, signum, delay, next(_counter)))


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs")
@settings(deadline=None, database=None, max_examples=4,
          suppress_health_check=list(HealthCheck))
@given(size_kb=st.integers(24, 400))
def test_disk_full_keeps_stored_cells_and_resumes(root, size_kb):
    check(C.disk_full_case(root, size_kb, next(_counter), lambda: C.slow_sweep_baseline(root)))
