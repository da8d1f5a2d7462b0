"""The compiled per-trial kernels of the incremental engine against the torch code they replace:
decisions, residuals and gradient bags bit for bit, column updates within their error bound,
the column cache's bookkeeping and the step planner."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from stelab.engine import compiled
from stelab.engine.decisions import DecisionRule
from stelab.engine.incremental import ColumnCache
from stelab.engine.passes import bag_sums, exact_preactivations, gradient_sums
from stelab.quantizers import DISCRETE_SURROGATES


def _grid_problem(seed: int, t: int, n: int, m: int, d: int):
    """Integer-valued data: exact pre-activations are integers, so many sit exactly on 0 or on
    a threshold +-s (s integer), where only the exact value decides."""
    g = torch.Generator().manual_seed(seed)
    Z3 = torch.randint(-2, 3, (t, n * m, d), generator=g).float()
    q = torch.randint(0, 2, (t, d), generator=g).float() * 2 - 1
    y = torch.randint(0, 2, (t, n), generator=g).float() * 2 - 1
    return Z3, q, y, g


def _run_kernel(activation, surrogate, m, Z3, h, q, y, err, scale, flips=None, apply=None,
                cache=None):
    t, R, d = Z3.shape
    ks = torch.arange(t)
    residual = torch.zeros(t, R // m)
    rows = torch.empty(t * R, dtype=torch.long)
    weights = torch.empty(t * R)
    offsets = torch.empty(t + 1, dtype=torch.long)
    cache = cache or ColumnCache(Z3, 0)
    flips = torch.zeros(t, d, dtype=torch.bool) if flips is None else flips
    apply = torch.zeros(t, dtype=torch.bool) if apply is None else apply
    kernel = compiled.refresh_kernel(activation, surrogate, m)
    kernel(ks.numpy(), Z3.numpy(), h.numpy(), q.numpy(), y.numpy(), err.numpy(),
           (err * 0.01).numpy(), scale.numpy(), flips.numpy(), apply.numpy(),
           cache.table.numpy(), cache.fresh.numpy(), cache.store.numpy(), residual.numpy(),
           rows.numpy(), weights.numpy(), offsets.numpy())
    return residual, rows, weights, offsets


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    activation=st.sampled_from(["sign", "step"]),
    surrogate=st.sampled_from(sorted(DISCRETE_SURROGATES)),
    m=st.sampled_from([1, 2, 3]),
    batchnorm=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_kernel_decides_like_the_torch_rule(activation, surrogate, m, batchnorm, seed):
    """Residuals, coefficients (as gradient bags) and G equal DecisionRule.decide followed by
    gradient_sums, bit for bit, with many pre-activations exactly on a threshold and the float
    values perturbed within the error bound (so the exact fix-ups decide)."""
    t, n, d = 3, 40, 9
    Z3, q, y, g = _grid_problem(seed, t, n, m, d)
    exact = torch.bmm(Z3, q[:, :, None])[:, :, 0]
    err = torch.full((t,), 1e-3, dtype=torch.float64)
    h = exact + (torch.rand(exact.shape, generator=g) - 0.5) * 1.5e-3  # within +-0.75e-3
    scale = (torch.randint(1, 3, (t,), generator=g).double() if batchnorm
             else torch.ones(t, dtype=torch.float64))
    rule = DecisionRule(activation, surrogate, None, m)

    def exact_fn(local, r):
        return exact_preactivations(Z3[local, r], q[local])

    dec = rule.decide(h.clone(), err, scale.float() if batchnorm else None, y, exact_fn)
    G_torch = gradient_sums(Z3.reshape(-1, d), dec.coeff, 0, n * m)

    h_kernel = h.clone()
    residual, rows, weights, offsets = _run_kernel(activation, surrogate, m, Z3, h_kernel, q, y,
                                                   err.clone(), scale)
    assert torch.equal(residual, dec.residual)
    coeff = torch.zeros(t * n * m)
    total = int(offsets[-1])
    coeff[rows[:total]] = weights[:total]
    assert torch.equal(coeff.view(t, -1), dec.coeff)
    assert torch.equal(bag_sums(Z3.reshape(-1, d), rows[:total], offsets[:-1], weights[:total]),
                       G_torch)
    # the entries decided exactly now hold their exact (integer) value, the others are kept
    fixed = dec.fixed_rows
    assert len(fixed) > 0  # the case this test is about
    assert torch.equal(h_kernel[fixed[:, 0], fixed[:, 1]], exact[fixed[:, 0], fixed[:, 1]])


@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), capacity=st.sampled_from([0, 3, 1000]))
def test_kernel_updates_h_from_the_flipped_columns(seed, capacity):
    """After flipping columns, h equals Z q_new within the grown error bound, whether the
    columns come from the cache (copied in when fresh) or straight from the data; the cached
    columns are the data's columns."""
    t, n, d = 4, 50, 12
    g = torch.Generator().manual_seed(seed)
    Z3 = torch.randn(t, n, d, generator=g)
    q_old = torch.randint(0, 2, (t, d), generator=g).float() * 2 - 1
    flips = torch.rand(t, d, generator=g) < 0.3
    q_new = torch.where(flips, -q_old, q_old)
    h = torch.bmm(Z3, q_old[:, :, None])[:, :, 0].contiguous()
    cache = ColumnCache(Z3, capacity)
    cache.assign(torch.arange(t), flips)
    err = torch.full((t,), 1e-4, dtype=torch.float64)
    _run_kernel("sign", "identity", 1, Z3, h, q_new, torch.ones(t, n), err, torch.ones(
        t, dtype=torch.float64), flips=flips, apply=torch.ones(t, dtype=torch.bool), cache=cache)
    expected = (Z3.double() * q_new.double()[:, None, :]).sum(-1)
    assert ((h.double() - expected).abs() <= err[:, None]).all()
    assert torch.allclose(err, 1e-4 + flips.sum(1).double() * 1e-6, rtol=1e-12, atol=0)
    cached = torch.nonzero(cache.table >= 0)
    assert len(cached) == min(capacity, int(flips.sum()))
    for k, j in cached.tolist():
        assert torch.equal(cache.store[cache.table[k, j]], Z3[k, :, j])
    assert not bool(cache.fresh.any())


def test_column_cache_hands_out_each_slot_once_and_takes_it_back():
    Z3 = torch.randn(3, 20, 8)
    cache = ColumnCache(Z3, 5)
    wanted = torch.zeros(3, 8, dtype=torch.bool)
    wanted[0, [1, 2, 3]] = True
    wanted[2, [0, 4, 5, 6]] = True
    cache.assign(torch.tensor([0, 2]), wanted)
    slots = cache.table[cache.table >= 0]
    assert sorted(slots.tolist()) == [0, 1, 2, 3, 4]  # five slots, then none left
    assert int(cache.fresh.sum()) == 5
    cache.fill(0)
    cache.fill(2)
    for k, j in torch.nonzero(cache.table >= 0).tolist():
        assert torch.equal(cache.store[cache.table[k, j]], Z3[k, :, j])
    cache.release(0)
    assert not bool((cache.table[0] >= 0).any())
    cache.assign(torch.tensor([1]), torch.ones(3, 8, dtype=torch.bool))
    assert int((cache.table[1] >= 0).sum()) == 3  # the three slots trial 0 gave back


@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000))
def test_plan_step_matches_its_definition(seed):
    g = torch.Generator().manual_seed(seed)
    t, d = 7, 10
    flips = torch.rand(t, d, generator=g) < 0.4
    table = torch.where(torch.rand(t, d, generator=g) < 0.5, 3, -1)
    err = torch.rand(t, generator=g).double()
    per_update = torch.rand(t, generator=g).double() * 0.1
    bound = torch.rand(t, generator=g).double() * 0.3
    moved, full = torch.zeros(t, dtype=torch.bool), torch.zeros(t, dtype=torch.bool)
    idle = torch.randint(0, 5, (t,), generator=g)
    before = idle.clone()
    count = compiled.plan_step(flips.numpy(), table.numpy(), err.numpy(), per_update.numpy(),
                            bound.numpy(), 2, 4.0, moved.numpy(), full.numpy(), idle.numpy())
    nflip = flips.sum(1)
    expected = ((flips & (table < 0)).sum(1) > 2) | (err + nflip * per_update > 4.0 * bound)
    assert torch.equal(moved, nflip > 0)
    assert torch.equal(full, expected)
    assert count == int(expected.sum())
    assert torch.equal(idle, torch.where(nflip > 0, 0, before + 1))


def test_exact_preactivations_sum_in_order_in_float64():
    g = torch.Generator().manual_seed(3)
    rows = torch.randn(50, 33, generator=g) * 10
    q = torch.randint(0, 2, (50, 33), generator=g).float() * 2 - 1
    expected = np.zeros(50)
    for i in range(50):
        for j in range(33):
            expected[i] += float(rows[i, j]) * float(q[i, j])
    assert np.array_equal(exact_preactivations(rows, q).numpy(), expected)


def _dense_by_kernel_and_by_torch(problem, cfg, monkeypatch):
    """A dense run decided by the compiled kernel, checked identical to the same run decided by
    the torch path (DecisionRule.decide and gradient_sums); returns the kernel's run."""
    from stelab.engine import dense
    from tests.test_engine_incremental import _assert_same_outputs

    assert dense.compiled_decisions(DecisionRule.from_config(cfg), problem.Z3) is not None
    by_kernel = dense.run_dense(problem, cfg)
    with monkeypatch.context() as patch:
        patch.setattr(dense, "compiled_decisions", lambda rule, Z3: None)
        torch_path = dense.run_dense(problem, cfg)
    _assert_same_outputs(by_kernel, torch_path)
    return by_kernel


def test_dense_engine_gives_the_same_runs_with_and_without_the_compiled_decisions(monkeypatch):
    """Whole dense runs, decisions by the compiled kernel vs by DecisionRule.decide and
    gradient_sums (the torch path the dense engine keeps for other configs): identical."""
    from stelab.engine.problem import build_problem
    from tests.helpers import make_config
    from tests.test_engine_incremental import CASES

    for overrides in CASES:
        cfg = make_config(run={"trials": 5, "seed": 3, "device": "cpu"}, **overrides)
        problem = build_problem(cfg, list(range(5)), torch.device("cpu"))
        _dense_by_kernel_and_by_torch(problem, cfg, monkeypatch)


def test_a_new_interval_surrogate_is_one_entry_and_runs_alike_on_every_path(monkeypatch):
    """A {0, 1}-valued surrogate added to quantizers.SURROGATES as one entry (an asymmetric
    interval, ends -1 closed and 0.5, unlike any registered one) runs on the dense engine's torch
    path, its compiled decisions and the incremental engine, with identical runs: the torch
    mask and the compiled kernel both derive from the entry's interval."""
    from stelab.engine.incremental import run_incremental
    from stelab.engine.problem import build_problem
    from stelab.quantizers import SURROGATES, Interval, Surrogate
    from tests.helpers import make_config
    from tests.test_engine_incremental import _assert_same_outputs

    window = Surrogate("window", "1[-1 <= h <= 0.5]", Interval(lo=-1.0, hi=0.5, closed=True))
    monkeypatch.setitem(SURROGATES, "window", window)
    h = torch.tensor([-1.5, -1.0, 0.0, 0.5, 0.75])
    assert window(h).tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    for overrides in ({"noise": {"kind": "flip", "level": 0.05}},
                      {"data": {"normalization": "batchnorm"}}):
        cfg = make_config(model={"d": 24, "m": 2}, train={"n": 150, "steps": 30,
                                                            "ste": "window"},
                          run={"trials": 4, "seed": 5, "device": "cpu"}, **overrides)
        problem = build_problem(cfg, list(range(4)), torch.device("cpu"))
        by_kernel = _dense_by_kernel_and_by_torch(problem, cfg, monkeypatch)
        _assert_same_outputs(by_kernel, run_incremental(problem, cfg))
        # the weights moved: the derivative was not 0 everywhere
        assert not np.array_equal(by_kernel.final_u, problem.u0.numpy())
