"""The restricted Boltzmann machine with Bernoulli visible and hidden units (Smolensky 1986; Hinton 2002).

Joint: p(v, h) ∝ exp(bᵀv + cᵀh + hᵀWv), v ∈ {0,1}^D, h ∈ {0,1}^H. Summing h out gives the
free-energy form used as ``log_density`` (the latent-variable EBM: the hidden units are features):
    f(v) = bᵀv + Σ_j softplus(c_j + W_j v).
Both conditionals factorise, which gives the exact block-Gibbs sampler
(``ebmlab.samplers.block_gibbs``): p(h_j = 1 | v) = sigmoid(c_j + W_j v),
p(v_i = 1 | h) = sigmoid(b_i + (Wᵀh)_i). By symmetry
    log Z = log Σ_h exp(cᵀh + Σ_i softplus(b_i + (Wᵀh)_i)),
so the exact log Z enumerates whichever side is smaller.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ebmlab.density import DensityMethods
from ebmlab.errors import EBMError
from ebmlab.models.binary import enumerate_logsumexp


class RBM(DensityMethods, nn.Module):
    """Bernoulli–Bernoulli RBM as an EBM over v: [B, *event] with prod(event) = n_visible.

    Args:
        n_visible: D; n_hidden: H.
        event_shape: the shape of one sample (default (D,)); e.g. (1, 8, 8) for binary digits.
        init_std: weights start as N(0, init_std²) (Hinton's practical guide: 0.01); biases at 0.
        generator: optional torch.Generator for the initial weights.
    """

    def __init__(self, n_visible: int, n_hidden: int, event_shape: Sequence[int] | None = None,
                 init_std: float = 0.01, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if n_visible < 1 or n_hidden < 1:
            raise EBMError(f"an RBM needs n_visible >= 1 and n_hidden >= 1, got {n_visible} and {n_hidden}")
        self.event_shape = tuple(event_shape) if event_shape is not None else (n_visible,)
        if int(torch.tensor(self.event_shape).prod()) != n_visible:
            raise EBMError(f"event_shape {self.event_shape} does not hold n_visible = {n_visible} units")
        self.W = nn.Parameter(init_std * torch.randn(n_hidden, n_visible, generator=generator))
        self.b = nn.Parameter(torch.zeros(n_visible))
        self.c = nn.Parameter(torch.zeros(n_hidden))

    @classmethod
    def random(cls, n_visible: int, n_hidden: int, generator: torch.Generator | None = None,
               weight_std: float = 1.0, bias_std: float = 0.5) -> "RBM":
        """An RBM with N(0, weight_std^2) weights and N(0, bias_std^2) biases: a target with strong,
        known structure (log Z exact by enumeration) for sampler tests and density benchmarks."""
        m = cls(n_visible, n_hidden, generator=generator)
        with torch.no_grad():
            m.W.normal_(0.0, weight_std, generator=generator)
            m.b.normal_(0.0, bias_std, generator=generator)
            m.c.normal_(0.0, bias_std, generator=generator)
        return m

    @property
    def n_visible(self) -> int:
        return self.W.shape[1]

    @property
    def n_hidden(self) -> int:
        return self.W.shape[0]

    def _flat(self, v: torch.Tensor) -> torch.Tensor:
        return v.reshape(v.shape[0], -1).to(self.W.dtype)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.log_density(v)

    def log_density(self, v: torch.Tensor) -> torch.Tensor:
        """Free-energy f(v) = bᵀv + Σ_j softplus(c_j + W_j v): [B] (h summed out exactly)."""
        v = self._flat(v)
        return v @ self.b + F.softplus(F.linear(v, self.W, self.c)).sum(1)

    def hidden(self, v: torch.Tensor) -> torch.Tensor:
        """p(h = 1 | v) = sigmoid(c + W v): [B, H], the features the RBM learned."""
        return torch.sigmoid(F.linear(self._flat(v), self.W, self.c))

    def visible(self, h: torch.Tensor) -> torch.Tensor:
        """p(v = 1 | h) = sigmoid(b + Wᵀh): [B, *event]."""
        return torch.sigmoid(h.to(self.W.dtype) @ self.W + self.b).reshape(h.shape[0], *self.event_shape)

    def sample_hidden(self, v: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """h ~ p(h | v): [B, H] float 0/1."""
        p = self.hidden(v)
        return (torch.rand(p.shape, generator=generator, dtype=p.dtype, device=p.device) < p).to(p.dtype)

    def sample_visible(self, h: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """v ~ p(v | h): [B, *event] float 0/1."""
        p = self.visible(h)
        return (torch.rand(p.shape, generator=generator, dtype=p.dtype, device=p.device) < p).to(p.dtype)

    def hidden_log_density(self, h: torch.Tensor) -> torch.Tensor:
        """The free energy of h (v summed out): cᵀh + Σ_i softplus(b_i + (Wᵀh)_i), [B]."""
        h = h.to(self.W.dtype)
        return h @ self.c + F.softplus(h @ self.W + self.b).sum(1)

    @torch.no_grad()
    def log_z(self, dtype: torch.dtype = torch.float64) -> float:
        """Exact log Z, enumerating the smaller of the visible (2^D) and hidden (2^H) sides.

        EBMError (saying how large, offering AIS) when the smaller side has more than 2^24 states.
        """
        W, b, c = self.W.to(dtype), self.b.to(dtype), self.c.to(dtype)
        if self.n_hidden <= self.n_visible:
            fn = lambda h: h @ c + F.softplus(h @ W + b).sum(1)   # noqa: E731
            return float(enumerate_logsumexp(fn, self.n_hidden, device=W.device, dtype=dtype))
        fn = lambda v: v @ b + F.softplus(F.linear(v, W, c)).sum(1)   # noqa: E731
        return float(enumerate_logsumexp(fn, self.n_visible, device=W.device, dtype=dtype))
