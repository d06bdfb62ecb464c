"""Exact log Z and test NLL of models on {0, 1}^d by enumerating every state (d <= 24).

Models that know a cheaper exact sum (``RBM.log_z`` enumerates its smaller side, ``Ising.log_z``)
are asked for it; any other f is summed over all 2^d states in chunks with float64 accumulation
(``models.binary.enumerate_logsumexp``). Above 2^24 states: an EBMError that says how large.
"""
from __future__ import annotations

import torch

from ebmlab.density import as_log_density, placement, to_model
from ebmlab.errors import EBMError
from ebmlab.estimate.result import LogZEstimate, exact_value
from ebmlab.models.binary import check_enumerable, enumerate_logsumexp
from ebmlab.models.categorical import check_enumerable_categorical, enumerate_categorical_logsumexp


@torch.no_grad()
def binary_log_z(f, dim: int, chunk: int = 1 << 16) -> LogZEstimate:
    """log Σ_{x ∈ {0,1}^dim} exp f(x), exact (stderr 0). ``f``: a model or callable [B, dim] -> [B]."""
    own = getattr(f, "log_z", None)
    if callable(own) and getattr(f, "event_shape", None) is not None:
        return LogZEstimate(float(own()), 0.0, "enumeration", {"dim": dim, "model": type(f).__name__})
    check_enumerable(dim)
    device, dtype = placement(f)
    value = enumerate_logsumexp(as_log_density(f), dim, chunk=chunk, device=device, dtype=dtype or torch.float32)
    return LogZEstimate(exact_value(value, "enumeration"), 0.0, "enumeration", {"dim": dim, "states": 2 ** dim})


@torch.no_grad()
def exact_binary_nll(model, x: torch.Tensor) -> dict[str, float]:
    """Mean NLL in nats of binary points x [N, d] under exp(f)/Z with Z by enumeration.

    Returns {"nll", "log_z"}; EBMError for non-binary x or d > 24.
    """
    x = x.reshape(x.shape[0], -1)
    if not bool(((x == 0) | (x == 1)).all()):
        raise EBMError("exact_binary_nll needs points in {0, 1}^d")
    lz = binary_log_z(model, x.shape[1])
    f = as_log_density(model)(to_model(model, x.float()))
    return {"nll": float(-(f.double().mean()) + lz.value), "log_z": lz.value}


@torch.no_grad()
def categorical_log_z(f, sites: int, k: int, chunk: int = 1 << 15) -> LogZEstimate:
    """log Σ_{x ∈ {0..K-1}^sites} exp f(one_hot(x)), exact (stderr 0). ``f``: [B, sites*K] -> [B];
    a model with its own exact ``log_z`` and ``categories`` (``Potts``) is asked for it."""
    own = getattr(f, "log_z", None)
    if callable(own) and getattr(f, "categories", None) == k:
        return LogZEstimate(float(own()), 0.0, "enumeration", {"sites": sites, "model": type(f).__name__})
    check_enumerable_categorical(sites, k)
    device, dtype = placement(f)
    value = enumerate_categorical_logsumexp(as_log_density(f), sites, k, chunk=chunk, device=device,
                                            dtype=dtype or torch.float32)
    return LogZEstimate(exact_value(value, "enumeration"), 0.0, "enumeration",
                        {"sites": sites, "states": k ** sites})


@torch.no_grad()
def exact_categorical_nll(model, x: torch.Tensor, k: int) -> dict[str, float]:
    """Mean NLL in nats of one-hot points x [N, d*K] under exp(f)/Z with Z by enumerating all K^d states.

    Returns {"nll", "log_z"}; EBMError for points that are not one-hot or K^d > 2^24.
    """
    x = x.reshape(x.shape[0], -1)
    v = x.reshape(x.shape[0], -1, k)
    if not bool((((v == 0) | (v == 1)).all(-1) & (v.sum(-1) == 1)).all()):
        raise EBMError("exact_categorical_nll needs one-hot points [N, d*K]")
    lz = categorical_log_z(model, v.shape[1], k)
    f = as_log_density(model)(to_model(model, x.float()))
    return {"nll": float(-(f.double().mean()) + lz.value), "log_z": lz.value}
