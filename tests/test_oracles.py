"""The library against oracles that do not share its code: closed forms, textbook values, brute
force over every binary weight vector, and the plain reference loop of tests/legacy_engine.py.

Statistical tolerances are derived, not picked: each says the bound it comes from and its
false-failure rate (at most 1e-4 per test; the draws are seeded, so a passing test keeps
passing, and the rate says how unlucky a seed would have to be for a correct library to fail).
"""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from stelab.analysis import mean_ci
from stelab.analysis.proportions import wilson_interval
from stelab.config import parse_config
from stelab.engine.dense import run_dense
from stelab.engine.problem import Problem, build_problem, draw_inputs
from stelab.model import BinaryTwoLayer, step_size_eta
from stelab.normalize import normalize_inputs
from stelab.realdata import mean_ci as seeds_mean_ci
from tests.helpers import make_config
from tests.legacy_engine import run_legacy_outputs
from tests.test_engine_incremental import CASES

# ------------------------------------------------------------------ Wilson interval


def wilson_closed_form(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson (1927): the p solving |k/n - p| = z sqrt(p (1 - p) / n), written as the roots
    of the quadratic (1 + z^2/n) p^2 - (2 k/n + z^2/n) p + (k/n)^2 = 0 (not the library's
    centre/half-width form); z from the standard library's NormalDist."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    phat = k / n
    a, b, c = 1 + z * z / n, -(2 * phat + z * z / n), phat * phat
    disc = math.sqrt(b * b - 4 * a * c)
    return ((-b - disc) / (2 * a), (-b + disc) / (2 * a))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(n=st.integers(1, 5000), frac=st.floats(0, 1), confidence=st.sampled_from([0.8, 0.9, 0.95,
                                                                                  0.99, 0.999]))
def test_wilson_matches_the_closed_form(n, frac, confidence):
    k = round(frac * n)
    low, high = wilson_interval(k, n, confidence)
    ref_low, ref_high = wilson_closed_form(k, n, confidence)
    assert low == pytest.approx(max(ref_low, 0.0), abs=1e-12)
    assert high == pytest.approx(min(ref_high, 1.0), abs=1e-12)
    assert low <= k / n <= high


@pytest.mark.parametrize("k, n, low, high", [
    # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (score interval)
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_textbook_values(k, n, low, high):
    assert wilson_interval(k, n) == pytest.approx((low, high), abs=5e-5)


def test_wilson_ends_and_empty_sample():
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 10)[1] == pytest.approx(wilson_closed_form(0, 10, 0.95)[1])
    assert wilson_interval(10, 10)[0] == pytest.approx(wilson_closed_form(10, 10, 0.95)[0])
    for k in (0, 1):  # a single trial is a sample too
        assert wilson_interval(k, 1) == pytest.approx(
            (max(wilson_closed_form(k, 1, 0.95)[0], 0), min(wilson_closed_form(k, 1, 0.95)[1], 1)))
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    assert all(math.isnan(v) for v in wilson_interval(3, -1))
    # a wider confidence gives a wider interval, nested
    lo90, hi90 = wilson_interval(7, 20, 0.9)
    lo99, hi99 = wilson_interval(7, 20, 0.99)
    assert lo99 < lo90 < 7 / 20 < hi90 < hi99


# ------------------------------------------------------------------ Student-t and bootstrap intervals


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
@pytest.mark.parametrize("size", [6, 7, 40])
def test_t_interval_matches_scipy(size, confidence):
    values = np.random.default_rng(size).normal(3.0, 2.0, size)
    ref_low, ref_high = sps.t.interval(confidence, size - 1, loc=values.mean(),
                                       scale=sps.sem(values))
    mean, low, high = mean_ci(values, confidence, method="t")
    assert (mean, low, high) == pytest.approx((values.mean(), ref_low, ref_high), rel=1e-12)


def test_t_interval_drops_non_finite_values_and_needs_six():
    finite = [1.0, 3.0, 2.0, 4.0, 5.0, 6.0]
    mean, low, high = mean_ci(np.array([*finite[:3], np.nan, *finite[3:], np.inf]), method="t")
    ref = sps.t.interval(0.95, 5, loc=3.5, scale=sps.sem(finite))
    assert (mean, low, high) == pytest.approx((3.5, *ref))
    assert mean_ci(np.array([5.0]))[0] == 5.0 and math.isnan(mean_ci(np.array([5.0]))[1])
    assert math.isnan(mean_ci(np.array(finite[:5]), method="t")[1])
    assert all(math.isnan(v) for v in mean_ci(np.array([np.nan])))


@pytest.mark.parametrize("law", ["normal", "bernoulli"])
def test_bootstrap_interval_covers_the_mean_near_its_level(law):
    """Coverage of the percentile bootstrap (the default, and E5's seeds_mean_ci) over 300
    samples of 40 from a known law: near 95% (binomial 99.9% band around 0.95 for 300 draws,
    widened by the bootstrap's known small-sample undercoverage of ~1-2%)."""
    rng = np.random.default_rng(7)
    truth = 3.0 if law == "normal" else 0.2
    covered = 0
    for k in range(300):
        values = (rng.normal(truth, 2.0, 40) if law == "normal"
                  else (rng.random(40) < truth).astype(float))
        mean, low, high = mean_ci(values, seed=k)
        if k == 0:
            assert seeds_mean_ci(list(values)) == mean_ci(values)
        covered += low <= truth <= high
    assert 0.88 <= covered / 300 <= 0.99


# ------------------------------------------------------------------ Gaussian expected gradient


def _bonferroni_z(false_failure: float, count: int) -> float:
    """Two-sided normal quantile so that `count` CLT comparisons fail together with probability
    at most `false_failure` (union bound)."""
    return NormalDist().inv_cdf(1 - false_failure / (2 * count))


@pytest.mark.parametrize("activation, m", [("sign", 1), ("step", 3), ("sign", 2)])
def test_coarse_gradient_matches_the_gaussian_expectation(activation, m):
    """For z ~ N(0, I): E[sigma(z.a) z] = c a/||a|| with c = sqrt(2/pi) (sign) or
    sqrt(2/pi)/2 (step). Cross terms between hidden units vanish (independent, mean 0), so
    E[g] = (c / m) (q/||q|| - w*/||w*||) for the identity surrogate (PAPER.md, the step size
    convention). Tolerance: each coordinate of g is a mean of n i.i.d. terms
    (f - y) (1/m) sum_j z_j with |f - y| <= B (2 for sign, 1 for step), so its standard
    deviation is at most B / sqrt(m n); CLT with a union bound over trials x d coordinates at
    false-failure rate 1e-4."""
    d, n, trials = 8, 60_000, 3
    cfg = make_config(model={"d": d, "m": m, "activation": activation},
                      train={"n": n, "steps": 1}, run={"trials": trials, "seed": 11,
                                                        "device": "cpu"})
    problem = build_problem(cfg, list(range(trials)), torch.device("cpu"))
    w = problem.teacher
    q = w.clone()
    q[:, :3] *= -1  # three wrong coordinates
    model = problem.model
    h = model.preactivations(problem.Z, q)
    g = model.coarse_gradient(problem.Z, h, model.outputs(h) - problem.y, q.clone(), q)
    c = math.sqrt(2 / math.pi) * (1.0 if activation == "sign" else 0.5)
    expected = (c / m) * (q - w) / math.sqrt(d)  # ||q|| = ||w*|| = sqrt(d)
    B = 2.0 if activation == "sign" else 1.0
    tol = _bonferroni_z(1e-4, trials * d) * B / math.sqrt(m * n)
    assert (g.double() - expected.double()).abs().max().item() <= tol
    # the tolerance separates the answer from a wrong one (e.g. a missing 1/m or a flipped sign)
    assert tol < 0.25 * (c / m) * 2 / math.sqrt(d)


def test_first_engine_step_moves_a_wrong_coordinate_by_about_2c():
    """From u0 = 0 (q0 = +1) one step gives u1 = -eta g(q0), and with eta = c sqrt(pi d/2) m
    kappa the Gaussian expectation is u1 = -2c (q0 - w*)/2 per coordinate: -2c where w* = -1,
    0 where w* = +1. Same CLT bound as above, scaled by eta."""
    d, n, trials, c = 8, 40_000, 4, 0.5
    for activation, m in (("sign", 1), ("step", 2)):
        cfg = make_config(model={"d": d, "m": m, "activation": activation},
                          train={"n": n, "steps": 1, "init": "zero", "step_size": c},
                          run={"trials": trials, "seed": 5, "device": "cpu"})
        problem = build_problem(cfg, list(range(trials)), torch.device("cpu"))
        out = run_dense(problem, cfg, freeze=False)
        w = problem.teacher.double().numpy()
        expected = -2 * c * (1 - w) / 2
        eta = step_size_eta(c, d, m, activation)
        B = 2.0 if activation == "sign" else 1.0
        tol = eta * _bonferroni_z(1e-4, trials * d) * B / math.sqrt(m * n)
        assert np.abs(out.final_u - expected).max() <= tol
        assert tol < 0.25 * 2 * c


# ------------------------------------------------------------------ normalization statistics


def test_batchnorm_scale_is_the_std_of_the_preactivations():
    """s(q) = sqrt(q^T Sigma q) with Sigma the biased row covariance of the training sample,
    i.e. the population standard deviation of the n*m pre-activations z.q: computed here with
    numpy from the raw draw, without the library's covariance."""
    cfg = make_config(model={"d": 12, "m": 2}, train={"n": 500, "steps": 1},
                      data={"distribution": "exponential", "normalization": "batchnorm"},
                      run={"trials": 3, "seed": 4, "device": "cpu"})
    problem = build_problem(cfg, [0, 1, 2], torch.device("cpu"))
    raw = draw_inputs(cfg, [0, 1, 2]).double().numpy().reshape(3, -1, 12)
    rng = np.random.default_rng(0)
    for _ in range(5):
        q = np.where(rng.random((3, 12)) < 0.5, -1.0, 1.0)
        direct = np.array([np.std(raw[k] @ q[k]) for k in range(3)])
        s = problem.model.preact_scale(torch.from_numpy(q).float()).double().numpy()
        np.testing.assert_allclose(s, direct, rtol=2e-6)
        # and the pre-activations the model divides by it are standardized
        h = problem.model.preactivations(problem.Z, torch.from_numpy(q).float()).double()
        np.testing.assert_allclose(h.reshape(3, -1).std(dim=1, correction=0).numpy(), 1.0, rtol=1e-5)


@pytest.mark.parametrize("method", ["center", "standardize", "whiten"])
def test_normalized_inputs_have_the_promised_moments(method):
    Z = torch.from_numpy(np.random.default_rng(1).exponential(2.0, (2, 400, 1, 6))
                         @ np.triu(np.ones((6, 6)))).float()
    out = normalize_inputs(Z, method).double().numpy().reshape(2, -1, 6)
    for k in range(2):
        np.testing.assert_allclose(out[k].mean(axis=0), 0.0, atol=1e-5)
        cov = np.cov(out[k].T, bias=True)
        if method == "standardize":
            np.testing.assert_allclose(np.diag(cov), 1.0, rtol=1e-5)
        if method == "whiten":
            np.testing.assert_allclose(cov, np.eye(6), atol=1e-5)
        if method == "center":
            raw = Z[k].double().numpy().reshape(-1, 6)
            np.testing.assert_allclose(cov, np.cov(raw.T, bias=True), rtol=1e-5)


# ------------------------------------------------------------------ brute force on the cube


def _exact_surrogate(name: str, h: np.ndarray) -> np.ndarray:
    """sigma~'(h) of quantizers.py's docstring, on exact (integer) pre-activations."""
    return {
        "identity": np.ones_like(h),
        "relu": (h > 0) * 1.0,
        "clipped_relu": ((h > 0) & (h < 1)) * 1.0,
        "hardtanh": (np.abs(h) <= 1) * 1.0,
        "approx_sign": np.maximum(2.0 - 2.0 * np.abs(h), 0.0),
    }[name]


def _exact_act(activation: str, h: np.ndarray) -> np.ndarray:
    return np.where(h >= 0, 1.0, -1.0) if activation == "sign" else (h > 0) * 1.0


def _cube(d: int) -> np.ndarray:
    """All 2^d points of {-1, +1}^d (the whole Rademacher distribution, each once)."""
    return np.array(list(itertools.product((-1.0, 1.0), repeat=d)))


def _cube_problem(d, m, activation, ste, u0, w_star, dtype=torch.float32
                  ) -> tuple[Problem, np.ndarray, np.ndarray]:
    """The sample = every point of the cube for every hidden unit: n = 2^d rows, unit j of row
    i sees the point (i + j) mod 2^d. Pre-activations are integers, with ties h = 0 when d is
    even, so every comparison of the decision rules (>= vs >, < vs <=) is exercised."""
    points = _cube(d)
    n = points.shape[0]
    Z = np.stack([points[(np.arange(n) + j) % n] for j in range(m)], axis=1)  # (n, m, d)
    y = _exact_act(activation, Z @ w_star).mean(axis=1)
    model = BinaryTwoLayer(m=m, activation=activation, ste=ste)
    problem = Problem(trials=[0], Z=torch.from_numpy(Z[None]).to(dtype),
                      y=torch.from_numpy(y[None]).to(dtype),
                      teacher=torch.from_numpy(w_star[None]).to(dtype),
                      u0=torch.from_numpy(u0[None]).to(dtype), model=model)
    return problem, Z, y


def _exact_loss_and_gradient(Z, y, q, activation, ste):
    h = Z @ q  # (n, m), exact integers
    residual = _exact_act(activation, h).mean(axis=1) - y
    m, n = Z.shape[1], Z.shape[0]
    coeff = residual[:, None] * _exact_surrogate(ste, h) / m
    return 0.5 * (residual**2).mean(), np.einsum("nm,nmd->d", coeff, Z) / n


@pytest.mark.parametrize("d", [4, 5])
@pytest.mark.parametrize("activation, m, ste", [
    ("sign", 1, "identity"), ("sign", 1, "hardtanh"), ("step", 2, "relu"),
    ("sign", 3, "approx_sign"), ("step", 1, "clipped_relu"), ("sign", 2, "relu"),
    ("sign", 2, "identity"),
])
def test_every_q_on_the_cube(d, activation, m, ste):
    """Over all 2^d binary q: the model's loss and coarse gradient equal the exact ones (sums of
    integers divided by powers of two and by m: exact in float32 up to the 1/m rounding), the
    global minimum of the loss is 0 and w* attains it, and the dense engine's first step from
    every q is u0 - eta * (exact gradient)."""
    w_star = np.array([1.0, -1.0, -1.0, 1.0, -1.0][:d])
    problem, Z, y = _cube_problem(d, m, activation, ste, np.zeros(d), w_star)
    losses = {}
    for bits in itertools.product((-1.0, 1.0), repeat=d):
        q = np.array(bits)
        loss, grad = _exact_loss_and_gradient(Z, y, q, activation, ste)
        losses[bits] = loss
        qt = torch.from_numpy(q[None]).float()
        h = problem.model.preactivations(problem.Z, qt)
        residual = problem.model.outputs(h) - problem.y
        g = problem.model.coarse_gradient(problem.Z, h, residual, qt.clone(), qt)
        assert problem.model.loss(problem.Z, qt, problem.y).item() == pytest.approx(loss, abs=1e-7)
        np.testing.assert_allclose(g[0].double().numpy(), grad, atol=1e-6)
    best = min(losses.values())
    assert best == 0.0 and losses[tuple(w_star)] == 0.0
    # and w* only: every other q decides some point of the cube differently
    assert sum(v == 0.0 for v in losses.values()) == 1

    eta = step_size_eta(0.5, d, m, activation)
    rng = np.random.default_rng(d)
    # float32 runs the compiled decisions where they apply, float64 DecisionRule.decide
    for dtype in (torch.float32, torch.float64):
        cfg = parse_config({"model": {"d": d, "m": m, "activation": activation},
                            "train": {"n": Z.shape[0], "steps": 1, "ste": ste, "step_size": 0.5},
                            "run": {"trials": 1, "seed": 0, "device": "cpu",
                                    "dtype": str(dtype).removeprefix("torch.")}})
        for _ in range(4):
            u0 = rng.choice([-1.5, -0.25, 0.0, 0.25, 1.5], size=d)
            problem1, _, _ = _cube_problem(d, m, activation, ste, u0, w_star, dtype)
            q0 = np.where(u0 >= 0, 1.0, -1.0)
            _, grad = _exact_loss_and_gradient(Z, y, q0, activation, ste)
            out = run_dense(problem1, cfg, freeze=False)
            np.testing.assert_allclose(out.final_u[0], u0 - eta * grad, atol=1e-5)
            q1 = np.where(out.final_u[0] >= 0, 1.0, -1.0)
            assert out.hamming[0].tolist() == [int((q0 != w_star).sum()), int((q1 != w_star).sum())]
            assert out.final_loss[0] == pytest.approx(losses[tuple(q1)], abs=1e-7)


# ------------------------------------------------------------------ the plain reference loop


@pytest.mark.parametrize("overrides", CASES)
def test_dense_engine_reproduces_the_reference_loop_on_every_outcome(overrides):
    """Every CASES config, every outcome column: Hamming and ergodic counts and losses exactly
    (same decisions, same float32 loss formula); u_T up to float32 summation rounding, bounded
    by 2^-24 (n m + 2) times the accumulated |eta Z^T coeff / n| (Higham's bound for a sum of
    n m terms, plus the update's own rounding)."""
    record = {"loss_trajectory": True, "checkpoints": [1, 5, 12]}
    cfg = make_config(run={"trials": 6, "seed": 1, "device": "cpu"}, record=record, **overrides)
    problem = build_problem(cfg, list(range(6)), torch.device("cpu"))
    ref = run_legacy_outputs(problem, cfg)
    out = run_dense(problem, cfg, freeze=False)
    for field in ("hamming", "ergodic_hamming", "ergodic_at", "final_loss", "loss"):
        np.testing.assert_array_equal(getattr(out, field), ref[field], err_msg=field)
    _, n, m, _ = problem.Z.shape
    tol = 2.0**-24 * (n * m + 2) * ref["u_mass"] + 1e-12
    assert (np.abs(out.final_u - ref["final_u"]) <= tol).all()
