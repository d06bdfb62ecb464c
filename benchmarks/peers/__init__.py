"""Peer runners for the side-by-side 2-D density benchmark (``benchmarks/density2d.py``).

Every EBM runner trains the *same* network (``ebmlab.nets.mlp.MLP(2, 128, 3)``: 3x128 SiLU,
identical initial weights for a given seed) with the *same* recipe (``Recipe``) through
its own library's public API, and returns a log density ``f(x) -> [B]`` (ebmlab's sign:
f = log unnormalised density = -energy). The benchmark then normalises every f the same
way, by quadrature over one shared box.

Peers' sign and noise conventions (read from their source, ebmkit 0.16.0, torchebm 0.8.9):

* ebmkit (``import ebm``): p ∝ exp(-E); ``LangevinDynamics`` does
  ``x' = x - eps * dE/dx + noise_scale * z`` — noise_scale *is* the noise's standard
  deviation (``None`` means sqrt(2 eps)).
* torchebm: p ∝ exp(-E); ``LangevinDynamics`` (Euler–Maruyama integrator) does
  ``x' = x - eps * dE/dx + noise_scale * sqrt(2 eps) * z`` — noise_scale is a
  *multiplier* of sqrt(2 eps); 1.0 is exact Langevin.
* the hand-written loop (and ebmlab): ``x' = x + eps * df/dx + sqrt(2 eps) * z``.

So for exact unadjusted Langevin with step eps: ebmkit ``noise_scale=sqrt(2*eps)``,
torchebm ``noise_scale=1.0``, and every peer's energy is ``-f``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, asdict

import torch
from torch import nn

from ebmlab.nets.mlp import MLP


@dataclass(frozen=True)
class Recipe:
    """The one shared CPU-sized recipe: persistent CD with unadjusted Langevin negatives."""
    batch_size: int = 256
    lr: float = 1e-3                 # Adam, default betas
    langevin_steps: int = 20         # unadjusted Langevin steps per optimiser step
    step_size: float = 0.005         # eps in x' = x + eps grad f + sqrt(2 eps) z (exact noise)
    buffer_size: int = 10_000        # persistent chains
    reinit_prob: float = 0.05        # per-chain restart probability (uniform over the box)
    energy_reg: float = 0.001        # alpha * (mean f(x+)^2 + mean f(x-)^2), same formula in both peers

    @property
    def noise_std(self) -> float:
        return math.sqrt(2.0 * self.step_size)

    def as_dict(self) -> dict:
        return asdict(self)


def make_net(seed: int, features: str = "linear", dim: int = 2) -> nn.Module:
    """The shared network n(x) = f(x): 3x128 SiLU MLP on ``dim`` inputs (first layer ``features``, nets/mlp.py
    FEATURES); same seed -> identical initial weights."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return MLP(dim, 128, 3, features=features)


def uniform_in_box(box: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n points uniform over box [[lo_x, hi_x], [lo_y, hi_y]] -> [n, 2] float32."""
    lo, hi = box[:, 0].float(), box[:, 1].float()
    return lo + (hi - lo) * torch.rand(n, 2, generator=generator)


class NegEnergy(nn.Module):
    """Peers want an energy E = -f; this wraps a log-density net f as E(x) = -f(x) -> [B]."""

    def __init__(self, f: nn.Module) -> None:
        super().__init__()
        self.f = f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -self.f(x)
