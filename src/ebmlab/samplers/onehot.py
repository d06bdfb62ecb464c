"""What the samplers for categorical states share: K, the one-hot check, and setting one site.

A categorical state is the flat one-hot vector [B, d*K] (``ebmlab.models.categorical``) or [B, d, K];
the samplers work on the view [B, d, K] and give states back in the caller's shape.
"""
from __future__ import annotations

import torch

from ebmlab.errors import EBMError
from ebmlab.samplers.base import ChainState, LogDensity, Sampler


class OneHotSampler(Sampler):
    """A sampler of one-hot categorical states: K resolved at construction (caller, then the model)
    and checked against x0 at ``init`` (or read from x0 [B, d, K]). Subclasses set ``method``, the
    name its errors use, and write ``step``."""

    method = "categorical"

    def __init__(self, f: LogDensity | torch.nn.Module, categories: int | None = None) -> None:
        super().__init__(f)
        self.categories = resolve_categories(f, categories)

    def init(self, x: torch.Tensor) -> ChainState:
        state = super().init(x)
        self.categories = check_one_hot(state.x, self.categories, self.method)
        return state


def resolve_categories(f: object, categories: int | None) -> int | None:
    """K from the caller, else from the model (``Potts.categories``); None: read it from x [B, d, K] at init."""
    k = categories if categories is not None else getattr(f, "categories", None)
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 2):
        raise EBMError(f"categories must be an integer >= 2, got {k!r}")
    return k


def sites_view(x: torch.Tensor, k: int | None, method: str) -> tuple[torch.Tensor, int]:
    """x as [B, d, K] (and K); EBMError when K is unknown or the state is not one-hot per site."""
    if k is None:
        if x.ndim != 3:
            raise EBMError(f"method {method!r} needs the number of categories: pass categories=K, or states "
                           f"shaped [B, d, K]; got x0 of shape {tuple(x.shape)}")
        k = x.shape[-1]
    if x[0].numel() % k:
        raise EBMError(f"method {method!r}: a state of {x[0].numel()} values is not d one-hot blocks of K = {k}")
    return x.reshape(x.shape[0], -1, k), k


def check_one_hot(x: torch.Tensor, k: int | None, method: str) -> int:
    """Refuse starting points that are not one-hot in every site (once, at ``init``); returns K."""
    v, k = sites_view(x, k, method)
    ok = ((v == 0) | (v == 1)).all(-1) & (v.sum(-1) == 1)
    if not bool(ok.all()):
        b, i = (int(t) for t in (~ok).nonzero()[0])
        raise EBMError(f"method {method!r} samples one-hot categorical states, but x0 chain {b} site {i} is "
                       f"{v[b, i].tolist()}; build x0 with ebmlab.models.categorical.one_hot(integers, K)")
    return k


def set_site(v: torch.Tensor, site: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Copy of v [B, d, K] with site ``site[b]`` set to category ``value[b]`` in chain b."""
    out = v.clone()
    rows = torch.arange(v.shape[0], device=v.device)
    out[rows, site] = 0
    out[rows, site, value] = 1
    return out
