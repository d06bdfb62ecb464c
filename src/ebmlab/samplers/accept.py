"""The single Metropolis–Hastings accept/reject rule every calibrated sampler (and AIS) uses.

The rule (Metropolis et al. 1953; Hastings 1970): with log_alpha = f(x') - f(x) (+ the proposal correction
log q(x|x') - log q(x'|x) for asymmetric proposals), accept when log_alpha >= 0, otherwise accept
with probability exp(log_alpha). Decided per chain; nothing leaves the device.
"""
from __future__ import annotations

import torch

from ebmlab.samplers.base import per_chain


def mh_accept(log_alpha: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Accepted [B] bool for log acceptance ratios log_alpha [B].

    accepted = (log_alpha >= 0) | (u < exp(log_alpha)), u ~ U[0, 1) from ``generator``, one per chain.
    The explicit ``>=`` branch is the textbook "if f(x') >= f(x) accept" (ties are accepted, with no
    dependence on u). NaN compares False on both sides, so a NaN ratio is always rejected; -inf is
    rejected because u < 0 never holds.
    """
    u = torch.rand(log_alpha.shape, generator=generator, dtype=log_alpha.dtype, device=log_alpha.device)
    return (log_alpha >= 0) | (u < torch.exp(log_alpha))


def accept_prob(log_alpha: torch.Tensor) -> torch.Tensor:
    """min(1, exp(log_alpha)) [B]; NaN counts as 0 (it is always rejected)."""
    return torch.exp(torch.clamp(log_alpha, max=0.0)).nan_to_num(nan=0.0)


def guard(log_alpha: torch.Tensor, proposal_log_density: torch.Tensor) -> torch.Tensor:
    """Force rejection where f(proposal) is not finite (NaN, +inf from a blown-up network, -inf support).

    Without it a proposal with f = +inf would give log_alpha = +inf and be accepted.
    """
    return torch.where(torch.isfinite(proposal_log_density), log_alpha,
                       torch.full_like(log_alpha, float("-inf")))


def mh_select(log_alpha: torch.Tensor, proposal_log_density: torch.Tensor,
              generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Guarded accept decision: returns (accepted [B] bool, accept_prob [B]).

    The same decision as ``mh_accept`` from the same u, with one exp instead of two (every MH step of
    training's chains runs this): where log_alpha < 0, exp(min(log_alpha, 0)) is exp(log_alpha) bit for
    bit; where log_alpha >= 0 both accept (u < 1 always holds too); NaN is rejected by both."""
    log_alpha = guard(log_alpha, proposal_log_density)
    u = torch.rand(log_alpha.shape, generator=generator, dtype=log_alpha.dtype, device=log_alpha.device)
    p = torch.exp(torch.clamp(log_alpha, max=0.0))
    return (log_alpha >= 0) | (u < p), p.nan_to_num(nan=0.0)


def where_accepted(accepted: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """Per chain: ``new`` where accepted else ``old``; accepted [B], new/old [B, *event] or [B]."""
    return torch.where(per_chain(accepted, new), new, old)
