"""The Potts model on {0, ..., K-1}^d (Potts 1952), with given or learned couplings; on one-hot states.

With x the flat one-hot vector [d*K] (``models.categorical``),
    f(x) = ½ xᵀ J x + hᵀ x,
J [d*K, d*K] symmetric with zero diagonal blocks (a site does not couple to itself). The classic
lattice model ``Potts.lattice(rows, cols, K, coupling)`` has J[(i,a), (j,b)] = coupling · [a = b] for
neighbours i ~ j, i.e. f = coupling · #(agreeing neighbour pairs) + fields. K = 2 is the Ising model
(with coupling J_potts = 2 J_ising up to a constant). As a model (``learn=True``) it is the fully
visible pairwise EBM for categorical data.
"""
from __future__ import annotations

import torch
from torch import nn

from ebmlab.density import DensityMethods
from ebmlab.errors import EBMError
from ebmlab.models.categorical import check_categories, enumerate_categorical_logsumexp
from ebmlab.models.ising import lattice_couplings


class Potts(DensityMethods, nn.Module):
    """Pairwise categorical EBM over x ∈ {0..K-1}^d, states one-hot [B, d*K] (or [B, d, K]).

    Args:
        J: [d*K, d*K] couplings (symmetrised; the d diagonal K x K blocks are ignored).
        h: [d*K] fields (default 0); categories: K.
        learn: make J and h trainable parameters.
    """

    def __init__(self, J: torch.Tensor, categories: int, h: torch.Tensor | None = None, learn: bool = False) -> None:
        super().__init__()
        k = check_categories(categories)
        J = torch.as_tensor(J, dtype=torch.float32)
        if J.ndim != 2 or J.shape[0] != J.shape[1] or J.shape[0] % k:
            raise EBMError(f"J must be a square [d*K, d*K] matrix with K = {k}, got shape {tuple(J.shape)}")
        n = J.shape[0]
        h = torch.zeros(n) if h is None else torch.as_tensor(h, dtype=torch.float32)
        if h.shape != (n,):
            raise EBMError(f"h must have shape [{n}], got {tuple(h.shape)}")
        self.categories = k
        self.event_shape = (n,)
        self.register_buffer("block_mask", 1 - torch.block_diag(*[torch.ones(k, k)] * (n // k)))
        if learn:
            self.J_raw, self.h = nn.Parameter(J), nn.Parameter(h)
        else:
            self.register_buffer("J_raw", J)
            self.register_buffer("h", h)

    @classmethod
    def lattice(cls, rows: int, cols: int, categories: int, coupling: float = 0.5, field: torch.Tensor | None = None,
                periodic: bool = True) -> "Potts":
        """The rows x cols nearest-neighbour lattice: f = coupling · #(equal neighbour pairs) + Σ_i field[x_i]
        (``field`` [K], the same at every site; default 0)."""
        k = check_categories(categories)
        adj = lattice_couplings(rows, 1.0, periodic, cols).float()           # [d, d] 0/1
        J = coupling * torch.kron(adj, torch.eye(k))
        h = None if field is None else torch.as_tensor(field, dtype=torch.float32).repeat(rows * cols)
        return cls(J, k, h)

    @property
    def sites(self) -> int:
        return self.J_raw.shape[0] // self.categories

    @property
    def J(self) -> torch.Tensor:
        """The symmetric couplings with zero diagonal blocks actually used, [d*K, d*K]."""
        return (self.J_raw + self.J_raw.T) / 2 * self.block_mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_density(x)

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """f(x) = ½ xᵀJx + hᵀx for one-hot x [B, d*K]: [B]."""
        x = x.reshape(x.shape[0], -1).to(self.J_raw.dtype)
        return 0.5 * ((x @ self.J) * x).sum(1) + x @ self.h

    @torch.no_grad()
    def log_z(self, dtype: torch.dtype = torch.float64) -> float:
        """Exact log Z by enumerating all K^d states (EBMError above 2^24)."""
        J, h = self.J.to(dtype), self.h.to(dtype)

        def fn(x: torch.Tensor) -> torch.Tensor:
            return 0.5 * ((x @ J) * x).sum(1) + x @ h
        return float(enumerate_categorical_logsumexp(fn, self.sites, self.categories, device=J.device, dtype=dtype))
