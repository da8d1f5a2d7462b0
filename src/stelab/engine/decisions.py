"""Exact decisions on the pre-activations, and the residuals and coefficients built from them.

For a trial with binary weights q, pre-activations h = Z q (unscaled) and, with batch-norm
statistics, scale s = sqrt(q^T Sigma q):

    positive  P_r = [h_r >= 0] (sign) or [h_r > 0] (step),  act_r = 2 P_r - 1 or P_r
    residual  res_i = mean_j act_ij - y_i
    coefficient c_ij = res_i * sigma~'(h_ij / s) / m

For the surrogates with values in {0, 1} (``identity``, ``relu``, ``clipped_relu``,
``hardtanh``: those with an :class:`~stelab.quantizers.Interval` in
:data:`stelab.quantizers.SURROGATES`) sigma~'(h / s) is a set of comparisons of h with the ends
theta * s of the interval (relu: h > 0; clipped_relu: 0 < h < s; hardtanh: -s <= h <= s;
s = 1 without batch norm). Every comparison is decided from the exact h (see
:mod:`stelab.engine.passes`): entries closer to a
threshold than the float error bound of h are recomputed in float64 first. The coefficients of
those surrogates are therefore the same, bit for bit, in every engine. Continuous surrogates
(``approx_sign``, ``swish``) are evaluated on the float value of h / s: their coefficients carry
float rounding of the pre-activation pass (the dense engine only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from stelab.config import Config
from stelab.surrogates import get_surrogate

Tensor = torch.Tensor

ExactFn = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class Decisions:
    """The outcome of one forward pass over some trials (all shaped (k, n*m) or (k, n))."""

    residual: Tensor  # (k, n) f - y
    coeff: Tensor  # (k, n*m) res_i * sigma~'_ij / m
    fixed_rows: Tensor  # (r, 2) [local trial, row] of the entries recomputed exactly
    fixed_values: Tensor  # (r,) their exact pre-activations, float64


class DecisionRule:
    """Decisions, residuals and coefficients of one configuration (activation, surrogate, m)."""

    def __init__(self, activation: str, ste: str, ste_params: dict[str, float] | None, m: int):
        self.activation = activation
        self.ste = ste
        self.m = m
        self._surrogate = get_surrogate(ste)
        self.discrete = self._surrogate.discrete
        self.params = dict(ste_params or {})
        self._interval = self._surrogate.interval_for(self.params)
        self.thresholds = () if self._interval is None else self._interval.ends
        self._params = self.params

    @classmethod
    def from_config(cls, cfg: Config) -> DecisionRule:
        return cls(cfg.model.activation, cfg.train.ste, cfg.train.ste_params, cfg.model.m)

    def near_threshold(self, h: Tensor, bound: Tensor, scale: Tensor | None) -> Tensor:
        """Entries of h (k, R) within ``bound`` (k,) of 0 or of a surrogate threshold theta*s."""
        near = h.abs() <= _as_bound(bound, h)
        nonzero = [theta for theta in self.thresholds if theta != 0.0]
        if nonzero:
            h64 = h.to(torch.float64)
            s = (
                torch.ones(h.shape[0], 1, dtype=torch.float64, device=h.device)
                if scale is None
                else scale.to(torch.float64)[:, None]
            )
            for theta in nonzero:
                near |= (h64 - theta * s).abs() <= bound[:, None]
        return near

    def decide(
        self, h: Tensor, bound: Tensor, scale: Tensor | None, y: Tensor, exact: ExactFn
    ) -> Decisions:
        """Residuals and coefficients for pre-activations ``h`` (k, n*m) with error ``bound``.

        ``exact(local_trials, rows)`` returns the float64 pre-activations of those entries; it is
        called for the entries near a threshold only. ``y`` (k, n) are the labels, ``scale``
        (k,) the batch-norm scales s(q) or None.
        """
        k, R = h.shape
        m = self.m
        fixed, values = _fix(h, self.near_threshold(h, bound, scale), exact)
        act = self._activations(h, fixed, values, y.dtype)
        residual = act.sub_(y) if m == 1 else act.view(k, -1, m).mean(dim=-1).sub_(y)
        derivative = self._derivative(h, scale, fixed, values, y.dtype)
        if derivative is None and m == 1:
            coeff = residual  # r * 1 / 1 = r exactly
        elif derivative is None:
            coeff = (residual.unsqueeze(-1) / m).expand(k, R // m, m).reshape(k, R)
        else:
            coeff = (residual.unsqueeze(-1) * derivative.view(k, -1, m) / m).reshape(k, R)
        return Decisions(residual=residual, coeff=coeff, fixed_rows=fixed, fixed_values=values)

    def unit_activations(
        self, h: Tensor, bound: Tensor, exact: ExactFn, dtype: torch.dtype
    ) -> Tensor:
        """sigma(h) (k, R) with every sign decided exactly (the teacher's labels use it)."""
        fixed, values = _fix(h, h.abs() <= _as_bound(bound, h), exact)
        return self._activations(h, fixed, values, dtype)

    def _activations(
        self, h: Tensor, fixed: Tensor, values: Tensor, dtype: torch.dtype
    ) -> Tensor:
        positive = (h >= 0) if self.activation == "sign" else (h > 0)
        if fixed.numel():
            exact_pos = (values >= 0) if self.activation == "sign" else (values > 0)
            positive[fixed[:, 0], fixed[:, 1]] = exact_pos
        act = positive.to(dtype)
        if self.activation == "sign":  # 2 P - 1 (exact; cheaper than torch.where on the CPU)
            act.mul_(2).sub_(1)
        return act

    def _derivative(
        self, h: Tensor, scale: Tensor | None, fixed: Tensor, values: Tensor, dtype: torch.dtype
    ) -> Tensor | None:
        """sigma~'(h / s) as (k, R) in the data dtype, or None for the identity (an interval
        without ends: all ones)."""
        if self.discrete and not self.thresholds:
            return None
        if not self.discrete:
            hs = h if scale is None else h / scale.to(h.dtype)[:, None]
            if fixed.numel():
                hs = hs.clone()
                exact_scaled = values if scale is None else values / scale.double()[fixed[:, 0]]
                hs[fixed[:, 0], fixed[:, 1]] = exact_scaled.to(hs.dtype)
            return self._surrogate(hs, **self._params).to(dtype)
        s = None if scale is None else scale.to(torch.float64)[:, None]
        mask = self._mask(h, s)
        if fixed.numel():
            s_fixed = None if s is None else s[fixed[:, 0], 0]
            mask[fixed[:, 0], fixed[:, 1]] = self._mask(values, s_fixed)
        return mask.to(dtype)

    def _mask(self, h: Tensor, s: Tensor | None) -> Tensor:
        """1[h in the surrogate's interval scaled by s]: exact comparisons (with the ends
        themselves when s is None, which float32 holds exactly; else in float64)."""
        interval = self._interval
        assert interval is not None  # guarded by self.discrete
        return interval.contains(h, 1.0) if s is None else interval.contains(h.double(), s)


def _fix(h: Tensor, near: Tensor, exact: ExactFn) -> tuple[Tensor, Tensor]:
    """The (local trial, row) pairs flagged by ``near`` and their exact pre-activations."""
    fixed = torch.nonzero(near)
    if not fixed.numel():
        return fixed, torch.zeros(0, dtype=torch.float64, device=h.device)
    return fixed, exact(fixed[:, 0], fixed[:, 1])


def _as_bound(bound: Tensor, h: Tensor) -> Tensor:
    """The per-trial bound (k,) as a (k, 1) column comparable with h."""
    return (bound if h.dtype == torch.float64 else _round_up(bound)).to(h.device)[:, None]


def _round_up(bound: Tensor) -> Tensor:
    """The float64 bound as float32, at least as large: inflating by 2^-20 before rounding to
    nearest exceeds the float32 half-ulp (2^-24 relative)."""
    return (bound * (1.0 + 2.0**-20)).to(torch.float32)
