"""Gibbs-with-gradients (Grathwohl, Swersky, Hashemi, Duvenaud & Maddison 2021, "Oops I took a gradient").

For binary x, the change of f when bit i flips is estimated to first order from one gradient:
    d_i(x) = (1 - 2 x_i) ∇_i f(x)  ≈  f(flip_i x) - f(x).
The proposal picks one bit from q(i | x) = softmax(d(x) / 2) and flips it; the Metropolis–Hastings
correction makes it exact:
    log_alpha = f(x') - f(x) + log q(i | x') - log q(i | x).
One step costs one forward and one backward pass (f and ∇f at the kept point are cached).
"""
from __future__ import annotations

import torch

from ebmlab.samplers.accept import mh_select, where_accepted
from ebmlab.samplers.base import ChainState, Sampler, StepInfo, chain_norm, log_density_and_score
from ebmlab.samplers.binary import check_binary, flip_at, flip_direction


def _flip_logits(x: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    """log q(i | x) up to a constant: d(x)/2 flattened, [B, D].

    A non-finite gradient (a diverging network) must not crash the categorical draw: NaN counts as 0
    and ±inf is clipped, so a proposal is still made and the guarded MH rule judges it by f.
    """
    d = (flip_direction(x) * score).reshape(x.shape[0], -1) / 2
    return torch.nan_to_num(d, nan=0.0).clamp(-1e4, 1e4)


class GibbsWithGradients(Sampler):
    """Metropolis-corrected Gibbs-with-gradients on {0, 1}^D; calibrated. At most one flip per step.

    States x: [B, *event] floating point with values 0/1 (the gradient is taken at x).
    """

    is_calibrated = True
    needs_score = True

    def init(self, x: torch.Tensor) -> ChainState:
        state = super().init(x)
        check_binary(state.x, "gwg")
        return state

    @torch.no_grad()
    def step(self, state: ChainState, generator: torch.Generator | None = None
             ) -> tuple[ChainState, StepInfo]:
        x, fx, score = state
        log_q_fwd = torch.log_softmax(_flip_logits(x, score), dim=1)
        i = torch.multinomial(log_q_fwd.exp(), 1, generator=generator)[:, 0]
        x_new = flip_at(x, i)
        f_new, score_new = log_density_and_score(self.f, x_new)
        log_q_back = torch.log_softmax(_flip_logits(x_new, score_new), dim=1)
        rows = torch.arange(x.shape[0], device=x.device)
        log_alpha = (f_new - fx) + log_q_back[rows, i] - log_q_fwd[rows, i]
        accepted, prob = mh_select(log_alpha, f_new, generator)
        new = ChainState(where_accepted(accepted, x_new, x), torch.where(accepted, f_new, fx),
                         where_accepted(accepted, score_new, score))
        return new, StepInfo(prob, accepted, chain_norm(score), accepted.to(prob.dtype))
