"""Single-site Gibbs for categorical states {0..K-1}^d (random scan; Geman & Geman 1984).

One step picks a site i uniformly at random per chain and redraws it from its exact conditional
p(x_i = k | x_-i) = softmax_k f(x with x_i = k): K evaluations of f per chain, batched as one call on
[B*K] states. Heat-bath: no rejection; ``StepInfo.accepted`` says whether the site changed and
``accept_prob`` is 1 - p(staying).
"""
from __future__ import annotations

import torch

from ebmlab.samplers.base import ChainState, StepInfo, log_density
from ebmlab.samplers.onehot import OneHotSampler


class CategoricalGibbs(OneHotSampler):
    """Random-scan single-site Gibbs on one-hot categorical states; calibrated.

    Args:
        f: log unnormalised density of one-hot states [B, d*K] (or [B, d, K]) -> [B].
        categories: K (None: the model's ``categories``, or the last dimension of x0 [B, d, K]).
    """

    method = "categorical-gibbs"
    is_calibrated = True
    needs_score = False

    @torch.no_grad()
    def step(self, state: ChainState, generator: torch.Generator | None = None
             ) -> tuple[ChainState, StepInfo]:
        x = state.x
        k = self.categories
        b = x.shape[0]
        v = x.reshape(b, -1, k)
        rows = torch.arange(b, device=x.device)
        site = torch.randint(0, v.shape[1], (b,), generator=generator, device=x.device)
        cand = v.unsqueeze(1).repeat(1, k, 1, 1)                              # [B, K, d, K]
        cand[rows, :, site] = torch.eye(k, dtype=x.dtype, device=x.device)   # candidate c sets site to c
        f_cand = log_density(self.f, cand.reshape(b * k, *x.shape[1:])).reshape(b, k)
        # a NaN/inf f never wins the draw, as the MH guard does
        logits = torch.where(torch.isfinite(f_cand), f_cand, torch.full_like(f_cand, float("-inf")))
        probs = torch.softmax(logits, 1).nan_to_num(0.0)
        cur = v[rows, site].argmax(-1)
        probs = torch.where(probs.sum(1, keepdim=True) > 0, probs,
                            torch.nn.functional.one_hot(cur, k).to(probs.dtype))
        new = torch.multinomial(probs, 1, generator=generator)[:, 0]
        changed = new != cur
        x_new = cand[rows, new].reshape(x.shape)
        stay = probs[rows, cur]
        return ChainState(x_new, f_cand[rows, new], None), StepInfo(1 - stay, changed, None, changed.to(stay.dtype))
