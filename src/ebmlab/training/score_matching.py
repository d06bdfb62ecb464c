"""Score-matching losses: fit ∇x f to the data's score without MCMC and without log Z.

- ``dsm_loss``: denoising score matching (Vincent 2011). For x̃ = x + σ ε, ε ~ N(0, I), the
  minimiser of E ½ ‖∇f(x̃) + ε / σ‖² is the score of the data convolved with N(0, σ² I), so f
  learns a density blurred by σ. Several levels (Song & Ermon 2019): each example gets a level
  drawn uniformly, weighted by λ(σ) = σ² so every level contributes O(1):
  ½ ‖σ ∇f(x̃) + ε‖². With one level this is σ² times the plain loss (same minimiser).
- ``ssm_loss``: sliced score matching (Song et al. 2019), variance-reduced form
  E_v [vᵀ ∇x s(x) v] + ½ ‖s(x)‖², s = ∇f, v ~ N(0, I): equal in expectation to Hyvärinen's
  score-matching objective (Fisher divergence up to a constant), with one Hessian-vector product
  per direction instead of d backward passes.

Both are blind to the weights of separated modes: a score (a gradient of log p) does not change
when a constant is added to log p in one region, so data whose modes do not touch leave the
relative mass of each mode undetermined (Wenliang & Kanagawa 2020 discuss this failure).

Each takes f (a callable [B, *event] -> [B]) and its noise as tensors, so the correctness tests
can evaluate them on fixed draws; ``training.objectives`` draws the noise from the trainer's
generator. Returns (scalar loss, stats of detached on-device tensors).
"""
from __future__ import annotations

from typing import Callable

import torch

LogDensity = Callable[[torch.Tensor], torch.Tensor]


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1)


def score_with_graph(f: LogDensity, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(f(x) [B], ∇x f(x) [B, *event], the leaf x it was taken at), with a graph to f's parameters
    (create_graph) so the loss can be differentiated again."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        fx = f(x)
        (s,) = torch.autograd.grad(fx.sum(), x, create_graph=True)
    return fx, s, x


def dsm_loss(f: LogDensity, x: torch.Tensor, eps: torch.Tensor, sigma: torch.Tensor
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Denoising score matching, σ²-weighted: mean_i ½ ‖σ_i ∇f(x_i + σ_i ε_i) + ε_i‖².

    Args:
        f: log unnormalised density.
        x: [B, *event] clean data; eps: [B, *event] standard normal noise; sigma: [B] each example's level.
    Stats: ``dsm`` (the loss), ``score_norm`` (mean ‖∇f(x̃)‖).
    """
    sig = sigma.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)
    _, s, _ = score_with_graph(f, x + sig * eps)
    per = 0.5 * _flat(sig * s + eps).pow(2).sum(1)
    loss = per.mean()
    return loss, {"dsm": loss.detach(), "score_norm": _flat(s).detach().norm(dim=1).mean()}


def ssm_loss(f: LogDensity, x: torch.Tensor, v: torch.Tensor, variance_reduced: bool = True
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Sliced score matching, variance-reduced: mean over (x, v) of vᵀ ∇s(x) v + ½ ‖s(x)‖² (or with
    ``variance_reduced`` False the plain form vᵀ ∇s(x) v + ½ (vᵀ s(x))², equal in expectation for
    directions with E[v vᵀ] = I: standard normal or Rademacher).

    Args:
        f: log unnormalised density.
        x: [B, *event] data; v: [M, B, *event] M random directions per point (E[v vᵀ] = I).
    Returns (loss, stats): ``f_pos`` mean f(x) (what the divergence guard watches), ``ssm_hess``
    mean vᵀ∇s v, ``ssm_norm`` mean ½‖s‖².
    """
    m = v.shape[0]
    xr = x.detach().unsqueeze(0).expand(m, *x.shape).reshape(m * x.shape[0], *x.shape[1:])
    fx, s, leaf = score_with_graph(f, xr)
    vf = v.reshape(m * x.shape[0], *x.shape[1:])
    # Hessian-vector product ∇x (vᵀ s): one more backward pass for all directions, batched
    (hv,) = torch.autograd.grad((s * vf).sum(), leaf, create_graph=True, allow_unused=True)
    if hv is None:                      # f linear in x: the Hessian is zero
        hv = torch.zeros_like(vf)
    hess = (_flat(hv) * _flat(vf)).sum(1)
    norm = 0.5 * (_flat(s).pow(2).sum(1) if variance_reduced else (_flat(s) * _flat(vf)).sum(1).pow(2))
    loss = (hess + norm).mean()
    return loss, {"f_pos": fx.detach().mean(), "ssm_hess": hess.detach().mean(), "ssm_norm": norm.detach().mean()}
