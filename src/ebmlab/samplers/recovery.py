"""Langevin on the recovery conditionals of a drl model (Gao et al. 2021): training negatives and generation.

Level t's conditional (``models.recovery``) is g(ỹ) = f(ỹ, t) - ‖ỹ - x_{t+1}‖² / (2 σ_t²). Its
Langevin step, with Gao et al.'s step size tied to the level, ε_t = b² σ_t² (``step_scale`` = b²):
    ỹ <- ỹ + (ε_t / 2) ∇g(ỹ) + sqrt(ε_t) z
       = ỹ + (b² / 2) (σ_t² ∇f(ỹ, t) + x_{t+1} - ỹ) + b σ_t z,
started at the noisy point x_{t+1} itself. The tether pulls by a fraction b²/2 a step and the
noise is b σ_t, so the same b suits every level: after K steps of b² ≈ 1/K the chain has spread
about σ_t, the conditional's own width.

- ``recover``: K steps for a batch whose examples sit at different levels (a training step).
- ``RecoveryLangevin``: generation from noise, the registry's ``recovery`` sampler: x_L ~ N(0, I),
  then for t = L-1 .. 0, K steps on level t's conditional anchored at x_{t+1}, and x_t = ỹ / a_t.
  Its ``n_steps`` is L·K, the last of them without noise (its b σ_0 would stay in the output as pixel
  noise); steps past the last level keep sampling level 0's conditional.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import torch

from ebmlab.box import Box, BoundsLike
from ebmlab.errors import EBMError
from ebmlab.samplers.base import Sampler, StepInfo, chain_norm, check_positive, randn_like

LevelDensity = Callable[[torch.Tensor], torch.Tensor]     # f(ỹ, t) with each example's level fixed: [B, *event] -> [B]


def _col(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape(-1, *([1] * (like.ndim - 1))).to(like.dtype)


def conditional_grad(f: LevelDensity, y: torch.Tensor, anchor: torch.Tensor, sigma: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(g(ỹ) [B], ∇g(ỹ) [B, *event]) of the recovery conditional; both detached, no graph kept.

    sigma: [B] each example's σ_t; anchor: [B, *event] its x_{t+1}.
    """
    y = y.detach().requires_grad_(True)
    with torch.enable_grad():
        fy = f(y)
        (grad,) = torch.autograd.grad(fy.sum(), y)
    s2 = _col(sigma, y) ** 2
    diff = y.detach() - anchor
    g = fy.detach() - 0.5 * (diff.pow(2) / s2).reshape(y.shape[0], -1).sum(1)
    return g, grad - diff / s2


def langevin_move(y: torch.Tensor, grad_g: torch.Tensor, sigma: torch.Tensor, step_scale: float,
                  generator: torch.Generator | None, noise: bool = True) -> torch.Tensor:
    """One step ỹ + (ε/2) ∇g + sqrt(ε) z with ε = step_scale σ² per example (module docstring);
    ``noise=False``: the drift alone."""
    s = _col(sigma, y)
    eps = step_scale * s ** 2
    out = y + 0.5 * eps * grad_g
    return out + eps.sqrt() * randn_like(y, generator) if noise else out


def recover(f: LevelDensity, anchor: torch.Tensor, sigma: torch.Tensor, n_steps: int, step_scale: float,
            generator: torch.Generator | None) -> torch.Tensor:
    """``n_steps`` Langevin steps on each example's recovery conditional from ỹ = anchor; detached [B, *event].

    The caller freezes the network's parameters (``samplers.base.frozen_parameters``); no host sync.
    """
    y = anchor.detach()
    for _ in range(n_steps):
        _, grad = conditional_grad(f, y, anchor, sigma)
        y = langevin_move(y, grad, sigma, step_scale, generator)
    return y.detach()


class RecoveryState(NamedTuple):
    """x [B, *event]: the chain in the data scale of its level (ỹ / a_t); y: ỹ; anchor: x_{t+1};
    log_density [B]: g(ỹ); score: ∇g(ỹ); t: steps taken (host int: the level is L-1 - t // K)."""
    x: torch.Tensor
    y: torch.Tensor
    anchor: torch.Tensor
    log_density: torch.Tensor
    score: torch.Tensor
    t: int = 0


class RecoveryLangevin(Sampler):
    """Generation by walking down a drl model's levels (module docstring). Not calibrated.

    Args:
        model: a ``models.recovery.RecoveryEnergyModel`` (anything with ``level_log_density``,
            ``levels``, ``sigmas``, ``scales``).
        step_size: b², the step as a fraction of each level's σ_t².
        steps_per_level: K.
        bounds: the box the final samples are clamped into ([-1, 1] for images), or None.
    """

    is_calibrated = False
    needs_score = True

    def __init__(self, model: Any, step_size: float = 0.2, steps_per_level: int = 10,
                 bounds: BoundsLike | Box | None = None) -> None:
        if not callable(getattr(model, "level_log_density", None)):
            raise EBMError("sampler 'recovery' walks down the noise levels of a model trained with --objective drl; "
                           f"this model ({type(model).__name__}) has none: choose another sampler (--sampler in "
                           "train, --method in sample)")
        super().__init__(model)
        self.model = model
        self.step_size = check_positive("step_size", step_size)
        if isinstance(steps_per_level, bool) or not isinstance(steps_per_level, int) or steps_per_level < 1:
            raise EBMError(f"steps_per_level must be a positive integer, got {steps_per_level!r}")
        self.steps_per_level = steps_per_level
        self._box: Box | None = None if bounds is None else (bounds if isinstance(bounds, Box) else Box(bounds))

    @property
    def total_steps(self) -> int:
        """L·K: the steps from noise to the data level."""
        return self.model.levels * self.steps_per_level

    def _level(self, t: int) -> int:
        return max(self.model.levels - 1 - t // self.steps_per_level, 0)

    def _at(self, y: torch.Tensor, anchor: torch.Tensor, level: int, t: int) -> RecoveryState:
        lev = torch.full((y.shape[0],), level, dtype=torch.long, device=y.device)
        sigma = self.model.sigmas[lev]
        g, grad = conditional_grad(lambda z: self.model.level_log_density(z, lev), y, anchor, sigma)
        return RecoveryState(y / self.model.scales[level], y, anchor, g, grad, t)

    def init(self, x: torch.Tensor) -> RecoveryState:
        """x: [B, *event] the chains' start x_L (N(0, I) for generation from noise)."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 2:
            raise EBMError(f"x0 must be a float tensor [B, *event], got {getattr(x, 'shape', type(x).__name__)}")
        x = x.detach()
        return self._at(x, x, self._level(0), 0)

    def _move(self, state: RecoveryState, generator: torch.Generator | None
              ) -> tuple[torch.Tensor, torch.Tensor, int, bool]:
        """(ỹ or, when the step ended a level, x of that level; the anchor; the new step count; whether it did)."""
        level = self._level(state.t)
        sigma = self.model.sigmas[level].expand(state.y.shape[0])
        t = state.t + 1
        # the walk's very last step is the drift alone: its noise b σ_0 would stay in the output
        # as pixel noise (the "denoising" last step of score-based samplers, Jolicoeur-Martineau et al. 2021)
        y = langevin_move(state.y, state.score, sigma, self.step_size, generator, noise=t != self.total_steps)
        nxt = self._level(t)
        if nxt != level:            # level done: x_level = ỹ / a_level is the next level's anchor and start
            x = y / self.model.scales[level]
            return x, x, t, True
        return y, state.anchor, t, False

    @torch.no_grad()
    def step(self, state: RecoveryState, generator: torch.Generator | None = None
             ) -> tuple[RecoveryState, StepInfo]:
        y, anchor, t, _ = self._move(state, generator)
        return self._at(y, anchor, self._level(t), t), self._info(state)

    @torch.no_grad()
    def final_step(self, state: RecoveryState, generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, StepInfo]:
        y, _, t, ended_level = self._move(state, generator)
        done = t >= self.total_steps
        # the output is x = ỹ / a_t of the level it is at (already x when the step ended a level);
        # after the whole walk that is x_0
        x = y if ended_level else y / self.model.scales[self._level(t)]
        if done and self._box is not None:
            x = self._box.clamp(x)
        return x, self._info(state)

    @staticmethod
    def _info(state: RecoveryState) -> StepInfo:
        ones = torch.ones_like(state.log_density)
        return StepInfo(ones, ones.bool(), chain_norm(state.score))

