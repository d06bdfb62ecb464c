"""Callables as log densities: f(x) -> [B], its score ∇x f, and the methods every density object shares.

Sign convention: f is ``log_density``, the log of the *unnormalised* density; the energy is -f.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ebmlab.errors import EBMError


def score_of(log_density: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
             create_graph: bool = False) -> torch.Tensor:
    """∇x f(x) for any callable f: [B, *event] -> [B]. Parameters receive no ``.grad``."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(log_density(x).sum(), x, create_graph=create_graph)
    return g


def as_log_density(f: Callable[[torch.Tensor], torch.Tensor] | nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """Accept an ``EnergyModel``, anything with ``.log_density``, or a plain callable f: [B, ...] -> [B]."""
    fn = getattr(f, "log_density", None)
    if callable(fn):
        return fn
    if callable(f):
        return f
    raise EBMError(f"expected a model or a callable f(x) -> [B], got {type(f).__name__}")


def placement(f: object) -> tuple[torch.device | None, torch.dtype | None]:
    """(device, dtype) of f's first floating-point parameter or buffer — f a module, or a bound method
    of one — or (None, None) for a plain callable: where, and in what precision, to evaluate f on inputs
    that the caller builds itself (quadrature grids, enumerated states, AIS chains), so that a model
    on a GPU or in float64 is not handed float32 CPU tensors."""
    owner = f if isinstance(f, nn.Module) else getattr(f, "__self__", None)
    if not isinstance(owner, nn.Module):
        return None, None
    for t in [*owner.parameters(), *owner.buffers()]:
        if t.is_floating_point():
            return t.device, t.dtype
    return None, None


def to_model(f: object, x: torch.Tensor) -> torch.Tensor:
    """``x`` on the device and in the dtype of f's weights (``placement``); unchanged for a plain callable.
    For inputs read elsewhere (a CPU float32 test set) that a model on a GPU or in float64 evaluates."""
    device, dtype = placement(f)
    return x if dtype is None else x.to(device=device, dtype=dtype)


class DensityMethods:
    """energy, log_ratio and score for any class that defines ``log_density`` (models, composites)."""

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """-f(x), shape [B]."""
        return -self.log_density(x)

    def log_ratio(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """f(x) - f(y) = log p(x)/p(y), shape [B]; needs no Z."""
        return self.log_density(x) - self.log_density(y)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """∇x f(x), shape like x. Parameters receive no ``.grad``."""
        return score_of(self.log_density, x)
