"""Gibbs-with-gradients for categorical states (Grathwohl et al. 2021, "Oops I took a gradient", §4
for categorical data), on one-hot x [B, d*K].

Setting site i from its current category c to k changes f by about
    d_{i,k}(x) = ∇_{i,k} f(x) - ∇_{i,c} f(x)
(first order in the one-hot coordinates). The proposal picks one (site, category) pair with
k ≠ c from q(i, k | x) = softmax(d(x) / 2) over all d(K-1) moves; Metropolis–Hastings makes it exact:
    log_alpha = f(x') - f(x) + log q(i, c | x') - log q(i, k | x).
One step: one forward and one backward pass (f and ∇f at the kept point are cached).
"""
from __future__ import annotations

import torch

from ebmlab.samplers.accept import mh_select, where_accepted
from ebmlab.samplers.base import ChainState, StepInfo, chain_norm, log_density_and_score
from ebmlab.samplers.onehot import OneHotSampler, set_site


def move_log_q(v: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    """log q(i, k | x) [B, d*K] for one-hot v and ∇f, both [B, d, K]; the current categories get -inf."""
    g = torch.nan_to_num(score, nan=0.0).clamp(-1e4, 1e4)
    d = g - (g * v).sum(-1, keepdim=True)                 # ∇_{i,k} f - ∇_{i,c} f
    logits = torch.where(v > 0.5, torch.full_like(d, float("-inf")), d / 2)
    return torch.log_softmax(logits.reshape(v.shape[0], -1), dim=1)


class CategoricalGWG(OneHotSampler):
    """Metropolis-corrected Gibbs-with-gradients on one-hot categorical states; calibrated; at most
    one site changes per step.

    Args:
        f: log unnormalised density of one-hot states [B, d*K] (or [B, d, K]) -> [B].
        categories: K (None: the model's ``categories``, or the last dimension of x0 [B, d, K]).
    """

    method = "categorical-gwg"
    is_calibrated = True
    needs_score = True

    @torch.no_grad()
    def step(self, state: ChainState, generator: torch.Generator | None = None
             ) -> tuple[ChainState, StepInfo]:
        x, fx, score = state
        k = self.categories
        b = x.shape[0]
        v = x.reshape(b, -1, k)
        log_q_fwd = move_log_q(v, score.reshape(v.shape))
        move = torch.multinomial(log_q_fwd.exp(), 1, generator=generator)[:, 0]
        rows = torch.arange(b, device=x.device)
        site, new_cat = move // k, move % k
        cur = v[rows, site].argmax(-1)
        v_new = set_site(v, site, new_cat)
        x_new = v_new.reshape(x.shape)
        f_new, score_new = log_density_and_score(self.f, x_new)
        log_q_back = move_log_q(v_new, score_new.reshape(v.shape))
        log_alpha = (f_new - fx) + log_q_back[rows, site * k + cur] - log_q_fwd[rows, move]
        accepted, prob = mh_select(log_alpha, f_new, generator)
        new = ChainState(where_accepted(accepted, x_new, x), torch.where(accepted, f_new, fx),
                         where_accepted(accepted, score_new, score))
        return new, StepInfo(prob, accepted, chain_norm(score), accepted.to(prob.dtype))
