"""Each input distribution against its documented law (data.py's docstring), by more than the
mean: the whole marginal by a Kolmogorov-Smirnov test, the support of the discrete ones, the
frequencies by an exact binomial test, and the dependence the mixture promises.

Level: every test in this file rejects a correct sampler with probability at most 1e-4 (the
per-comparison level is 1e-4 divided by the number of comparisons it makes, a union bound). The
draws are seeded, so the outcome is fixed; the level says how unlikely a failure of a correct
sampler would be.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from stelab.data import get_distribution

ALPHA = 1e-4
ROWS, D = 4000, 4

#: name -> the documented law of one coordinate (scipy frozen distribution), default parameters
CONTINUOUS = {
    "gaussian": sps.norm(),
    "uniform": sps.uniform(-1, 2),
    "uniform01": sps.uniform(0, 1),
    "exponential": sps.expon(),
    "lognormal": sps.lognorm(1.0),
    "student_t": sps.t(3),
    "shifted_gaussian": sps.norm(1.0),
}


def _draw(name: str, params=None, seed: int = 0) -> np.ndarray:
    return get_distribution(name).sample(np.random.default_rng(seed), (ROWS, 1, D), params)


@pytest.mark.parametrize("name", sorted(CONTINUOUS))
def test_continuous_marginals_follow_their_law(name):
    x = _draw(name).reshape(ROWS, D).astype(np.float64)
    for i in range(D):
        assert sps.kstest(x[:, i], CONTINUOUS[name].cdf).pvalue > ALPHA / D, i
    # and the coordinates are independent draws: no two columns are equal
    assert len({x[:, i].tobytes() for i in range(D)}) == D


def test_anisotropic_gaussian_scales_are_geometric_from_condition_powers():
    x = _draw("anisotropic_gaussian", {"condition": 100.0}).reshape(ROWS, D).astype(np.float64)
    scales = 100.0 ** np.linspace(-0.5, 0.5, D)
    for i in range(D):
        assert sps.kstest(x[:, i], sps.norm(0, scales[i]).cdf).pvalue > ALPHA / D, i


def test_gaussian_mixture_has_one_sign_per_row():
    """x = s mu 1 + g: marginal 0.5 N(mu, 1) + 0.5 N(-mu, 1); Cov(x_i, x_j) = mu^2 for i != j.
    At mu = 1, x_i x_j = 1 + s (g_i + g_j) + g_i g_j has variance 2 + 1 = 3 (the cross terms
    have mean 0), so the sample covariance of ROWS rows has standard deviation about
    sqrt(3 / ROWS): |cov - 1| <= z sqrt(3 / ROWS), z the two-sided normal quantile at 1e-4 over
    the 6 pairs (CLT, union bound)."""
    x = _draw("gaussian_mixture").reshape(ROWS, D).astype(np.float64)

    def cdf(v):
        return 0.5 * sps.norm(1.0).cdf(v) + 0.5 * sps.norm(-1.0).cdf(v)

    for i in range(D):
        assert sps.kstest(x[:, i], cdf).pvalue > ALPHA / (2 * D)
    cov = np.cov(x.T)
    z = sps.norm.isf(ALPHA / (2 * 6))
    off = cov[~np.eye(D, dtype=bool)]
    assert np.abs(off - 1.0).max() <= z * np.sqrt(3 / ROWS)


@pytest.mark.parametrize("name, support, p", [("rademacher", (-1.0, 1.0), 0.5),
                                              ("sparse_bernoulli", (0.0, 1.0), 0.1)])
def test_discrete_support_and_frequency(name, support, p):
    x = _draw(name).ravel()
    assert set(np.unique(x)) == set(support)
    ones = int((x == support[1]).sum())
    assert sps.binomtest(ones, x.size, p).pvalue > ALPHA


def test_parameters_change_the_law():
    x = _draw("exponential", {"scale": 3.0}).ravel().astype(np.float64)
    assert sps.kstest(x, sps.expon(scale=3.0).cdf).pvalue > ALPHA
    x = _draw("sparse_bernoulli", {"p": 0.3}).ravel()
    assert sps.binomtest(int(x.sum()), x.size, 0.3).pvalue > ALPHA
    x = _draw("student_t", {"df": 10.0}).ravel().astype(np.float64)
    assert sps.kstest(x, sps.t(10).cdf).pvalue > ALPHA
