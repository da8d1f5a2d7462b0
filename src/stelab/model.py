"""The two-layer binary network of docs/model.md and its closed-form coarse (STE) gradient.

Shapes are batched over trials: inputs Z (trials, n, m, d), binary weights q (trials, d).

    h_ij   = Z_ij . q                    (pre-activation of hidden unit j on sample i)
             [/ s(q), s(q) = sqrt(q^T Sigma q), with batch-norm statistics]
    f_i    = v . sigma(h_i),  v = ones(m) / m,   sigma in {sign, step}
    L(q)   = (1 / 2n) sum_i (f_i - y_i)^2
    g(u)   = (1/n) sum_i (f_i - y_i) Z_i^T (v * sigma~'(h_i)) [/ s(q)]  *  Q~'(u)

where sigma~' is the activation surrogate and Q~' the weight STE (identity 1 or clipped
1[|u| <= 1]) of :mod:`stelab.quantizers`. The same ``preactivations`` and ``outputs`` produce
the teacher's labels, so the student at q = w* reproduces them bit for bit (w* is an exact
fixed point without label noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from stelab.quantizers import (
    Surrogate,
    get_activation,
    get_surrogate,
    get_weight_ste,
)
from stelab.surrogates import step_size_eta  # noqa: F401 - re-exported (its old home)

Tensor = torch.Tensor


@dataclass
class BinaryTwoLayer:
    """The network f(Z; q) = v . sigma(Z q) with fixed v = ones/m and its coarse gradient.

    ``preact_cov`` (trials, d, d), when given, turns on batch-norm statistics: pre-activations
    are divided by sqrt(q^T Sigma q) of the training sample (see :mod:`stelab.normalize`).
    """

    m: int
    activation: str = "sign"
    ste: str = "identity"
    ste_params: dict[str, float] | None = None
    weight_ste: str = "identity"
    preact_cov: Tensor | None = None

    def __post_init__(self) -> None:
        self._sigma = get_activation(self.activation)
        self._surrogate: Surrogate = get_surrogate(self.ste)
        self._weight_derivative = get_weight_ste(self.weight_ste)

    def preact_scale(self, q: Tensor) -> Tensor | None:
        """s(q) = sqrt(q^T Sigma q) per trial, shape (trials,), or None without batch norm."""
        if self.preact_cov is None:
            return None
        q64 = q.to(self.preact_cov.dtype)
        var = torch.einsum("td,tde,te->t", q64, self.preact_cov, q64)
        return var.clamp_min(1e-30).sqrt().to(q.dtype)

    def preactivations(self, Z: Tensor, q: Tensor) -> Tensor:
        """h = Z q (divided by s(q) with batch norm), shape (trials, n, m)."""
        t, n, m, d = Z.shape
        h = torch.bmm(Z.reshape(t, n * m, d), q.unsqueeze(-1)).reshape(t, n, m)
        scale = self.preact_scale(q)
        return h if scale is None else h / scale[:, None, None]

    def activations(self, h: Tensor) -> Tensor:
        """sigma(h), same shape as h."""
        return self._sigma(h)

    def outputs(self, h: Tensor) -> Tensor:
        """f = v . sigma(h) = mean_j sigma(h_j), shape (trials, n)."""
        return self._sigma(h).mean(dim=-1)

    def coarse_gradient(
        self, Z: Tensor, h: Tensor, residual: Tensor, u: Tensor, q: Tensor
    ) -> Tensor:
        """g(u) of the module docstring for the batch in Z, with residual = f - y (trials, n)."""
        t, n, m, d = Z.shape
        coeff = residual.unsqueeze(-1) * self._surrogate(h, **(self.ste_params or {})) / m
        scale = self.preact_scale(q)
        if scale is not None:
            coeff = coeff / scale[:, None, None]
        g = torch.bmm(coeff.reshape(t, 1, n * m), Z.reshape(t, n * m, d)).reshape(t, d)
        return g * (self._weight_derivative(u) / n)

    def loss(self, Z: Tensor, q: Tensor, y: Tensor) -> Tensor:
        """L(q) = (1/2n) sum_i (f_i - y_i)^2 per trial, shape (trials,)."""
        residual = self.outputs(self.preactivations(Z, q)) - y
        return 0.5 * residual.square().mean(dim=-1)
