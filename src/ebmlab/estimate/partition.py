"""Exact log Z: grid quadrature for d <= 3 and enumeration of small discrete spaces.

The curse of dimensionality in one line: a grid with n points per axis costs n^d
evaluations of f, so 200 points per axis is 200 (d=1), 40 000 (d=2), 8 million (d=3)
and 1.6e11 (d=5) — which is why ``log_z`` refuses quadrature above d = 3 and offers AIS.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from ebmlab.box import Box, BoundsLike
from ebmlab.errors import EBMError
from ebmlab.density import as_log_density, placement
from ebmlab.estimate.result import LogZEstimate, exact_value
from ebmlab.models.binary import binary_states as _binary_states

MAX_QUADRATURE_DIM = 3
DEFAULT_POINTS = {1: 4001, 2: 400, 3: 100}


def grid_cost(d: int, points_per_dim: int) -> int:
    """Number of f evaluations a d-dimensional grid with ``points_per_dim`` per axis needs."""
    return points_per_dim ** d


def quadrature_grid(bounds: Sequence[Sequence[float]], points_per_dim: int) -> tuple[torch.Tensor, float]:
    """Midpoint grid over a box: returns (points [n^d, d] float64, cell volume)."""
    axes, vol = [], 1.0
    for lo, hi in bounds:
        h = (hi - lo) / points_per_dim
        axes.append(lo + h * (torch.arange(points_per_dim, dtype=torch.float64) + 0.5))
        vol *= h
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], 1), vol


@torch.no_grad()
def quadrature_log_z(f, bounds: BoundsLike | Box, points_per_dim: int | None = None,
                     batch_size: int = 65536, dtype: torch.dtype | None = None,
                     device: torch.device | str | None = None) -> LogZEstimate:
    """log ∫_box exp f(x) dx by the midpoint rule, accumulated with a streaming log-sum-exp.

    Args:
        f: a model or callable [B, d] -> [B].
        bounds: ``[(lo, hi)] * d`` with d <= 3 (anything ``Box`` reads; a single pair means d = 1).
            Mass outside the box is not counted: for a model with a support box
            (``EnergyModel(bounds=...)``) pass exactly that box and Z is exact up to the grid's
            discretisation error.
        points_per_dim: grid resolution (default 4001 / 400 / 100 for d = 1 / 2 / 3).
        dtype, device: what the grid is evaluated in; None (default) follows f's weights
            (``density.placement``: a float64 or GPU model gets a float64 or GPU grid), float32 on the
            CPU for a plain callable.
    """
    fn = as_log_density(f)
    own_device, own_dtype = placement(f)
    dtype = dtype or own_dtype or torch.float32
    device = device if device is not None else own_device
    bounds = Box(bounds).pairs()   # EBMError unless every pair is finite with low < high
    d = len(bounds)
    if d > MAX_QUADRATURE_DIM:
        raise EBMError(f"quadrature works for 1 <= d <= {MAX_QUADRATURE_DIM} (a grid costs n^d evaluations); "
                       f"got d = {d}; use method='ais' instead")
    for name, v in (("points_per_dim", points_per_dim), ("batch_size", batch_size)):
        # a float such as 2.5 made arange(2.5) = 3 points with cells of width/2.5: a wrong log Z, silently
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise EBMError(f"{name} must be an integer >= 1, got {v!r}")
    n = points_per_dim or DEFAULT_POINTS[d]
    pts, vol = quadrature_grid(bounds, n)
    total = torch.tensor(float("-inf"), dtype=torch.float64)
    for chunk in pts.split(batch_size):
        lf = fn(chunk.to(dtype=dtype, device=device)).double().cpu()
        if torch.isnan(lf).any() or torch.isposinf(lf).any():
            raise EBMError("f is NaN or +inf somewhere on the quadrature grid; log Z is undefined there")
        total = torch.logaddexp(total, torch.logsumexp(lf, 0))
    return LogZEstimate(float(total) + math.log(vol), 0.0, "quadrature",
                        {"points_per_dim": n, "evaluations": grid_cost(d, n), "bounds": bounds})


@torch.no_grad()
def enumerate_log_z(f, states: torch.Tensor, batch_size: int = 65536) -> LogZEstimate:
    """log Σ_x exp f(x) over every state of a small discrete space, given as ``states`` [S, *event]."""
    fn = as_log_density(f)
    total = torch.tensor(float("-inf"), dtype=torch.float64)
    for chunk in states.split(batch_size):
        total = torch.logaddexp(total, torch.logsumexp(fn(chunk).double(), 0))
    return LogZEstimate(exact_value(total, "enumeration"), 0.0, "enumeration", {"states": states.shape[0]})


def binary_states(d: int) -> torch.Tensor:
    """All 2^d vectors of {0, 1}^d as float [2^d, d] (refuses d > 24: 16M states; say how large, offer AIS)."""
    return _binary_states(d)
