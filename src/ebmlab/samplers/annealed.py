"""Annealed Langevin dynamics over a list of noise levels (Song & Ermon 2019, Algorithm 1).

The sampler of a model trained by denoising score matching at several noise levels σ_1 > ... > σ_L
(``training.score_matching.dsm_loss``): ``steps_per_level`` unadjusted Langevin steps at each level,
largest first, with the level's step α_i = step_size · σ_i² / σ_L² and noise sqrt(2 α_i). Large early
steps move chains between modes, where a single small step size would stay where it started; the
last level's steps are plain Langevin at ``step_size``. Steps past the last level stay at it.

With one unconditional f (ebmlab's ``dsm``, a σ²-weighted sum over levels) the large levels'
steps are large against f's curvature: a step α diverges where f's curvature exceeds 2 / α, so
keep step_size · σ_max² / σ_min² below that (Song & Ermon's noise-conditional scores flatten at
large σ; an unconditional f does not).

With a noise-conditional model (``models.noise_conditional``: anything with ``noise_log_density(x, i)``
and the same levels), each level's steps follow that level's own score s(x, σ_i) = ∇f(x, σ_i) — Song
& Ermon's NCSN sampler. ``denoise=True`` ends the chain with Tweedie's denoising step
x + σ_L² s(x, σ_L) (the posterior mean of the clean point given x at noise σ_L; Song & Ermon 2020,
"Improved techniques", and Jolicoeur-Martineau et al. 2021): the last Langevin steps leave noise of
size ~σ_L in every pixel, which the step removes.

The level a step belongs to is the chain state's step counter ``t`` (``AnnealedState``), so the
schedule lives in the state, not in the sampler: one sampler object can run any number of chains.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch

from ebmlab.box import Box, BoundsLike
from ebmlab.errors import EBMError
from ebmlab.samplers.base import (LogDensity, Sampler, StepInfo, chain_norm, check_positive,
                                  log_density_and_score, randn_like)


class AnnealedState(NamedTuple):
    """x [B, *event], log_density [B] f(x), score [B, *event] ∇f(x), t: steps taken so far (host int)."""
    x: torch.Tensor
    log_density: torch.Tensor
    score: torch.Tensor
    t: int = 0


def check_levels(sigmas: Sequence[float]) -> list[float]:
    """The levels sorted largest first; EBMError for an empty list or a level that is not > 0."""
    if isinstance(sigmas, (int, float)) and not isinstance(sigmas, bool):
        sigmas = [sigmas]
    levels = list(sigmas)
    if not levels:
        raise EBMError("annealed Langevin needs at least one noise level (sigmas), got an empty list")
    return sorted((check_positive("each noise level", s) for s in levels), reverse=True)


class AnnealedLangevin(Sampler):
    """Unadjusted Langevin with a step size annealed over noise levels (not calibrated).

    Args:
        f: log unnormalised density [B, *event] -> [B].
        step_size: ε, the step at the smallest level; level i uses ε σ_i² / σ_min².
        sigmas: the noise levels (any order; run largest first).
        steps_per_level: Langevin steps at each level before moving to the next.
        bounds: optional box the chains are clamped into (default: the model's own ``bounds``).
        denoise: end with Tweedie's step x + σ_L² ∇f(x, σ_L) instead of a last noisy move.

    A model with ``noise_log_density`` (a noise-conditional f(x, σ_i)) must have exactly these
    levels; level i's steps then use f(·, σ_i).
    """

    is_calibrated = False
    needs_score = True

    def __init__(self, f: LogDensity | torch.nn.Module, step_size: float = 0.01,
                 sigmas: Sequence[float] = (1.0, 0.5, 0.25, 0.1), steps_per_level: int = 10,
                 bounds: BoundsLike | Box | None = None, denoise: bool = False) -> None:
        super().__init__(f)
        self.step_size = check_positive("step_size", step_size)
        self.sigmas = check_levels(sigmas)
        if isinstance(steps_per_level, bool) or not isinstance(steps_per_level, int) or steps_per_level < 1:
            raise EBMError(f"steps_per_level must be a positive integer, got {steps_per_level!r}")
        self.steps_per_level = steps_per_level
        low = self.sigmas[-1]
        self.level_steps = [self.step_size * (s / low) ** 2 for s in self.sigmas]
        self._box: Box | None = Box.of(f) if bounds is None else Box(bounds)
        self.denoise = bool(denoise)
        self._conditional = getattr(f, "noise_log_density", None)
        if self._conditional is not None:
            mine = f.noise_levels.detach().cpu().tolist()
            if len(mine) != len(self.sigmas) or any(abs(a - b) > 1e-6 * b for a, b in zip(mine, self.sigmas)):
                raise EBMError(f"the noise-conditional model was trained at levels {mine}, but the sampler was "
                               f"given {self.sigmas}: sample it at its own levels")

    def _level(self, t: int) -> int:
        return min(t // self.steps_per_level, len(self.sigmas) - 1)

    def _density_at(self, t: int, like: torch.Tensor):
        """The log density that step ``t`` follows: f itself, or f(·, σ_i) of step t's level i."""
        if self._conditional is None:
            return self.f
        i = torch.full((like.shape[0],), self._level(t), dtype=torch.long, device=like.device)
        return lambda z: self._conditional(z, i)

    def init(self, x: torch.Tensor) -> AnnealedState:
        if self._box is not None:
            self._box.broadcast(x)
        s = super().init(x)
        if self._conditional is None:
            return AnnealedState(s.x, s.log_density, s.score, 0)
        f0, score0 = log_density_and_score(self._density_at(0, s.x), s.x)
        return AnnealedState(s.x, f0, score0, 0)

    def _alpha(self, t: int) -> float:
        return self.level_steps[self._level(t)]

    @torch.no_grad()
    def move(self, state: AnnealedState, generator: torch.Generator | None = None) -> torch.Tensor:
        """x' [B, *event] = x + α_t ∇f(x) + sqrt(2 α_t) z, clamped to the box."""
        alpha = self._alpha(state.t)
        x_new = torch.add(state.x, state.score, alpha=alpha)
        x_new.add_(randn_like(state.x, generator), alpha=math.sqrt(2.0 * alpha))
        if self._box is not None:
            x_new = self._box.clamp(x_new)
        return x_new

    def step(self, state: AnnealedState, generator: torch.Generator | None = None
             ) -> tuple[AnnealedState, StepInfo]:
        x_new = self.move(state, generator)
        f_new, score_new = log_density_and_score(self._density_at(state.t + 1, x_new), x_new)
        return AnnealedState(x_new, f_new, score_new, state.t + 1), self._info(state)

    def final_step(self, state: AnnealedState, generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, StepInfo]:
        x_new = self.move(state, generator)
        if self.denoise:
            # Tweedie at the smallest level: E[x_clean | x] = x + σ_L² ∇ log p_σL(x)
            last = len(self.sigmas) * self.steps_per_level      # a step count at the last level
            _, score = log_density_and_score(self._density_at(last, x_new), x_new)
            x_new = x_new + self.sigmas[-1] ** 2 * score
            if self._box is not None:
                x_new = self._box.clamp(x_new)
        return x_new, self._info(state)

    @staticmethod
    def _info(state: AnnealedState) -> StepInfo:
        ones = torch.ones_like(state.log_density)
        return StepInfo(ones, ones.bool(), chain_norm(state.score))
