"""Discrete Langevin for binary states: DMALA and its unadjusted form DULA (Zhang, Liu & Liu 2022,
"A Langevin-like sampler for discrete distributions", ICML).

The proposal factorises over coordinates. With g = ∇f(x) and step size α, coordinate i moves to
x'_i ∈ {0, 1} with probability ∝ exp(g_i (x'_i - x_i) / 2 - (x'_i - x_i)² / (2α)); for bits this is
    P(flip i) = sigmoid((1 - 2 x_i) g_i / 2 - 1 / (2α)),
every bit independently, so many bits can change in one step. DULA takes the move as it is
(biased: its stationary law is not p, the bias shrinks as α -> 0 and grows with α); DMALA corrects it
with Metropolis–Hastings, log_alpha = f(x') - f(x) + log q(x | x') - log q(x' | x) (exact).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ebmlab.samplers.accept import mh_select, where_accepted
from ebmlab.samplers.base import (ChainState, LogDensity, Sampler, StepInfo, chain_norm, chain_sum,
                                  check_positive, log_density_and_score)
from ebmlab.samplers.binary import check_binary, count_changes, flip_direction


def flip_logits(x: torch.Tensor, score: torch.Tensor, step_size: float) -> torch.Tensor:
    """Per-coordinate log-odds of a flip, [B, *event]."""
    return flip_direction(x) * score / 2 - 1.0 / (2.0 * step_size)


def log_q(flip: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log q(x' | x) [B] of the flip pattern ``flip`` (bool [B, *event]) under per-bit ``logits``."""
    return chain_sum(torch.where(flip, F.logsigmoid(logits), F.logsigmoid(-logits)))


class DiscreteLangevin(Sampler):
    """DMALA (``adjusted=True``, calibrated) or DULA (``adjusted=False``, biased) on {0, 1}^D.

    Args:
        f: log unnormalised density [B, *event] -> [B].
        step_size: α > 0; each bit flips with probability ≈ sigmoid(-1/(2α)) where f is flat.
        adjusted: Metropolis–Hastings correction (DMALA) or none (DULA).
    States x: [B, *event] floating point with values 0/1.
    """

    needs_score = True

    def __init__(self, f: LogDensity | torch.nn.Module, step_size: float = 0.2, adjusted: bool = True) -> None:
        super().__init__(f)
        self.step_size = check_positive("step_size", step_size)
        self.adjusted = bool(adjusted)
        self.is_calibrated = self.adjusted

    def init(self, x: torch.Tensor) -> ChainState:
        state = super().init(x)
        check_binary(state.x, "dmala" if self.adjusted else "dula")
        return state

    def _propose(self, x: torch.Tensor, score: torch.Tensor, generator: torch.Generator | None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits = flip_logits(x, score, self.step_size)
        u = torch.rand(x.shape, generator=generator, dtype=logits.dtype, device=x.device)
        flip = u < torch.sigmoid(logits)
        return torch.where(flip, 1 - x, x), flip, logits

    @torch.no_grad()
    def step(self, state: ChainState, generator: torch.Generator | None = None
             ) -> tuple[ChainState, StepInfo]:
        x, fx, score = state
        x_new, flip, logits = self._propose(x, score, generator)
        f_new, score_new = log_density_and_score(self.f, x_new)
        if not self.adjusted:
            ones = torch.ones_like(fx)
            return (ChainState(x_new, f_new, score_new),
                    StepInfo(ones, ones.bool(), chain_norm(score), count_changes(x_new, x)))
        log_alpha = (f_new - fx) + log_q(flip, flip_logits(x_new, score_new, self.step_size)) - log_q(flip, logits)
        accepted, prob = mh_select(log_alpha, f_new, generator)
        new = ChainState(where_accepted(accepted, x_new, x), torch.where(accepted, f_new, fx),
                         where_accepted(accepted, score_new, score))
        flips = torch.where(accepted, count_changes(x_new, x), torch.zeros_like(fx))
        return new, StepInfo(prob, accepted, chain_norm(score), flips)

    def final_step(self, state: ChainState, generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, StepInfo]:
        if self.adjusted:
            return super().final_step(state, generator)
        # DULA's last move needs no f/∇f at the new point (same draws as ``step``)
        x, fx, score = state
        x_new, _, _ = self._propose(x, score, generator)
        ones = torch.ones_like(fx)
        return x_new, StepInfo(ones, ones.bool(), chain_norm(score), count_changes(x_new, x))
