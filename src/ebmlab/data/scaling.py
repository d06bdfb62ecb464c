"""The one data scaling: the model sees data in [-1, 1]; samples go back to the input scale.

An affine map per element, ``model = 2 * (x - low) / (high - low) - 1``, with ``low``/``high``
either scalars (images: one range for every pixel, e.g. digits 0..16, PNG 0..255) or arrays
broadcastable against one example (vectors: per-feature min/max). The map is stored as a small
JSON-able dict so a run directory can write samples back in the scale of its training data.

Image sets are *stored* in their own scale (uint8 0..255 for image folders, uint8 0..16 for the
built-in digits) and converted with ``to_model`` one batch at a time (``DataSet.to_model``); the
float32 values are the same as converting the whole set at once, because the map is elementwise.

Why [-1, 1]: the short-run recipe starts chains from uniform noise in [-1, 1] and clamps there,
and Langevin step sizes quoted in papers (step 10 / noise 0.005, step 1 / noise 0.01) assume it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ebmlab.errors import EBMError

_MODES = ("global", "per_feature", "per_channel")


@dataclass(frozen=True)
class Scaling:
    """Affine map between the data scale and the model scale [-1, 1].

    Attributes:
        low, high: data values that map to -1 and +1. Floats, or tensors shaped like one
            example (``per_feature``: ``x.shape[1:]``; ``per_channel``: ``[C, 1, 1]``).
        mode: how they were fitted: ``"global"``, ``"per_feature"`` or ``"per_channel"``.
    """

    low: float | torch.Tensor
    high: float | torch.Tensor
    mode: str = "global"

    # ---- construction -------------------------------------------------------------------
    @staticmethod
    def from_range(low: float, high: float) -> "Scaling":
        """A fixed range known in advance, e.g. ``from_range(0, 255)`` for 8-bit images."""
        low, high = float(low), float(high)
        if not (np.isfinite(low) and np.isfinite(high) and high > low):
            raise EBMError(f"a data range needs finite low < high, got ({low}, {high})")
        return Scaling(low, high, "global")

    @staticmethod
    def fit(x: torch.Tensor | np.ndarray, mode: str = "global") -> "Scaling":
        """Fit the observed min/max of ``x`` [N, *event].

        ``global``: one range for all elements (images). ``per_feature``: min/max over the batch
        for every element of the event (vectors). ``per_channel``: per channel of [N, C, H, W].
        A constant feature (max == min) gets a range of width 2 centred on it, so it is kept,
        not divided by zero.
        """
        t = _as_float_tensor(x)
        if t.ndim < 1 or t.shape[0] == 0:
            raise EBMError("cannot fit a scaling to an empty array; give at least one example")
        if not bool(torch.isfinite(t).all()):
            raise EBMError("the data contain NaN or infinite values; clean them before training")
        if mode == "global":
            low, high = float(t.min()), float(t.max())
            if high <= low:
                low, high = low - 1.0, high + 1.0
            return Scaling(low, high, "global")
        if mode == "per_feature":
            low, high = t.amin(dim=0), t.amax(dim=0)
        elif mode == "per_channel":
            if t.ndim != 4:
                raise EBMError(f"per_channel scaling needs images [N, C, H, W], got shape {tuple(t.shape)}")
            low, high = t.amin(dim=(0, 2, 3), keepdim=True)[0], t.amax(dim=(0, 2, 3), keepdim=True)[0]
        else:
            raise EBMError(f"unknown scaling mode {mode!r}; choose one of {list(_MODES)}")
        flat = high <= low
        low, high = torch.where(flat, low - 1.0, low), torch.where(flat, high + 1.0, high)
        return Scaling(low, high, mode)

    @staticmethod
    def infer(x: torch.Tensor | np.ndarray) -> "Scaling":
        """Guess the *nominal* range of image data, so samples go back to the same convention.

        uint8 -> 0..255; floats already inside [0, 1] -> 0..1; inside [-1, 1] -> -1..1
        (identity); anything else -> the observed global min/max. Nominal beats observed here:
        a folder whose brightest pixel is 250 should still be written back as 0..255.
        """
        is_u8 = (isinstance(x, np.ndarray) and x.dtype == np.uint8) or (
            isinstance(x, torch.Tensor) and x.dtype == torch.uint8)
        if is_u8:
            return Scaling.from_range(0, 255)
        t = _as_float_tensor(x)
        if t.numel() == 0:
            raise EBMError("cannot infer a scaling from an empty array")
        if not bool(torch.isfinite(t).all()):
            raise EBMError("the data contain NaN or infinite values; clean them before training")
        lo, hi = float(t.min()), float(t.max())
        if lo >= 0.0 and hi <= 1.0:
            return Scaling.from_range(0, 1)
        if lo >= -1.0 and hi <= 1.0:
            return Scaling.from_range(-1, 1)
        return Scaling.fit(t, "global")

    # ---- the map ------------------------------------------------------------------------
    def to_model(self, x: torch.Tensor | np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Data scale -> model scale [-1, 1]; same shape as ``x``, float ``dtype``.

        Elementwise: converting a batch of a stored (e.g. uint8) set gives exactly the float values
        of converting the whole set. When ``x`` is a tensor of another dtype the conversion's own
        copy is updated in place (one temporary, not three); ``x`` itself is never modified.
        """
        t = _as_float_tensor(x, dtype)
        low, high = self._bounds(t)
        if isinstance(x, torch.Tensor) and x.dtype != dtype:      # t is a fresh copy: reuse it
            return t.sub_(low).mul_(2.0 / (high - low)).sub_(1.0)
        return (t - low) * (2.0 / (high - low)) - 1.0

    def from_model(self, y: torch.Tensor, clip: bool = False) -> torch.Tensor:
        """Model scale -> data scale; with ``clip`` the result is clamped to [low, high]."""
        t = _as_float_tensor(y, y.dtype if isinstance(y, torch.Tensor) and y.is_floating_point() else torch.float32)
        if clip:
            t = t.clamp(-1.0, 1.0)
        low, high = self._bounds(t)
        return (t + 1.0) * ((high - low) / 2.0) + low

    def _bounds(self, t: torch.Tensor) -> tuple[Any, Any]:
        if isinstance(self.low, torch.Tensor):
            return self.low.to(t.device, t.dtype), self.high.to(t.device, t.dtype)
        return self.low, self.high

    # ---- JSON round trip ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: ``{"kind": "affine", "mode", "low", "high"}`` (floats or nested lists)."""
        def enc(v: float | torch.Tensor) -> Any:
            return v.tolist() if isinstance(v, torch.Tensor) else float(v)
        return {"kind": "affine", "mode": self.mode, "low": enc(self.low), "high": enc(self.high)}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "Scaling":
        """Inverse of ``to_dict``."""
        if not isinstance(d, dict) or d.get("kind", "affine") != "affine" or "low" not in d or "high" not in d:
            raise EBMError(f"not a scaling dict (expected kind 'affine' with low/high): {d!r}")
        mode = d.get("mode", "global")
        if mode not in _MODES:
            raise EBMError(f"unknown scaling mode {mode!r} in saved scaling; choose one of {list(_MODES)}")

        def dec(v: Any) -> float | torch.Tensor:
            return torch.tensor(v, dtype=torch.float32) if isinstance(v, list) else float(v)
        return Scaling(dec(d["low"]), dec(d["high"]), mode)

    def __eq__(self, other: object) -> bool:  # tensors make the dataclass __eq__ ambiguous
        return isinstance(other, Scaling) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))


def _as_float_tensor(x: torch.Tensor | np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    return x.to(dtype)
