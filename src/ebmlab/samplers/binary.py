"""What the samplers for binary states {0, 1}^D share: checks, flattening, single-coordinate flips.

States are kept as [B, *event] tensors in the caller's dtype; the samplers work on the flattened
view [B, D] (D = prod(event)). Gradient-informed samplers (GWG, DMALA/DULA) need floating-point
states (they differentiate f at the 0/1 point); single-site Gibbs works on any dtype.
"""
from __future__ import annotations

import torch

from ebmlab.errors import EBMError


def check_binary(x: torch.Tensor, method: str) -> None:
    """Refuse starting points that are not all 0 or 1 (once, at ``init``), naming the first bad value."""
    if x.dtype == torch.bool:
        return
    bad = ~((x == 0) | (x == 1))
    if bool(bad.any()):
        flat = bad.reshape(-1).nonzero()[0, 0]
        idx = tuple(int(i) for i in torch.unravel_index(flat, x.shape))
        value = x.reshape(-1)[flat].item()
        raise EBMError(f"method {method!r} samples {{0, 1}} states, but x0{list(idx)} = {value!r}; "
                       "binarise x0 first (e.g. (x0 > 0.5).float())")


def flip_at(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x [B, *event] with coordinate ``index[b]`` (into the flattened event) flipped in chain b."""
    flat = x.reshape(x.shape[0], -1).clone()
    rows = torch.arange(x.shape[0], device=x.device)
    cur = flat[rows, index]
    flat[rows, index] = ~cur if x.dtype == torch.bool else 1 - cur
    return flat.reshape(x.shape)


def flip_direction(x: torch.Tensor) -> torch.Tensor:
    """1 - 2x: +1 where a flip raises a coordinate (0 -> 1), -1 where it lowers it; shaped like x."""
    return 1 - 2 * x


def count_changes(x_new: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """How many coordinates differ, per chain: [B] float."""
    return (x_new != x).reshape(x.shape[0], -1).sum(dim=1).float()
