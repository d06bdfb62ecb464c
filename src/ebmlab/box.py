"""The support box: an axis-aligned box [(lo, hi), ...] per flattened event dimension."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ebmlab.errors import EBMError


def check_bounds(bounds: Sequence[Sequence[float]]) -> torch.Tensor:
    """A support box as a float32 [d, 2] tensor of (low, high) rows; EBMError if malformed."""
    b = torch.as_tensor(bounds, dtype=torch.float32)
    if b.ndim != 2 or b.shape[1] != 2 or not bool((b[:, 0] < b[:, 1]).all()):
        raise EBMError("bounds must be a list of (low, high) pairs with low < high")
    return b


def register_bounds(module: nn.Module, bounds: Sequence[Sequence[float]] | None) -> None:
    """Set ``module.bounds``: a checked [d, 2] buffer (moves with .to(), saved in state_dict) or None."""
    if bounds is not None:
        module.register_buffer("bounds", check_bounds(bounds))
    else:
        module.bounds = None


def inside_bounds(x: torch.Tensor, bounds: torch.Tensor | None) -> torch.Tensor:
    """Bool [B]: whether each point of x [B, *event] lies in the box (all True when bounds is None)."""
    if bounds is None:
        return torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    flat = x.reshape(x.shape[0], -1)
    b = bounds.to(device=flat.device, dtype=flat.dtype)
    return ((flat >= b[:, 0]) & (flat <= b[:, 1])).all(dim=1)
