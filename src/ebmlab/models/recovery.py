"""A sequence of conditional EBMs for diffusion recovery likelihood (Gao et al. 2021, "Learning
Energy-Based Models by Diffusion Recovery Likelihood").

The data x_0 is diffused in L steps, variance-preserving:
    x_{t+1} = a_t x_t + σ_t ε,   a_t = sqrt(1 - σ_t²),   t = 0 .. L-1
(index t counts the step that *leaves* level t; Gao et al. write σ_{t+1}). Level t has an EBM
f(ỹ, t) over the scaled point ỹ = a_t x_t, and the recovery likelihood of x_t given the noisier x_{t+1}
is the conditional EBM
    log p(ỹ | x_{t+1}) = f(ỹ, t) - ‖ỹ - x_{t+1}‖² / (2 σ_t²) - log Z̃(x_{t+1}),
whose quadratic term ties ỹ to the noisy point: the conditional is close to unimodal, so short
Langevin chains started at x_{t+1} sample it where chains on the marginal would not mix.

f(ỹ, t) = n(ỹ, t) / σ_t² for a network n (Gao et al.'s parametrisation): the conditional's
curvature scales as 1 / σ_t², so with this scale one network output serves every level and a
Langevin step of size b² σ_t² / 2 moves by (b² / 2) ∇n whatever the level.

``energy_scale`` c generalises this to f(ỹ, t) = n(ỹ, t) / (c σ_t²). Gao et al. take c = b², the
Langevin step's own factor (their "step size square" divides the energy): the step's drift is then
(1/2) ∇n at every level and b² only sets the noise b σ_t and the tether's pull b²/2, so a small b²
(2e-4 in their code) gives nearly noise-free chains without shrinking the moves. c = 1 (the default,
and every run written before the option existed) is the plain n / σ_t².

The schedule: ᾱ_t = Π_{s<t} a_s² follows a cosine (Nichol & Dhariwal 2021), ᾱ_t = cos²(θ t / L),
with θ set so that ᾱ_L = ``FINAL_SIGNAL`` (1 %): x_L is then close to N(0, I), where generation
starts. Each step's σ_t² = 1 - ᾱ_{t+1} / ᾱ_t; for L = 6: σ = 0.24, 0.42, 0.54, 0.66, 0.79, 0.96.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ebmlab.density import DensityMethods
from ebmlab.errors import EBMError

FINAL_SIGNAL = 0.01     # ᾱ_L: the signal fraction left in x_L (x_L ≈ N(0, I) for data in [-1, 1])
MAX_LEVELS = 1000


def check_levels(levels: int) -> int:
    """``levels`` as an int in 1..MAX_LEVELS, else one EBMError line."""
    if isinstance(levels, bool) or not isinstance(levels, int) or not 1 <= levels <= MAX_LEVELS:
        raise EBMError(f"the number of noise levels (drl_levels) must be an integer in 1..{MAX_LEVELS}, got {levels!r}")
    return levels


def recovery_schedule(levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(σ [L], ᾱ [L + 1]) in float64: each step's noise and the signal fraction at each level (ᾱ_0 = 1)."""
    n = check_levels(levels)
    theta = math.acos(math.sqrt(FINAL_SIGNAL))
    abar = torch.cos(theta * torch.arange(n + 1, dtype=torch.float64) / n) ** 2
    abar[0] = 1.0
    sigma = (1.0 - abar[1:] / abar[:-1]).clamp(min=1e-12).sqrt()
    return sigma, abar


def _per_example(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """[B] -> [B, 1, ..., 1] to broadcast against ``like`` [B, *event]."""
    return v.reshape(-1, *([1] * (like.ndim - 1))).to(like.dtype)


def level_net_output(net: nn.Module, x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """n(x, level) of a level-conditioned network as [B] (a trailing output dim of 1 dropped); EBMError
    naming the shape otherwise. x [B, *event], level [B] int64. Shared by drl and noise-conditional dsm."""
    out = net(x, level)
    if out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.shape != (x.shape[0],):
        raise EBMError(f"the level network must return [B] for a batch of B={x.shape[0]}, got {tuple(out.shape)}")
    return out


class RecoveryEnergyModel(DensityMethods, nn.Module):
    """L conditional EBMs f(ỹ, t) = n(ỹ, t) / σ_t² from one level-conditioned network (module docstring).

    Args:
        net: n(x [B, *event], t [B] int64) -> [B].
        levels: L.
        energy_scale: c in f = n / (c σ_t²) (module docstring), > 0.

    ``log_density(x)`` is the data-level model, f(a_0 x, 0): an unnormalised density of the clean
    data x (a_0 x is what level 0's EBM sees), so ``evaluate`` and other density tools take a
    drl run like any other. Generation walks down the levels (``samplers.recovery``).
    """

    def __init__(self, net: nn.Module, levels: int, energy_scale: float = 1.0) -> None:
        super().__init__()
        self.net = net
        self.levels = check_levels(levels)
        if not (isinstance(energy_scale, (int, float)) and not isinstance(energy_scale, bool)
                and math.isfinite(energy_scale) and energy_scale > 0):
            raise EBMError(f"drl_energy_scale must be a positive finite number, got {energy_scale!r}")
        self.energy_scale = float(energy_scale)
        sigma, abar = recovery_schedule(levels)
        # derived from ``levels`` alone: not part of the checkpointed weights
        self.register_buffer("sigmas", sigma.float(), persistent=False)
        self.register_buffer("scales", (1.0 - sigma ** 2).sqrt().float(), persistent=False)
        self.register_buffer("signal", abar.sqrt().float(), persistent=False)     # sqrt(ᾱ_t), [L + 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_density(x)

    def level_log_density(self, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """f(ỹ, t) = n(ỹ, t) / (c σ_t²): y [B, *event] (scaled points of level t), t [B] int64 -> [B]."""
        out = level_net_output(self.net, y, t)
        return out / (self.energy_scale * self.sigmas[t].to(out.dtype) ** 2)

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """f(a_0 x, 0), shape [B]: the data level as an unnormalised density of x."""
        t = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        return self.level_log_density(self.scales[0] * x, t)

    def diffuse(self, x0: torch.Tensor, t: torch.Tensor, eps_t: torch.Tensor, eps_next: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """A training pair of level t from clean data: (ỹ = a_t x_t, x_{t+1}), both [B, *event].

        x_t = sqrt(ᾱ_t) x0 + sqrt(1 - ᾱ_t) eps_t (x0 itself at t = 0), x_{t+1} = a_t x_t + σ_t eps_next.
        """
        s = _per_example(self.signal[t], x0)
        x_t = s * x0 + (1.0 - s ** 2).clamp(min=0).sqrt() * eps_t
        y = _per_example(self.scales[t], x0) * x_t
        return y, y + _per_example(self.sigmas[t], x0) * eps_next
