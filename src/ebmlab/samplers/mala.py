"""MALA: a Langevin step used as a proposal and corrected by Metropolis–Hastings (calibrated)."""
from __future__ import annotations

import math

import torch

from ebmlab.samplers.accept import mh_select, where_accepted
from ebmlab.samplers.base import (ChainState, LogDensity, Sampler, StepInfo, chain_norm, chain_sum, check_positive,
                   log_density_and_score, randn_like)


class MALA(Sampler):
    """Metropolis-adjusted Langevin: leaves p ∝ exp(f) exactly invariant for any step size.

    Update rule, per chain (z ~ N(0, I), ε = step_size):
        x' = x + ε ∇f(x) + sqrt(2ε) z                       (the unadjusted Langevin move)
        log q(x'|x) = -‖x' - x - ε ∇f(x)‖² / (4ε)          (Gaussian proposal, asymmetric)
        log_alpha = f(x') - f(x) + log q(x|x') - log q(x'|x)
        x <- x' if log_alpha >= 0, else with probability exp(log_alpha)   (``mh_accept``)
    A proposal with non-finite f is rejected. f and ∇f at the kept point are cached in the state.

    Args:
        f: log unnormalised density [B, *event] -> [B].
        step_size: ε > 0.
    """

    is_calibrated = True
    needs_score = True

    def __init__(self, f: LogDensity | torch.nn.Module, step_size: float = 0.01) -> None:
        super().__init__(f)
        self.step_size = check_positive("step_size", step_size)
        self._noise = math.sqrt(2.0 * self.step_size)

    @torch.no_grad()
    def step(self, state: ChainState, generator: torch.Generator | None = None
             ) -> tuple[ChainState, StepInfo]:
        eps = self.step_size
        x, fx, score = state
        z = randn_like(x, generator)
        x_new = torch.add(x, score, alpha=eps).add_(z, alpha=self._noise)
        f_new, score_new = log_density_and_score(self.f, x_new)
        # forward: x' - x - ε∇f(x) = sqrt(2ε) z exactly, so log q(x'|x) = -‖z‖²/2 (no cancellation error)
        log_q_fwd = -0.5 * chain_sum(z * z)
        back = x - x_new - eps * score_new
        log_q_back = -chain_sum(back * back) / (4.0 * eps)
        log_alpha = (f_new - fx) + (log_q_back - log_q_fwd)
        accepted, prob = mh_select(log_alpha, f_new, generator)
        new_state = ChainState(where_accepted(accepted, x_new, x), torch.where(accepted, f_new, fx),
                               where_accepted(accepted, score_new, score))
        return new_state, StepInfo(prob, accepted, chain_norm(score))
