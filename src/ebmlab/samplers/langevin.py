"""Unadjusted Langevin dynamics (no Metropolis correction): the sampler EBM training uses."""
from __future__ import annotations

import math

import torch

from ebmlab.box import Box, BoundsLike
from ebmlab.samplers.base import (ChainState, LogDensity, Sampler, StepInfo, chain_norm, check_positive,
                                  log_density_and_score, randn_like)


class Langevin(Sampler):
    """Unadjusted Langevin: NOT calibrated — its stationary law is biased by the step size.

    Update rule, every chain, every step (z ~ N(0, I) from the generator):
        x <- x + step_size * clip(∇x f(x)) + noise_scale * z,   then clamp x to ``bounds`` if given
    noise_scale defaults to sqrt(2 * step_size): exact (overdamped) Langevin, whose bias vanishes as
    step_size -> 0 (on N(μ, σ²) the stationary variance is σ² / (1 - step_size / (2σ²))). Set the
    two knobs separately for the usual EBM-training recipes (IGEBM: step 10, noise 0.005,
    grad_clip 0.01; short-run: step 1, noise 0.01).

    Args:
        f: log unnormalised density [B, *event] -> [B] (a model, or any callable).
        step_size: ε > 0, the gradient step.
        noise_scale: standard deviation of the added noise (>= 0); None means sqrt(2 ε).
        grad_clip: if given, ∇f is clamped per element to [-grad_clip, grad_clip] (IGEBM style).
        bounds: a box (low, high) or one pair per flattened event coordinate; x is clamped into it
            after every step. Defaults to the model's own ``bounds`` when it has them.

    States x: [B, *event], floating point. f and ∇f at the new point are cached in the state, so
    each step costs exactly one forward and one backward pass.
    A NaN or inf in ∇f is not checked here (a check would read a value back to the host every step):
    the chain carries it on, so a chain whose f has a NaN gradient ends as NaN. Training's divergence
    guard catches that (``training.guard``: chain range and gradient norm); sampling on its own does not.
    """

    is_calibrated = False
    needs_score = True

    def __init__(self, f: LogDensity | torch.nn.Module, step_size: float = 0.01,
                 noise_scale: float | None = None, grad_clip: float | None = None,
                 bounds: BoundsLike | Box | None = None) -> None:
        super().__init__(f)
        self.step_size = check_positive("step_size", step_size)
        self.noise_scale = (math.sqrt(2.0 * self.step_size) if noise_scale is None
                            else check_positive("noise_scale", noise_scale, allow_zero=True))
        self.grad_clip = None if grad_clip is None else check_positive("grad_clip", grad_clip)
        self._box: Box | None = Box.of(f) if bounds is None else Box(bounds)
        # public, as documented: the box as a float64 [D, 2] tensor of (low, high) rows, or None
        self.bounds: torch.Tensor | None = None if self._box is None else self._box.rows

    def init(self, x: torch.Tensor) -> ChainState:
        if self._box is not None:
            self._box.broadcast(x)   # check the box against the event size now, not mid-run
        return super().init(x)

    @torch.no_grad()
    def move(self, state: ChainState, generator: torch.Generator | None = None) -> torch.Tensor:
        """The update rule alone: x' [B, *event] from the cached score, without evaluating f at x'."""
        return self._update(state, self._noise(state.x, generator))

    def _noise(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor | None:
        """z ~ N(0, I) like x from the generator (the step's one draw), or None without noise."""
        return randn_like(x, generator) if self.noise_scale > 0 else None

    @torch.no_grad()
    def _update(self, state: ChainState, z: torch.Tensor | None) -> torch.Tensor:
        x, score = state.x, state.score
        drift = score if self.grad_clip is None else score.clamp(-self.grad_clip, self.grad_clip)
        x_new = torch.add(x, drift, alpha=self.step_size)
        if z is not None:
            x_new.add_(z, alpha=self.noise_scale)   # in place: x_new is ours
        if self._box is not None:
            x_new = self._box.clamp(x_new)   # (low, high) cached by the box per shape/dtype/device
        return x_new

    def step(self, state: ChainState, generator: torch.Generator | None = None
             ) -> tuple[ChainState, StepInfo]:
        # the compiled path (samplers/compiled.py): update and new score in one graph, same z; only for
        # Langevin's own update rule (a subclass with its own move, e.g. MaskedLangevin, keeps it)
        fused = getattr(self.f, "langevin_step", None) if type(self).move is Langevin.move else None
        if fused is None:
            x_new = self.move(state, generator)
        else:
            z = self._noise(state.x, generator)
            low, high = self._box.broadcast(state.x) if self._box is not None else (None, None)
            out = fused(state.x, state.score, z, self.step_size, self.noise_scale, self.grad_clip, low, high)
            if out is not None:
                return ChainState(*out), self._info(state)
            x_new = self._update(state, z)          # the graph failed to compile: eager, same z
        f_new, score_new = log_density_and_score(self.f, x_new)
        return ChainState(x_new, f_new, score_new), self._info(state)

    def final_step(self, state: ChainState, generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, StepInfo]:
        # Nothing is accepted or rejected, so f and ∇f at the last point are never needed.
        return self.move(state, generator), self._info(state)

    @staticmethod
    def _info(state: ChainState) -> StepInfo:
        ones = torch.ones_like(state.log_density)
        return StepInfo(ones, ones.bool(), chain_norm(state.score))
