"""Score-matching losses: fit ∇x f to the data's score without MCMC and without log Z.

- ``dsm_loss``: denoising score matching (Vincent 2011). For x̃ = x + σ ε, ε ~ N(0, I), the
  minimiser of E ½ ‖∇f(x̃) + ε / σ‖² is the score of the data convolved with N(0, σ² I), so f
  learns a density blurred by σ. Several levels (Song & Ermon 2019): each example gets a level
  drawn uniformly, weighted by λ(σ) = σ² so every level contributes O(1):
  ½ ‖σ ∇f(x̃) + ε‖². With one level this is σ² times the plain loss (same minimiser).
- ``ssm_loss``: sliced score matching (Song et al. 2019), variance-reduced form
  E_v [vᵀ ∇x s(x) v] + ½ ‖s(x)‖², s = ∇f, v ~ N(0, I): equal in expectation to Hyvärinen's
  score-matching objective (Fisher divergence up to a constant), with one Hessian-vector product
  per direction instead of d backward passes. ``orthogonal_directions`` draws each point's M directions
  as rows of one random orthogonal frame times √d: still E[v vᵀ] = I, and with M = d the Hessian trace
  Σ_m vᵀ∇s v / M is exact (no slicing variance) at the cost of d Hessian-vector products.

Both are blind to the weights of separated modes: a score (a gradient of log p) does not change
when a constant is added to log p in one region, so data whose modes do not touch leave the
relative mass of each mode undetermined (Wenliang & Kanagawa 2020 discuss this failure).

Each takes f (a callable [B, *event] -> [B]) and its noise as tensors, so the correctness tests
can evaluate them on fixed draws; ``training.objectives`` draws the noise from the trainer's
generator. Returns (scalar loss, stats of detached on-device tensors).
"""
from __future__ import annotations

import math
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


def dsm_loss(f: LogDensity, x: torch.Tensor, eps: torch.Tensor, sigma: torch.Tensor, antithetic: bool = False
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Denoising score matching, σ²-weighted: mean_i ½ ‖σ_i ∇f(x_i + σ_i ε_i) + ε_i‖².

    With ``antithetic`` each example's term is the mean of its terms at ε_i and -ε_i (one batched forward of
    2B points). Why: the expectation is the same (-ε is as likely as ε), but at a small σ most of the
    gradient's noise is of first order in ε (σ εᵀ ∂∇f(x)/∂θ), which the pair cancels; for a linear score the
    pair's gradient is free of ε (tests/test_dsm_antithetic.py). The loss's value keeps its own noise (½‖ε‖²
    is even in ε). Measured on 2-D data: results/objectives2d_dsm_antithetic_s18.md.

    Args:
        f: log unnormalised density.
        x: [B, *event] clean data; eps: [B, *event] standard normal noise; sigma: [B] each example's level.
    Stats: ``dsm`` (the loss), ``score_norm`` (mean ‖∇f(x̃)‖ over every noised point).
    """
    if antithetic:
        x, eps, sigma = torch.cat([x, x]), torch.cat([eps, -eps]), torch.cat([sigma, sigma])
    sig = sigma.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)
    _, s, _ = score_with_graph(f, x + sig * eps)
    per = 0.5 * _flat(sig * s + eps).pow(2).sum(1)
    loss = per.mean()          # with the pairs: the mean over examples of each pair's mean
    return loss, {"dsm": loss.detach(), "score_norm": _flat(s).detach().norm(dim=1).mean()}


def orthogonal_directions(m: int, shape: tuple[int, ...] | torch.Size, gen: torch.Generator,
                          device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """[m, B, *event] directions for ``ssm_loss``: point b's m directions are √d times m orthonormal rows of a
    Haar-random d x d orthogonal frame (d = numel of one event), drawn from ``gen``.

    Why: each row is √d times a uniform unit vector, so E[v vᵀ] = I as for Gaussian directions (the loss stays
    unbiased), and the rows of one frame are orthogonal, so the slicing estimate (1/m) Σ vᵀ∇s v of the Hessian
    trace is exact when m = d (in 2-D: two Hessian-vector products per point and no slicing noise), and
    for m < d an orthogonal subset, of lower variance than m independent Gaussian directions. m > d stacks
    ceil(m / d) independent frames.
    How: the reduced QR of a d x k standard normal matrix, with the signs of R's diagonal moved into Q, gives
    k Haar-distributed orthonormal columns (Mezzadri 2007) for O(d k²) per point, not O(d³).

    Args:
        m: directions per point (>= 1); shape: (B, *event) of the batch x; gen: generator on ``device``.
    """
    b, d = shape[0], math.prod(shape[1:])
    work = dtype if dtype in (torch.float32, torch.float64) else torch.float32     # QR needs float32 / 64
    cols = []
    for k in [d] * (m // d) + ([m % d] if m % d else []):
        g = torch.randn((b, d, k), generator=gen, device=device, dtype=work)
        q, r = torch.linalg.qr(g, mode="reduced")                           # q [B, d, k], r [B, k, k]
        sign = torch.where(torch.diagonal(r, dim1=-2, dim2=-1) < 0, -1.0, 1.0)
        cols.append(q * sign.unsqueeze(1))
    v = torch.cat(cols, 2).permute(2, 0, 1) * math.sqrt(d)                  # [m, B, d]
    return v.reshape(m, *shape).to(dtype)


def ssm_loss(f: LogDensity, x: torch.Tensor, v: torch.Tensor, variance_reduced: bool = True
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Sliced score matching, variance-reduced: mean over (x, v) of vᵀ ∇s(x) v + ½ ‖s(x)‖² (or with
    ``variance_reduced`` False the plain form vᵀ ∇s(x) v + ½ (vᵀ s(x))², equal in expectation for
    directions with E[v vᵀ] = I: standard normal, Rademacher or ``orthogonal_directions``).

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
