"""Categorical states {0, ..., K-1}^d as one-hot vectors, and a chunked float64 log-sum-exp over all K^d.

Inside ebmlab a categorical state is the flat one-hot vector [B, d*K] (site i's K indicators at
columns i*K .. i*K+K-1): networks and the gradient samplers see {0, 1} inputs, and the integers come
back with ``from_one_hot``. Lives at the model layer so ``Potts`` can compute its exact log Z;
``ebmlab.estimate.discrete`` sums any other f the same way.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch.nn import functional as F

from ebmlab.errors import EBMError
from ebmlab.models.binary import MAX_ENUM_BITS

MAX_ENUM_STATES = 2 ** MAX_ENUM_BITS   # the same limit as {0,1}^d: 16.8M states


def check_categories(k: object) -> int:
    """K must be an integer >= 2."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise EBMError(f"categories must be an integer >= 2, got {k!r}")
    return k


def check_enumerable_categorical(d: int, k: int) -> None:
    """EBMError (saying how large, offering AIS) unless K^d states can be enumerated."""
    if d * math.log2(k) > MAX_ENUM_BITS + 1e-9:
        raise EBMError(f"exact log Z needs enumerating {{0..{k - 1}}}^{d}: {k}^{d} = {float(k) ** d:.3g} states, "
                       f"more than the limit 2^{MAX_ENUM_BITS}; there is no AIS for categorical states yet, so "
                       "an exact likelihood needs fewer sites or categories")


def one_hot(x: torch.Tensor, k: int) -> torch.Tensor:
    """Integers x [N, *shape] in 0..K-1 -> float one-hot [N, prod(shape) * K] (site-major)."""
    return F.one_hot(x.reshape(x.shape[0], -1).long(), k).reshape(x.shape[0], -1).float()


def from_one_hot(y: torch.Tensor, k: int, shape: tuple[int, ...] | list[int] | None = None) -> torch.Tensor:
    """One-hot [N, d*K] (or [N, d, K]) -> integers int64 [N, *shape] (shape defaults to (d,))."""
    idx = y.reshape(y.shape[0], -1, k).argmax(-1)
    return idx.reshape(y.shape[0], *shape) if shape is not None else idx


def categorical_states(d: int, k: int, start: int = 0, stop: int | None = None,
                       device: torch.device | str | None = None) -> torch.Tensor:
    """States ``start .. stop-1`` of {0..K-1}^d in counting order (first site most significant) as
    one-hot float [n, d*K]."""
    check_enumerable_categorical(d, k)
    stop = k ** d if stop is None else stop
    idx = torch.arange(start, stop, device=device)
    powers = k ** torch.arange(d - 1, -1, -1, device=device)
    digits = (idx[:, None] // powers) % k
    return F.one_hot(digits, k).reshape(idx.shape[0], d * k).float()


@torch.no_grad()
def enumerate_categorical_logsumexp(fn: Callable[[torch.Tensor], torch.Tensor], d: int, k: int,
                                    chunk: int = 1 << 15, device: torch.device | str | None = None,
                                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """log Σ_{x ∈ {0..K-1}^d} exp fn(one_hot(x)) as a float64 0-d tensor; ``fn``: [n, d*K] -> [n].

    States are built chunk by chunk on ``device`` (never all K^d at once); sums accumulate in float64.
    """
    check_enumerable_categorical(d, k)
    total = torch.tensor(float("-inf"), dtype=torch.float64, device=device)
    n = k ** d
    for start in range(0, n, chunk):
        x = categorical_states(d, k, start, min(start + chunk, n), device).to(dtype)
        total = torch.logaddexp(total, torch.logsumexp(fn(x).double(), 0))
    return total
