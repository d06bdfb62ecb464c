"""Enumerating {0, 1}^d: the states themselves and a chunked float64 log-sum-exp over them.

Lives at the model layer so the discrete models (``RBM``, ``Ising``) can compute their exact log Z;
``ebmlab.estimate.partition`` uses the same helpers.
"""
from __future__ import annotations

from typing import Callable

import torch

from ebmlab.errors import EBMError

MAX_ENUM_BITS = 24   # 2^24 = 16.8M states: a few seconds of a small model on a CPU


def check_enumerable(d: int, what: str = "{0,1}^d") -> None:
    """EBMError (saying how large, offering AIS) unless 2^d states can be enumerated."""
    if d > MAX_ENUM_BITS:
        raise EBMError(f"exact log Z needs enumerating {what} with d = {d}: 2^{d} = {2 ** d:.3g} states, "
                       f"more than the limit 2^{MAX_ENUM_BITS}; use AIS instead (ebmlab eval --log-z ais; "
                       "ebmlab.estimate.binary_ais.binary_ais_log_z)")


def binary_states(d: int, start: int = 0, stop: int | None = None, device: torch.device | str | None = None
                  ) -> torch.Tensor:
    """States ``start .. stop-1`` of {0, 1}^d in binary counting order, float [n, d] (first bit most significant)."""
    check_enumerable(d)
    stop = 2 ** d if stop is None else stop
    idx = torch.arange(start, stop, device=device)
    return ((idx[:, None] >> torch.arange(d - 1, -1, -1, device=device)) & 1).float()


@torch.no_grad()
def enumerate_logsumexp(fn: Callable[[torch.Tensor], torch.Tensor], d: int, chunk: int = 1 << 16,
                        device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
                        ) -> torch.Tensor:
    """log Σ_{x ∈ {0,1}^d} exp fn(x) as a float64 0-d tensor, in chunks of ``chunk`` states.

    States are built chunk by chunk on ``device`` (never all 2^d at once); sums accumulate in float64.
    """
    check_enumerable(d)
    total = torch.tensor(float("-inf"), dtype=torch.float64, device=device)
    for start in range(0, 2 ** d, chunk):
        x = binary_states(d, start, min(start + chunk, 2 ** d), device).to(dtype)
        total = torch.logaddexp(total, torch.logsumexp(fn(x).double(), 0))
    return total
