"""Exact test NLL of low-dimensional models: -mean f(x) + log Z, with Z by quadrature over the support box."""
from __future__ import annotations

from typing import Sequence

import torch

from ebmlab.box import Box
from ebmlab.density import as_log_density, placement, to_model
from ebmlab.errors import EBMError
from ebmlab.estimate.partition import quadrature_log_z


@torch.no_grad()
def exact_nll(model, x: torch.Tensor, bounds: Sequence[Sequence[float]] | None = None,
              points_per_dim: int | None = None) -> dict[str, float]:
    """Mean negative log-likelihood in nats of x [N, d<=3] under exp(f)/Z.

    ``model`` is an ``EnergyModel``, anything with ``log_density``, or a plain callable f: [B, d] -> [B].

    ``bounds`` defaults to the model's support box (``EnergyModel.bounds``); then Z is exact up to
    the grid error. One (lo, hi) pair per coordinate, or a single pair for all of them. Returns
    {"nll", "log_z", "outside"} where ``outside`` counts test points outside the support (they have
    infinite NLL and are reported, not hidden).
    """
    if bounds is None:
        b = getattr(model, "bounds", None)
        if b is None:
            raise EBMError("exact NLL needs a support box: the model has no bounds, pass bounds=[(lo, hi), ...]")
        bounds = b.tolist()
    # one (low, high) pair per coordinate of x, a single pair standing for all of them: a box of
    # another size made a grid of the wrong width, and a shape error deep inside the network
    bounds = Box(bounds, dim=x[0].numel()).pairs()
    # the grid and x go where the model's weights are, in their precision (a float64 model used to get
    # float32 CPU points: a dtype error; a model on a GPU: a device error, e.g. at the end of a 2-D run)
    device, dtype = placement(model)
    lz = quadrature_log_z(model, bounds, points_per_dim, dtype=dtype or torch.float32, device=device)
    f = as_log_density(model)(to_model(model, x))
    inside = torch.isfinite(f)
    nll = float(-(f[inside].double().mean()) + lz.value) if inside.any() else float("inf")
    return {"nll": nll, "log_z": lz.value, "outside": int((~inside).sum())}
