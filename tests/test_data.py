"""Input distributions, teacher weights and normalization."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stelab.data import DISTRIBUTIONS, get_distribution, make_teacher
from stelab.normalize import normalize_inputs, row_covariance

EXPECTED_MEAN = {
    "gaussian": 0.0, "rademacher": 0.0, "uniform": 0.0, "uniform01": 0.5, "exponential": 1.0,
    "lognormal": float(np.exp(0.5)), "student_t": 0.0, "shifted_gaussian": 1.0,
    "anisotropic_gaussian": 0.0, "gaussian_mixture": 0.0, "sparse_bernoulli": 0.1,
}


def test_registry_holds_the_paper_distributions():
    assert set(DISTRIBUTIONS) == set(EXPECTED_MEAN)


@pytest.mark.parametrize("name", sorted(EXPECTED_MEAN))
def test_distribution_shape_dtype_and_mean(name):
    x = get_distribution(name).sample(np.random.default_rng(0), (20000, 1, 8))
    assert x.shape == (20000, 1, 8) and x.dtype == np.float32
    assert np.isfinite(x).all()
    tolerance = 0.1 if name in ("student_t", "lognormal") else 0.03
    assert abs(float(x.mean()) - EXPECTED_MEAN[name]) < tolerance


def test_samples_are_nested_in_n():
    dist = get_distribution("student_t")
    small = dist.sample(np.random.default_rng(5), (10, 2, 4))
    large = dist.sample(np.random.default_rng(5), (30, 2, 4))
    assert np.array_equal(small, large[:10])


@pytest.mark.parametrize("d,balance,plus", [(10, 0.5, 5), (8, 0.75, 6), (7, 0.0, 0), (7, 1.0, 7)])
def test_teacher_balance_is_exact(d, balance, plus):
    w = make_teacher(np.random.default_rng(0), d, balance)
    assert set(np.unique(w)) <= {-1.0, 1.0} and int((w == 1).sum()) == plus


def _sample(name: str) -> torch.Tensor:
    x = get_distribution(name).sample(np.random.default_rng(1), (2, 3000, 2, 6))
    return torch.from_numpy(x).to(torch.float64)


def test_normalizations_produce_their_statistics():
    Z = _sample("lognormal")
    assert torch.allclose(normalize_inputs(Z, "center").mean(dim=(1, 2)), torch.zeros(2, 6, dtype=torch.float64), atol=1e-10)
    std = normalize_inputs(Z, "standardize").reshape(2, -1, 6).std(dim=1, correction=0)
    assert torch.allclose(std, torch.ones(2, 6, dtype=torch.float64), atol=1e-10)
    cov = row_covariance(normalize_inputs(Z, "whiten"))
    assert torch.allclose(cov, torch.eye(6).expand(2, 6, 6).to(cov.dtype), atol=1e-6)
    assert normalize_inputs(Z, "none") is Z


def test_standardize_leaves_constant_features_finite():
    Z = torch.zeros(1, 10, 1, 3, dtype=torch.float64)
    Z[0, :, 0, 0] = torch.arange(10.0)
    assert torch.isfinite(normalize_inputs(Z, "standardize")).all()
