"""An exponential moving average (EMA) of a model's weights, the weights a run samples with.

After every optimiser step that passed the divergence guard (``Trainer.train_step``):

    ema <- decay * ema + (1 - decay) * θ          for each floating-point parameter θ,
    ema <- b                                      for every buffer b (spectral norm's u, v) and
                                                  any integer parameter,

started from the initial weights, so after k steps ema_k = decay^k θ_0 + (1 - decay) Σ_{i=1..k}
decay^(k-i) θ_i (no bias correction: with decay 0.999 the initial weights weigh decay^k, below 1e-4
after 10 000 steps). Many image EBM and score-model codes (Song & Ermon 2020, Gao et al. 2021:
decay 0.999 / 0.9999) sample with such an average: a constant learning rate leaves the raw weights
jittering around a good point, and the average sits nearer it.

The update is one fused ``torch._foreach_lerp_`` on the device, no host synchronisation. With several
processes (DDP) the parameters are identical on every rank after each step, and so is every rank's EMA.
The training chains sample the raw weights (as in the literature); only generation and evaluation
use the average.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class WeightEMA:
    """The EMA of ``model``'s state: one tensor per ``model.state_dict()`` key, on the model's device.

    Args:
        model: the model being trained; its tensors are read live after each update (``update``).
        decay: in [0, 1); 0 makes the EMA a copy of the current weights.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        live = model.state_dict(keep_vars=True)
        self._names = list(live)
        # averaged: floating-point parameters; copied: buffers (and any non-float tensor)
        self._avg = [k for k, v in live.items() if isinstance(v, nn.Parameter) and v.is_floating_point()]
        self._copy = [k for k in self._names if k not in set(self._avg)]
        self.shadow: dict[str, torch.Tensor] = {k: v.detach().clone() for k, v in live.items()}
        self._model = model

    @torch.no_grad()
    def update(self) -> None:
        """One EMA step towards the model's current weights (call after each accepted optimiser step)."""
        live = self._model.state_dict(keep_vars=True)
        if self._avg:
            torch._foreach_lerp_([self.shadow[k] for k in self._avg], [live[k].detach() for k in self._avg],
                                 1.0 - self.decay)
        for k in self._copy:
            self.shadow[k].copy_(live[k].detach())

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights, keyed like ``model.state_dict()`` (what ``ema.safetensors`` holds)."""
        return dict(self.shadow)

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the averaged weights (in place, keeping the tensors' device and dtype)."""
        missing = [k for k in self._names if k not in state]
        extra = [k for k in state if k not in self.shadow]
        if missing or extra:
            raise KeyError(f"EMA state does not fit the model: missing {missing[:3]}, unexpected {extra[:3]}")
        for k in self._names:
            self.shadow[k].copy_(state[k])

    def averaged_model(self) -> nn.Module:
        """A copy of the model holding the averaged weights, in eval mode (the model being trained is untouched)."""
        m = copy.deepcopy(self._model)
        m.load_state_dict(self.shadow)
        return m.eval()
