"""Energy-based models: p(x) = exp(f(x)) / Z, where f is ``log_density`` and the energy is -f.

Sign convention (the lecture's, used everywhere in ebmlab): ``log_density(x) = f(x)`` is the
log of the *unnormalised* density; ``energy(x) = -f(x)``. Higher f means more likely.
Peers (ebmkit, torchebm) use p ∝ exp(-E); pass ``-E`` when you bring one of their networks.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from ebmlab.box import inside_bounds, register_bounds
from ebmlab.density import DensityMethods
from ebmlab.errors import EBMError

# How the network output n(x) becomes a non-negative g(x) = exp(f(x)); we store log g.
# exp is the default because log-probabilities vary over many orders of magnitude and
# exp lets a smooth n cover them (the lecture's "why exponential"); the others are the
# lecture's alternatives, kept for comparison. Each maps n -> log g(n).
PARAMETRISATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "exp": lambda n: n,
    "square": lambda n: 2.0 * torch.log(torch.abs(n) + 1e-30),   # g = n^2
    "abs": lambda n: torch.log(torch.abs(n) + 1e-30),            # g = |n|
    "softplus": lambda n: torch.log(nn.functional.softplus(n) + 1e-30),  # g = log(1 + e^n)
}


class EnergyModel(DensityMethods, nn.Module):
    """Wraps any network ``net: [B, *event] -> [B]`` (or ``[B, 1]``) as an EBM.

    Args:
        net: the network n(x).
        parametrisation: how n becomes the unnormalised density g (see ``PARAMETRISATIONS``);
            ``"exp"`` means f = n.
        bounds: optional box ``[(lo, hi), ...]`` per event dimension. When given, the model's
            support is that box: f = -inf outside it, samplers stay inside it, and quadrature
            over it gives the exact Z. Used for low-dimensional data.
    """

    def __init__(self, net: nn.Module, parametrisation: str = "exp",
                 bounds: Sequence[Sequence[float]] | None = None) -> None:
        super().__init__()
        if parametrisation not in PARAMETRISATIONS:
            raise EBMError(f"unknown parametrisation {parametrisation!r}; choose one of {sorted(PARAMETRISATIONS)}")
        self.net = net
        self.parametrisation = parametrisation
        register_bounds(self, bounds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_density(x)

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """f(x), shape [B]: the log of the unnormalised density."""
        out = self.net(x)
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.ndim != 1 or out.shape[0] != x.shape[0]:
            raise EBMError(f"the network must return shape [B] or [B, 1] for a batch of B={x.shape[0]}, "
                           f"got {tuple(out.shape)}")
        f = PARAMETRISATIONS[self.parametrisation](out)
        if self.bounds is not None:
            f = torch.where(self.inside(x), f, float("-inf"))     # a scalar: no [B] tensor of -inf to fill
        return f

    def inside(self, x: torch.Tensor) -> torch.Tensor:
        """Bool [B]: whether each point lies in the model's support box (all True without bounds)."""
        return inside_bounds(x, self.bounds)


