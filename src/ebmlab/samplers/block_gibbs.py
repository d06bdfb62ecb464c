"""Block Gibbs for models with two conditionally independent layers: the RBM (``ebmlab.models.rbm``).

One step draws h ~ p(h | v), then v ~ p(v | h): every unit of a layer at once, exactly from its
conditional, so the visible chain leaves p(v) ∝ exp(f(v)) invariant with no rejection.
"""
from __future__ import annotations

import torch

from ebmlab.errors import EBMError
from ebmlab.samplers.base import ChainState, Sampler, StepInfo, log_density
from ebmlab.samplers.binary import check_binary, count_changes


class BlockGibbs(Sampler):
    """Alternating block Gibbs v -> h -> v on a model with ``sample_hidden`` and ``sample_visible``.

    States x: [B, *event] float 0/1 (the visible units). ``StepInfo.flips`` counts changed visible bits.
    """

    is_calibrated = True
    needs_score = False

    def __init__(self, f: torch.nn.Module) -> None:
        if not (callable(getattr(f, "sample_hidden", None)) and callable(getattr(f, "sample_visible", None))):
            raise EBMError(f"block Gibbs needs a model with hidden units (an RBM: ebmlab.models.rbm.RBM), "
                           f"got {type(f).__name__}; use method='gibbs' or 'gwg' for other binary models")
        super().__init__(f)
        self.model = f

    def init(self, x: torch.Tensor) -> ChainState:
        state = super().init(x)
        check_binary(state.x, "block-gibbs")
        return state

    @torch.no_grad()
    def step(self, state: ChainState, generator: torch.Generator | None = None
             ) -> tuple[ChainState, StepInfo]:
        x = state.x
        h = self.model.sample_hidden(x, generator)
        v = self.model.sample_visible(h, generator).reshape(x.shape).to(x.dtype)
        ones = torch.ones(x.shape[0], dtype=state.log_density.dtype, device=x.device)
        return ChainState(v, log_density(self.f, v), None), StepInfo(ones, ones.bool(), None, count_changes(v, x))

    def final_step(self, state: ChainState, generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, StepInfo]:
        x = state.x
        h = self.model.sample_hidden(x, generator)
        v = self.model.sample_visible(h, generator).reshape(x.shape).to(x.dtype)
        ones = torch.ones(x.shape[0], dtype=state.log_density.dtype, device=x.device)
        return v, StepInfo(ones, ones.bool(), None, count_changes(v, x))
