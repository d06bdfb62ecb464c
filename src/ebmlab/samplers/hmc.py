"""Hamiltonian Monte Carlo: leapfrog trajectories corrected by Metropolis–Hastings (calibrated)."""
from __future__ import annotations

import torch

from ebmlab.errors import EBMError
from ebmlab.samplers.accept import mh_select, where_accepted
from ebmlab.samplers.base import (ChainState, LogDensity, Sampler, StepInfo, chain_norm, chain_sum, check_positive,
                   log_density_and_score, randn_like)


class HMC(Sampler):
    """HMC with identity mass matrix; the potential energy is -f, so momentum is pushed up ∇f.

    Update rule, per chain (ε = step_size, L = n_leapfrog, p ~ N(0, I) fresh each step):
        p <- p + (ε/2) ∇f(x)
        repeat L times:  x <- x + ε p;  p <- p + ε ∇f(x)   (the last momentum update is ε/2)
        H(x, p) = -f(x) + ‖p‖²/2;  log_alpha = H(x0, p0) - H(x_L, p_L)
        x <- x_L if log_alpha >= 0, else with probability exp(log_alpha)   (``mh_accept``)
    A trajectory ending with non-finite f (or diverging to NaN) is rejected. Each step costs L
    forward+backward passes; f and ∇f at the kept point are cached in the state.

    Args:
        f: log unnormalised density [B, *event] -> [B].
        step_size: ε > 0.
        n_leapfrog: L >= 1 leapfrog steps per transition.
    """

    is_calibrated = True
    needs_score = True

    def __init__(self, f: LogDensity | torch.nn.Module, step_size: float = 0.1, n_leapfrog: int = 10) -> None:
        super().__init__(f)
        self.step_size = check_positive("step_size", step_size)
        if isinstance(n_leapfrog, bool) or not isinstance(n_leapfrog, int) or n_leapfrog < 1:
            raise EBMError(f"n_leapfrog must be an integer >= 1, got {n_leapfrog!r}")
        self.n_leapfrog = n_leapfrog

    @torch.no_grad()
    def step(self, state: ChainState, generator: torch.Generator | None = None
             ) -> tuple[ChainState, StepInfo]:
        eps, n = self.step_size, self.n_leapfrog
        x0, f0, score0 = state
        p0 = randn_like(x0, generator)
        p = torch.add(p0, score0, alpha=0.5 * eps)
        x = x0
        for i in range(n):
            x = torch.add(x, p, alpha=eps)
            f_new, score = log_density_and_score(self.f, x)
            p = p.add_(score, alpha=eps if i < n - 1 else 0.5 * eps)   # p is a fresh tensor: in place is safe
        log_alpha = (f_new - 0.5 * chain_sum(p * p)) - (f0 - 0.5 * chain_sum(p0 * p0))
        accepted, prob = mh_select(log_alpha, f_new, generator)
        new_state = ChainState(where_accepted(accepted, x, x0), torch.where(accepted, f_new, f0),
                               where_accepted(accepted, score, score0))
        return new_state, StepInfo(prob, accepted, chain_norm(score0))
