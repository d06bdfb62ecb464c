"""The Ising model on {0, 1}^d (spins s = 2x - 1 ∈ {-1, +1}), with given or learned couplings.

    f(x) = ½ sᵀ J s + hᵀ s,   J symmetric with zero diagonal.

``Ising.lattice(side, coupling, field)`` builds the nearest-neighbour L x L lattice (periodic by
default), the classic test target for discrete samplers; ``Ising(J, h, learn=True)`` is a fully
visible Boltzmann machine to fit. States are vectors [B, d] or lattices [B, L, L] / [B, 1, L, L].
"""
from __future__ import annotations

import torch
from torch import nn

from ebmlab.density import DensityMethods
from ebmlab.errors import EBMError
from ebmlab.models.binary import enumerate_logsumexp


def lattice_couplings(side: int, coupling: float = 1.0, periodic: bool = True, cols: int | None = None
                      ) -> torch.Tensor:
    """J [d, d] (d = side * cols, cols defaults to side) of the nearest-neighbour rectangular lattice,
    every bond of strength ``coupling``; sites numbered row by row."""
    cols = side if cols is None else cols
    if side < 2 or cols < 2:
        raise EBMError(f"a lattice needs at least 2 rows and 2 columns, got {side} x {cols}")
    d = side * cols
    J = torch.zeros(d, d, dtype=torch.float64)
    for r in range(side):
        for col in range(cols):
            i = r * cols + col
            for rr, cc in ((r + 1, col), (r, col + 1)):
                if periodic:
                    rr, cc = rr % side, cc % cols
                elif rr >= side or cc >= cols:
                    continue
                j = rr * cols + cc
                if j != i:
                    J[i, j] = J[j, i] = coupling
    return J


class Ising(DensityMethods, nn.Module):
    """Ising / fully visible Boltzmann machine over x ∈ {0, 1}^d.

    Args:
        J: [d, d] couplings (symmetrised, diagonal ignored); h: [d] fields (default 0).
        learn: make J and h trainable parameters (J stays symmetric with zero diagonal).
        event_shape: shape of one state (default (d,)).
    """

    def __init__(self, J: torch.Tensor, h: torch.Tensor | None = None, learn: bool = False,
                 event_shape: tuple[int, ...] | None = None) -> None:
        super().__init__()
        J = torch.as_tensor(J, dtype=torch.float32)
        if J.ndim != 2 or J.shape[0] != J.shape[1]:
            raise EBMError(f"J must be a square [d, d] matrix, got shape {tuple(J.shape)}")
        d = J.shape[0]
        h = torch.zeros(d) if h is None else torch.as_tensor(h, dtype=torch.float32)
        if h.shape != (d,):
            raise EBMError(f"h must have shape [{d}], got {tuple(h.shape)}")
        self.event_shape = tuple(event_shape) if event_shape is not None else (d,)
        J = (J + J.T) / 2
        J = J - torch.diag(torch.diag(J))
        if learn:
            self.J_raw, self.h = nn.Parameter(J), nn.Parameter(h)
        else:
            self.register_buffer("J_raw", J)
            self.register_buffer("h", h)

    @classmethod
    def lattice(cls, side: int, coupling: float = 0.3, field: float = 0.0, periodic: bool = True,
                cols: int | None = None) -> "Ising":
        """The side x cols (default square) nearest-neighbour lattice with uniform coupling and field;
        states [B, side * cols]."""
        d = side * (side if cols is None else cols)
        return cls(lattice_couplings(side, coupling, periodic, cols).float(), torch.full((d,), float(field)))

    @property
    def dim(self) -> int:
        return self.J_raw.shape[0]

    @property
    def J(self) -> torch.Tensor:
        """The symmetric, zero-diagonal couplings actually used [d, d]."""
        J = (self.J_raw + self.J_raw.T) / 2
        return J - torch.diag(torch.diag(J))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_density(x)

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """f(x) = ½ sᵀJs + hᵀs with s = 2x - 1: [B]."""
        s = 2 * x.reshape(x.shape[0], -1).to(self.J_raw.dtype) - 1
        return 0.5 * ((s @ self.J) * s).sum(1) + s @ self.h

    @torch.no_grad()
    def log_z(self, dtype: torch.dtype = torch.float64) -> float:
        """Exact log Z by enumerating all 2^d states (EBMError above 2^24)."""
        J, h = self.J.to(dtype), self.h.to(dtype)

        def fn(x: torch.Tensor) -> torch.Tensor:
            s = 2 * x - 1
            return 0.5 * ((s @ J) * s).sum(1) + s @ h
        return float(enumerate_logsumexp(fn, self.dim, device=J.device, dtype=dtype))
