"""MALA: a Langevin step used as a proposal and corrected by Metropolis–Hastings (calibrated).

``mala_propose`` and ``mala_log_q_ratio`` are the proposal arithmetic alone, shared with AIS
(``ebmlab.estimate.ais``), which runs the same move on a tempered target with a tensor step size.
"""
from __future__ import annotations

import math

import torch

from ebmlab.samplers.accept import mh_select, where_accepted
from ebmlab.samplers.base import (ChainState, LogDensity, Sampler, StepInfo, chain_norm, chain_sum, check_positive,
                   log_density_and_score, randn_like)


def mala_propose(x: torch.Tensor, score: torch.Tensor, eps: float | torch.Tensor,
                 generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The Langevin proposal x' = x + ε ∇f(x) + sqrt(2ε) z, z ~ N(0, I) from ``generator``.

    x, score: [B, *event]; eps: a number or a 0-d tensor (kept on the device: no host sync).
    Returns (x' [B, *event], z [B, *event]); z is what ``mala_log_q_ratio`` needs.
    """
    z = randn_like(x, generator)
    if isinstance(eps, torch.Tensor):
        return x + eps * score + torch.sqrt(2.0 * eps) * z, z
    # a number: torch's scaled adds, which make no temporaries (and keep MALA runs bit-identical)
    return torch.add(x, score, alpha=eps).add_(z, alpha=math.sqrt(2.0 * eps)), z


def mala_log_q_ratio(x: torch.Tensor, x_new: torch.Tensor, z: torch.Tensor, score_new: torch.Tensor,
                     eps: float | torch.Tensor) -> torch.Tensor:
    """log q(x | x') - log q(x' | x) [B] for the proposal of ``mala_propose`` (log q up to a constant).

    log q(b | a) = -‖b - a - ε ∇f(a)‖² / (4ε). The forward residual x' - x - ε∇f(x) is sqrt(2ε) z
    exactly, so log q(x'|x) = -‖z‖²/2 is taken from z (no cancellation error).
    """
    back = x - x_new - eps * score_new
    return 0.5 * chain_sum(z * z) - chain_sum(back * back) / (4.0 * eps)


class MALA(Sampler):
    """Metropolis-adjusted Langevin: leaves p ∝ exp(f) exactly invariant for any step size.

    Update rule, per chain (z ~ N(0, I), ε = step_size):
        x' = x + ε ∇f(x) + sqrt(2ε) z                       (the unadjusted Langevin move)
        log q(x'|x) = -‖x' - x - ε ∇f(x)‖² / (4ε)          (Gaussian proposal, asymmetric)
        log_alpha = f(x') - f(x) + log q(x|x') - log q(x'|x)
        x <- x' if log_alpha >= 0, else with probability exp(log_alpha)   (``mh_accept``)
    (the proposal arithmetic is ``mala_propose`` / ``mala_log_q_ratio``).
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

    @torch.no_grad()
    def step(self, state: ChainState, generator: torch.Generator | None = None
             ) -> tuple[ChainState, StepInfo]:
        x, fx, score = state
        x_new, z = mala_propose(x, score, self.step_size, generator)
        f_new, score_new = log_density_and_score(self.f, x_new)
        log_alpha = (f_new - fx) + mala_log_q_ratio(x, x_new, z, score_new, self.step_size)
        accepted, prob = mh_select(log_alpha, f_new, generator)
        new_state = ChainState(where_accepted(accepted, x_new, x), torch.where(accepted, f_new, fx),
                               where_accepted(accepted, score_new, score))
        return new_state, StepInfo(prob, accepted, chain_norm(score))
