"""The support box: the one type for "an axis-aligned box" everywhere in ebmlab.

A box is a float64 [D, 2] tensor of (low, high) rows, one per flattened event coordinate, or a
single row that applies to every coordinate. Models keep theirs as a float32 ``bounds`` buffer (so
it moves with ``.to()`` and is saved in ``state_dict``); samplers, quadrature, AIS and plots read
every form a user may pass — ``(lo, hi)``, ``[(lo, hi), ...]``, a tensor — through ``Box``.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import torch
from torch import nn

from ebmlab.errors import EBMError

BoundsLike = Sequence[Sequence[float]] | Sequence[float] | torch.Tensor


class Box:
    """A validated box. ``Box(bounds)`` raises ``EBMError`` unless every row is finite with low < high.

    Args:
        bounds: ``(low, high)`` (one pair for all coordinates), ``[(low, high), ...]`` (one per
            coordinate), a [D, 2] tensor, or another ``Box``.
        dim: when given, the number of coordinates the box must cover (a single pair is broadcast).
    """

    __slots__ = ("rows", "_cache")

    def __init__(self, bounds: BoundsLike | "Box", dim: int | None = None) -> None:
        if isinstance(bounds, Box):
            rows = bounds.rows
        else:
            try:
                rows = torch.as_tensor(bounds, dtype=torch.float64).detach().cpu()
            except (TypeError, ValueError, RuntimeError):
                raise EBMError(f"bounds must be (low, high) or a list of (low, high) pairs, got {bounds!r}") from None
            if rows.ndim == 1:
                rows = rows.reshape(1, -1)
            if rows.ndim != 2 or rows.shape[1] != 2 or rows.shape[0] == 0 or not bool(torch.isfinite(rows).all()) \
                    or not bool((rows[:, 0] < rows[:, 1]).all()):
                raise EBMError(f"bounds must be (low, high) or a list of finite (low, high) pairs with "
                               f"low < high, got {_short(bounds)}")
        if dim is not None:
            if rows.shape[0] == 1 and dim != 1:
                rows = rows.expand(dim, 2).clone()
            elif rows.shape[0] != dim:
                raise EBMError(f"bounds have {rows.shape[0]} pairs (low, high) but the data has {dim} "
                               "coordinates; give one pair per coordinate or a single pair for all")
        self.rows = rows
        self._cache: tuple | None = None

    @classmethod
    def of(cls, model: Any) -> "Box | None":
        """The support box of a model with a ``bounds`` tensor (``EnergyModel``, composites), else None."""
        b = getattr(model, "bounds", None)
        return cls(b) if isinstance(b, torch.Tensor) else None

    @property
    def dim(self) -> int:
        return int(self.rows.shape[0])

    @property
    def low(self) -> torch.Tensor:
        return self.rows[:, 0]

    @property
    def high(self) -> torch.Tensor:
        return self.rows[:, 1]

    @property
    def width(self) -> torch.Tensor:
        return self.rows[:, 1] - self.rows[:, 0]

    def tolist(self) -> list[list[float]]:
        return self.rows.tolist()

    def pairs(self) -> list[tuple[float, float]]:
        return [(float(lo), float(hi)) for lo, hi in self.rows.tolist()]

    def broadcast(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(low, high) shaped to broadcast against x [B, *event], in x's dtype and device.

        Cached per (shape, dtype, device): samplers call this every step, and the conversion and
        copy to the device should happen once per run, not once per step."""
        key = (tuple(x.shape[1:]), x.dtype, x.device)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1], self._cache[2]
        event = x.shape[1:]
        n = math.prod(event)
        b = self.rows.to(dtype=x.dtype if x.is_floating_point() else torch.float64, device=x.device)
        if b.shape[0] == 1:
            low, high = b[0, 0].reshape(()), b[0, 1].reshape(())
        elif b.shape[0] != n:
            raise EBMError(f"bounds have {b.shape[0]} pairs (low, high) but each point has {n} coordinates; "
                           "give one pair per coordinate or a single pair for all")
        else:
            low, high = b[:, 0].reshape(1, *event), b[:, 1].reshape(1, *event)
        self._cache = (key, low, high)
        return low, high

    def inside(self, x: torch.Tensor) -> torch.Tensor:
        """Bool [B]: whether every coordinate of each point of x [B, *event] lies in the box."""
        low, high = self.broadcast(x)
        return ((x >= low) & (x <= high)).reshape(x.shape[0], -1).all(dim=1)

    def clamp(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, *event] clamped into the box (a new tensor); one kernel, as samplers call it every step."""
        low, high = self.broadcast(x)
        return torch.clamp(x, low, high)

    def __repr__(self) -> str:
        return f"Box({self.tolist()})"


def intersect(boxes: Iterable[Box | None]) -> Box | None:
    """The intersection of the given boxes (None entries ignored); EBMError when it is empty."""
    given = [b for b in boxes if b is not None]
    if not given:
        return None
    lo = torch.stack([b.low for b in given]).amax(dim=0)
    hi = torch.stack([b.high for b in given]).amin(dim=0)
    if not bool((lo < hi).all()):
        raise EBMError("the models' supports (bounds) do not overlap, so their product is zero everywhere; "
                       "compose models trained on the same region")
    return Box(torch.stack([lo, hi], dim=1))


def register_bounds(module: nn.Module, bounds: BoundsLike | Box | None) -> None:
    """Set ``module.bounds``: a checked float32 [D, 2] buffer (moves with .to(), saved in state_dict) or None."""
    if bounds is not None:
        module.register_buffer("bounds", Box(bounds).rows.float())
    else:
        module.bounds = None


def inside_bounds(x: torch.Tensor, bounds: torch.Tensor | None) -> torch.Tensor:
    """Bool [B] for a model's ``bounds`` buffer (all True when it is None); exact in x's dtype."""
    if bounds is None:
        return torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    flat = x.reshape(x.shape[0], -1)
    # every forward pass of a bounded model runs this: skip the no-op conversion's call, one unbind for two slices
    b = bounds if bounds.dtype == flat.dtype and bounds.device == flat.device else bounds.to(flat.device, flat.dtype)
    low, high = b.unbind(1)
    return ((flat >= low) & (flat <= high)).all(dim=1)


def _short(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) <= 80 else text[:77] + "..."
