"""Single-site Gibbs sampling (random scan) for binary states {0, 1}^D (Geman & Geman 1984).

One step picks a coordinate i uniformly at random per chain and redraws it from its exact
conditional p(x_i | x_-i): with x' = x with bit i flipped,
    P(x_i <- x'_i) = sigmoid(f(x') - f(x)),
so a step costs one evaluation of f (f(x) is cached). This is the heat-bath rule: exact, no
rejection in the MH sense; ``StepInfo.accepted`` reports whether the bit changed and ``accept_prob``
the flip probability. A full sweep is D steps.
"""
from __future__ import annotations

import torch

from ebmlab.samplers.accept import where_accepted
from ebmlab.samplers.base import ChainState, Sampler, StepInfo, log_density
from ebmlab.samplers.binary import check_binary, flip_at


class Gibbs(Sampler):
    """Random-scan single-site Gibbs on {0, 1}^D; calibrated (p ∝ exp(f) is invariant).

    States x: [B, *event] of 0/1 values (float, int or bool; the dtype is kept).
    """

    is_calibrated = True
    needs_score = False

    def init(self, x: torch.Tensor) -> ChainState:
        state = super().init(x)
        check_binary(state.x, "gibbs")
        return state

    @torch.no_grad()
    def step(self, state: ChainState, generator: torch.Generator | None = None
             ) -> tuple[ChainState, StepInfo]:
        x, fx = state.x, state.log_density
        b, d = x.shape[0], x[0].numel()
        i = torch.randint(0, d, (b,), generator=generator, device=x.device)
        x_flip = flip_at(x, i)
        f_flip = log_density(self.f, x_flip)
        delta = f_flip - fx
        # a NaN/inf f at the flipped point never wins the draw (prob 0), as the MH guard does
        prob = torch.where(torch.isfinite(f_flip), torch.sigmoid(delta), torch.zeros_like(delta)).nan_to_num(0.0)
        u = torch.rand(b, generator=generator, dtype=prob.dtype, device=x.device)
        flipped = u < prob
        new = ChainState(where_accepted(flipped, x_flip, x), torch.where(flipped, f_flip, fx), None)
        return new, StepInfo(prob, flipped, None, flipped.float())
