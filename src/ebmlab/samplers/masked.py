"""Langevin on some coordinates only: the rest are conditioned on and never move (inpainting).

With the observed coordinates o held fixed, p(free | o) ∝ exp(f(free, o)), so the plain Langevin
update applied to the free coordinates alone, with the observed ones kept, samples that
conditional. Kept in its own file as a small subclass: ``Langevin``'s update rule is reused as is.
"""
from __future__ import annotations

from typing import Any

import torch

from ebmlab.errors import EBMError
from ebmlab.samplers.base import ChainState, LogDensity
from ebmlab.samplers.langevin import Langevin


class MaskedLangevin(Langevin):
    """``Langevin`` whose move touches only the coordinates where ``free`` is True.

    Update rule, per step: x' = Langevin move of x (drift, noise, clamp to ``bounds``), then
    x <- where(free, x', x). Observed coordinates keep their starting values exactly.

    Args:
        f: log unnormalised density [B, *event] -> [B].
        free: bool tensor broadcastable to x [B, *event] (e.g. [B or 1, 1, H, W] for images);
            True = sampled, False = held fixed.
        step_size, noise_scale, grad_clip, bounds: as for ``Langevin``.
    """

    def __init__(self, f: LogDensity | torch.nn.Module, free: torch.Tensor, step_size: float = 0.01,
                 noise_scale: float | None = None, grad_clip: float | None = None, bounds: Any = None) -> None:
        super().__init__(f, step_size, noise_scale=noise_scale, grad_clip=grad_clip, bounds=bounds)
        if not isinstance(free, torch.Tensor) or free.dtype != torch.bool:
            raise EBMError(f"free must be a bool tensor (True = sampled), got "
                           f"{free.dtype if isinstance(free, torch.Tensor) else type(free).__name__}")
        self.free = free

    def init(self, x: torch.Tensor) -> ChainState:
        state = super().init(x)
        try:   # checked once here rather than failing mid-run
            ok = torch.broadcast_shapes(self.free.shape, state.x.shape) == state.x.shape
        except RuntimeError:
            ok = False
        if not ok:
            raise EBMError(f"free mask of shape {tuple(self.free.shape)} does not broadcast to the chains "
                           f"{tuple(state.x.shape)}")
        self.free = self.free.to(state.x.device)
        return state

    @torch.no_grad()
    def move(self, state: ChainState, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.where(self.free, super().move(state, generator), state.x)
