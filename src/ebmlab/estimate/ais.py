"""Annealed importance sampling (Neal 2001): log Z in any dimension, with a reverse upper bound.

The path is geometric, f_β(x) = (1 - β) log q(x) + β f(x) for 0 = β_0 < ... < β_K = 1, where q
is a normalised base (a Gaussian fitted to ``x_ref``, or uniform over a box). Each chain starts
from q, collects the log weight Σ_k (β_k - β_{k-1}) (f - log q)(x_{k-1}) and moves with a MALA
transition that leaves f_{β_k} invariant. E[w] = Z, so the log-mean-exp of the weights is a
stochastic *lower* bound of log Z (Jensen). Run backwards from exact samples of p (``x_ref``) the
same path gives E[w_rev] = 1/Z, hence a stochastic *upper* bound (Grosse et al. 2015, "BDMC").

Everything runs in whitened coordinates y (x = loc + L y), where the base is N(0, I) or U[0, 1]^d:
MALA there is MALA preconditioned by the base's covariance, which is what makes an ill-conditioned
target cheap. The weights are the same numbers as in x space; log Z_x = log Z_y + log|det L|.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

import torch

from ebmlab.box import Box, BoundsLike
from ebmlab.errors import EBMError, first_evaluation
from ebmlab.density import as_log_density, placement
from ebmlab.estimate.result import LogZEstimate
from ebmlab.samplers.accept import mh_select, where_accepted
from ebmlab.samplers.mala import mala_log_q_ratio, mala_propose

DEFAULT_N_CHAINS = 256
DEFAULT_N_TEMPS = 500
DEFAULT_STEPS_PER_TEMP = 1
TARGET_ACCEPT = 0.574          # optimal MALA acceptance (Roberts & Rosenthal 1998)
BASE_WIDEN = 1.1               # base std = 1.1 x the data's: IS weights need a base with heavier tails
MAX_ELEMENTS = 2 ** 28         # n_chains * d above this will not fit comfortably in memory
_ADAPT_RATE = 0.5              # log step += rate * (mean acceptance - target), once per step
_N_WARMUP = 25                 # adaptation-only MALA steps at β = 0, where the chains are exact anyway


@dataclass(frozen=True)
class AISBase:
    """The base q and the whitening map x = loc + scale · y.

    kind: "gaussian" (y ~ N(0, I)) or "uniform" (y ~ U[0, 1]^d). ``scale`` is a lower-triangular
    [d, d] Cholesky factor (full Gaussian) or a [d] vector (diagonal Gaussian, box widths).
    """

    kind: str
    loc: torch.Tensor
    scale: torch.Tensor
    event_shape: tuple[int, ...]

    @property
    def dim(self) -> int:
        return self.loc.shape[0]

    @property
    def log_det(self) -> float:
        """log|det dx/dy|."""
        s = self.scale.diagonal() if self.scale.ndim == 2 else self.scale
        return float(torch.log(s.double()).sum())

    def to_x(self, y: torch.Tensor) -> torch.Tensor:
        """y [B, d] -> x [B, *event]."""
        x = y @ self.scale.T + self.loc if self.scale.ndim == 2 else y * self.scale + self.loc
        return x.reshape(y.shape[0], *self.event_shape)

    def to_y(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, *event] -> y [B, d]."""
        r = x.reshape(x.shape[0], -1).to(self.loc.dtype) - self.loc
        if self.scale.ndim == 2:
            return torch.linalg.solve_triangular(self.scale, r.T, upper=False).T
        return r / self.scale

    def log_q(self, y: torch.Tensor) -> torch.Tensor:
        """Normalised log density of the whitened base at y [B, d] -> [B]."""
        if self.kind == "uniform":
            inside = ((y >= 0) & (y <= 1)).all(1)
            return torch.where(inside, 0.0, float("-inf")).to(y.dtype)
        return -0.5 * (y * y).sum(1) - 0.5 * self.dim * math.log(2 * math.pi)

    def grad_log_q(self, y: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(y) if self.kind == "uniform" else -y

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n whitened draws y [n, d] (the first use of ``generator`` in ``ais_log_z``)."""
        shape, kw = (n, self.dim), dict(generator=generator, dtype=self.loc.dtype, device=self.loc.device)
        return torch.rand(shape, **kw) if self.kind == "uniform" else torch.randn(shape, **kw)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised log q(x) in data space, x [B, *event] -> [B]."""
        return self.log_q(self.to_y(x)) - self.log_det


def fit_base(x_ref: torch.Tensor | None, base: str = "gaussian",
             bounds: BoundsLike | Box | None = None, widen: float = BASE_WIDEN,
             dtype: torch.dtype | None = None, device: torch.device | None = None) -> AISBase:
    """Build the AIS base from reference data [N, *event] (Gaussian) or from a box (uniform).

    The base (and so every chain) takes x_ref's dtype and device; without x_ref, ``dtype`` and
    ``device`` (default float32 on the CPU).

    The Gaussian uses the full covariance when N >= 2 (d + 1) and the diagonal otherwise (too few
    points to estimate d² entries); its std is widened by ``widen`` and its variances floored, so a
    constant feature (a blank pixel) does not make it singular.
    """
    if base == "uniform":
        if bounds is None:
            raise EBMError("base='uniform' needs bounds=[(low, high)] * d")
        # Box checks the pairs and, given x_ref, that there is one pair per coordinate (or one for all)
        box = Box(bounds) if x_ref is None else Box(bounds, dim=math.prod(x_ref.shape[1:]))
        event = tuple(x_ref.shape[1:]) if x_ref is not None else (box.dim,)
        dtype = x_ref.dtype if x_ref is not None else (dtype or torch.float32)
        device = x_ref.device if x_ref is not None else device
        return AISBase("uniform", box.low.to(dtype=dtype, device=device),
                       box.width.to(dtype=dtype, device=device), event)
    if base != "gaussian":
        raise EBMError(f"unknown AIS base {base!r}; choose 'gaussian' or 'uniform'")
    if x_ref is None:
        raise EBMError("base='gaussian' needs x_ref (data to fit it to); or pass base='uniform' with bounds")
    n = x_ref.shape[0]
    flat = x_ref.reshape(n, -1).double()
    d = flat.shape[1]
    loc = flat.mean(0)
    cov = torch.cov(flat.T).reshape(d, d)
    var = cov.diagonal()
    floor = 1e-6 * float(var.mean()) + 1e-12
    if n >= 2 * (d + 1):
        cov = cov + floor * torch.eye(d, dtype=cov.dtype, device=cov.device)
        scale = torch.linalg.cholesky(cov) * widen
    else:
        scale = var.clamp_min(floor).sqrt() * widen
    return AISBase("gaussian", loc.to(x_ref.dtype), scale.to(x_ref.dtype), tuple(x_ref.shape[1:]))


def sigmoid_schedule(n_temps: int, sharpness: float = 4.0) -> list[float]:
    """β_0 = 0 < ... < β_{K} = 1 with K = n_temps + 1 (n_temps intermediate distributions).

    Sigmoid-spaced (Grosse et al. 2013): small steps near both ends, where the log weights' variance
    per unit β is largest for a base that is much wider or narrower than the target.
    """
    k = n_temps + 1
    s = [1.0 / (1.0 + math.exp(-sharpness * (2.0 * i / k - 1.0))) for i in range(k + 1)]
    return [0.0] + [(v - s[0]) / (s[-1] - s[0]) for v in s[1:-1]] + [1.0]


class _Chains:
    """Cached per-chain pieces in whitened space: y [B, d], f [B], ∇_y f [B, d], log q [B], ∇ log q."""

    __slots__ = ("y", "f", "g", "lq", "glq")

    def __init__(self, y, f, g, lq, glq):
        self.y, self.f, self.g, self.lq, self.glq = y, f, g, lq, glq


class _Path:
    """f, the base and the running 'something was non-finite' flag (checked once, at the end)."""

    def __init__(self, fn, base: AISBase) -> None:
        self.fn, self.base = fn, base
        self.bad = None           # bool tensor: f was NaN or +inf (or ∇f non-finite where f is finite)

    def evaluate(self, y: torch.Tensor) -> _Chains:
        x = self.base.to_x(y).detach().requires_grad_(True)
        with torch.enable_grad():
            fx = self.fn(x)
            if fx.ndim != 1 or fx.shape[0] != y.shape[0]:
                raise EBMError(f"f must return shape [B] for a batch of B={y.shape[0]}, got {tuple(fx.shape)}")
            (gx,) = torch.autograd.grad(fx.sum(), x, allow_unused=True)
        fx = fx.detach().to(y.dtype)
        gx = torch.zeros_like(y) if gx is None else gx.reshape(y.shape[0], -1).to(y.dtype)
        # chain rule for x = loc + L y: ∇_y = L^T ∇_x, row-wise g_y = g_x L
        gy = gx @ self.base.scale if self.base.scale.ndim == 2 else gx * self.base.scale
        finite = torch.isfinite(fx)
        bad = torch.isnan(fx) | torch.isposinf(fx) | (finite & ~torch.isfinite(gy).all(1))
        self.bad = bad.any() if self.bad is None else self.bad | bad.any()
        # at f = -inf (outside f's support) the gradient means nothing; zero it so no NaN spreads
        gy = torch.where(finite[:, None], gy, 0.0)
        return _Chains(y, fx, gy, self.base.log_q(y), self.base.grad_log_q(y))


def _tempered(beta: float, c: _Chains) -> tuple[torch.Tensor, torch.Tensor]:
    """f_β = (1-β) log q + β f and its y-gradient; written so 0·(-inf) never makes a NaN."""
    fb = c.f * beta if beta > 0 else torch.zeros_like(c.f)
    lq = c.lq * (1.0 - beta) if beta < 1 else torch.zeros_like(c.lq)
    fb = torch.where(torch.isneginf(c.lq), float("-inf"), fb + lq)   # outside the base's support
    return fb, c.g * beta + c.glq * (1.0 - beta)


# AIS drives the shared MALA arithmetic (``mala_propose``, ``mala_log_q_ratio``, ``mh_select``)
# itself rather than through ebmlab.samplers.MALA: the target changes at every temperature and is
# built from cached f and log q (f is evaluated once per step, not per β), in whitened coordinates,
# with a step size that is a device tensor adapted on the fly.
def _mala_step(path: _Path, c: _Chains, beta: float, eps: torch.Tensor,
               generator: torch.Generator | None) -> tuple[_Chains, torch.Tensor]:
    """One MALA step per chain on f_β with step ``eps`` (0-d tensor); returns (chains, accept_prob [B])."""
    fb, sb = _tempered(beta, c)
    y_new, z = mala_propose(c.y, sb, eps, generator)
    n = path.evaluate(y_new)
    fb_new, sb_new = _tempered(beta, n)
    log_alpha = (fb_new - fb) + mala_log_q_ratio(c.y, y_new, z, sb_new, eps)
    # guarded: a proposal with f_β = -inf (outside the base's or f's support) is rejected, and the
    # NaN of -inf - (-inf) never reaches the step-size adaptation (its accept_prob is 0)
    acc, prob = mh_select(log_alpha, fb_new, generator)
    kept = _Chains(where_accepted(acc, n.y, c.y), torch.where(acc, n.f, c.f), where_accepted(acc, n.g, c.g),
                   torch.where(acc, n.lq, c.lq), where_accepted(acc, n.glq, c.glq))
    return kept, prob


def _increment(c: _Chains, dbeta: float) -> torch.Tensor:
    """dβ · (f - log q) in float64 [B]; -inf where f is -inf (a chain outside f's support)."""
    return dbeta * (c.f.double() - c.lq.double())


def _log_mean_exp(log_w: torch.Tensor) -> tuple[float, float, float]:
    """(log mean w, its delta-method stderr std(w)/(sqrt(n) mean w), ESS = (Σw)²/Σw²)."""
    m = log_w.max()
    w = torch.exp(log_w - m)
    mean = w.mean()
    se = w.std() / math.sqrt(w.numel()) / mean
    ess = w.sum() ** 2 / (w * w).sum()
    return float(m + torch.log(mean)), float(se), float(ess)


def _check_budget(n_chains: int, n_temps: int, n_steps_per_temp: int, d: int) -> None:
    for name, v, lo in (("n_chains", n_chains, 2), ("n_temps", n_temps, 0), ("n_steps_per_temp", n_steps_per_temp, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise EBMError(f"{name} must be an integer >= {lo}, got {v!r}")
    if n_chains * d > MAX_ELEMENTS:
        raise EBMError(f"n_chains * d = {n_chains} * {d} is too large for memory; use fewer chains")


@torch.no_grad()
def ais_log_z(f, x_ref: torch.Tensor | None = None, base: str = "gaussian",
              bounds: Sequence[Sequence[float]] | None = None, n_chains: int = DEFAULT_N_CHAINS,
              n_temps: int = DEFAULT_N_TEMPS, n_steps_per_temp: int = DEFAULT_STEPS_PER_TEMP,
              step_size: float | None = None, generator: torch.Generator | None = None,
              reverse: bool = True) -> LogZEstimate:
    """log Z of exp(f) by annealed importance sampling, with a reverse-AIS upper bound.

    Args:
        f: a model or callable [B, *event] -> [B] (log unnormalised density).
        x_ref: data [N, *event]: fits the Gaussian base and starts the reverse chains. For the
            reverse value to be an upper bound these must be exact samples of p (true for a test
            target; for a trained model, data are only approximately from p, so treat it as a guide).
        base: "gaussian" (fitted to x_ref) or "uniform" (over ``bounds``; then the estimate is of
            ∫_box exp f, which is Z when the model's support is that box).
        n_chains: independent forward chains (and at most this many reverse chains).
        n_temps: intermediate distributions; 0 means plain importance sampling from the base.
        n_steps_per_temp: MALA steps per intermediate distribution.
        step_size: fixed MALA step in whitened units; None adapts it toward 0.574 acceptance,
            from the chains' mean acceptance, without host syncs.
        generator: drives every random draw (the base draw comes first).
        reverse: also run the path backwards from x_ref for the upper bound.

    Returns:
        LogZEstimate with value (forward, a stochastic lower bound), stderr (delta method), and
        extras: ess, upper, upper_stderr, upper_ess (reverse), acceptance, step_sizes [K+1],
        log_weights [n], n_chains, n_temps, n_steps_per_temp, base, seconds, and ``warning`` when the
        weights are degenerate (ESS < max(10, 1 % of the chains)).
    """
    t0 = time.perf_counter()
    fn = as_log_density(f)
    # the chains go where the model's weights are, in their dtype (x_ref is moved there); a plain callable
    # keeps x_ref's (before, a float64 model given float32 data raised torch's dtype error)
    device, dtype = placement(f)
    if x_ref is not None:
        if not isinstance(x_ref, torch.Tensor):
            x_ref = torch.as_tensor(x_ref)
        if not x_ref.is_floating_point():
            x_ref = x_ref.float()
        if dtype is not None:
            x_ref = x_ref.to(device=device, dtype=dtype)
        if x_ref.ndim < 2 or x_ref.shape[0] < (4 if reverse else 2):
            raise EBMError(f"x_ref must be data shaped [N, *event] with N >= {4 if reverse else 2} "
                           f"(half of it starts the reverse chains), got {tuple(x_ref.shape)}")
        if not bool(torch.isfinite(x_ref).all()):
            raise EBMError("x_ref contains NaN or inf; clean the data before estimating log Z")
    where = x_ref.device if x_ref is not None else (device or torch.device("cpu"))
    if generator is not None and generator.device.type != where.type:
        raise EBMError(f"the generator is on {generator.device} but the chains run on {where}; "
                       f"make it with torch.Generator(device={str(where)!r})")
    if reverse and x_ref is None:
        raise EBMError("reverse=True needs x_ref (samples of p) to start the reverse chains; or pass reverse=False")
    x_rev = None
    if reverse:
        # the reverse chains start from points the base never saw: a base fitted to the same points
        # rates them too likely (by about d²/2N nats), which would push the "upper" bound below log Z
        perm = torch.randperm(x_ref.shape[0], generator=generator, device=x_ref.device)
        n_rev = min(n_chains, x_ref.shape[0] // 2)
        x_rev, x_ref = x_ref[perm[:n_rev]], x_ref[perm[n_rev:]]
    b = fit_base(x_ref, base, bounds, dtype=dtype, device=device)
    d = b.dim
    _check_budget(n_chains, n_temps, n_steps_per_temp, d)
    if step_size is not None and not (isinstance(step_size, (int, float)) and step_size > 0 and math.isfinite(step_size)):
        raise EBMError(f"step_size must be a positive number or None, got {step_size!r}")
    betas = sigmoid_schedule(n_temps)
    k_last = len(betas) - 1
    path = _Path(fn, b)
    kw = dict(dtype=b.loc.dtype, device=b.loc.device)
    # starting step in whitened units: the MALA-optimal one for N(0, I_d) (ε = ℓ²/2 d^(-1/3), ℓ ≈ 1.65),
    # shrunk by 12 (the variance of U[0,1]) for the uniform base
    eps0 = step_size or 1.36 * d ** (-1.0 / 3.0) / (12.0 if b.kind == "uniform" else 1.0)
    log_eps = torch.tensor(math.log(eps0), **kw)
    adapt = step_size is None

    def moved(c: _Chains, beta: float, log_eps: torch.Tensor, n: int, rate: float):
        acc_sum = torch.zeros((), **kw)
        for _ in range(n):
            c, prob = _mala_step(path, c, beta, log_eps.exp(), generator)
            m = prob.mean()
            acc_sum = acc_sum + m
            if rate:
                log_eps = (log_eps + rate * (m - TARGET_ACCEPT)).clamp(-18.0, 3.0)
        return c, log_eps, acc_sum

    # forward: x_0 ~ q exactly, so adaptation-only steps at β = 0 cost accuracy nothing
    x0 = b.sample(n_chains, generator)
    named = "x_ref" if x_ref is not None else "points of the bounds' box"
    with first_evaluation(named, (x0.shape[0], *b.event_shape)):     # a wrong event shape: one line
        c = path.evaluate(x0)
    if adapt and k_last > 1:
        c, log_eps, _ = moved(c, 0.0, log_eps, _N_WARMUP, 2.0 * _ADAPT_RATE)
    log_w = torch.zeros(n_chains, dtype=torch.float64, device=b.loc.device)
    eps_at = [log_eps] * (k_last + 1)
    acc_total = torch.zeros((), **kw)
    for k in range(1, k_last + 1):
        log_w = log_w + _increment(c, betas[k] - betas[k - 1])
        if k < k_last:   # the transition at β = 1 would not change the weights
            # the step is adapted from the mean over all chains: each chain's own influence on its
            # kernel is 1/n_chains, a negligible departure from a fixed sequence of kernels
            eps_at[k] = log_eps
            c, log_eps, acc = moved(c, betas[k], log_eps, n_steps_per_temp, _ADAPT_RATE if adapt else 0.0)
            acc_total = acc_total + acc
    _raise_if_bad(path, "forward")
    if bool(torch.isneginf(log_w).all()):
        raise EBMError("every AIS chain ended with zero weight: the base puts no mass where exp(f) > 0; "
                       "pass x_ref from the model's support or bounds that cover it")
    value, se, ess = _log_mean_exp(log_w)
    value += b.log_det
    n_moves = max(1, (k_last - 1) * n_steps_per_temp)
    extras = dict(ess=ess, n_chains=n_chains, n_temps=n_temps, n_steps_per_temp=n_steps_per_temp,
                  acceptance=float(acc_total) / n_moves if k_last > 1 else float("nan"),
                  step_sizes=torch.stack(eps_at).exp().cpu(), log_weights=(log_w + b.log_det).cpu(),
                  base=b.kind)
    if ess < max(10.0, 0.01 * n_chains):
        # a handful of chains carry all the weight: the delta-method stderr is then itself unreliable
        extras["warning"] = (f"AIS weights are degenerate (ESS {ess:.1f} of {n_chains}); the stderr is "
                             "not trustworthy: raise n_temps or give x_ref closer to the model")
    if reverse:
        up, up_se, up_ess = _reverse(path, x_rev, betas, eps_at, n_steps_per_temp, generator)
        extras.update(upper=up + b.log_det, upper_stderr=up_se, upper_ess=up_ess)
    extras["seconds"] = time.perf_counter() - t0
    return LogZEstimate(value, se, "ais", extras)


def _reverse(path: _Path, x_rev: torch.Tensor, betas: list[float], eps_at: list[torch.Tensor],
             n_steps: int, generator: torch.Generator | None) -> tuple[float, float, float]:
    """Reverse AIS from data: -log mean w_rev, an upper bound of log Z_y when x_ref ~ p exactly.

    It replays the forward kernels (same β, same adapted steps) in the opposite order and does not
    adapt, so the reverse chain is exactly the mirror image of the forward one.
    """
    n = x_rev.shape[0]
    y = path.base.to_y(x_rev)
    c = path.evaluate(y)
    f0, lq0 = c.f, c.lq
    if not bool((torch.isfinite(f0) & torch.isfinite(lq0)).all()):
        where = "outside the uniform base's bounds" if path.base.kind == "uniform" else "where f is not finite"
        raise EBMError(f"some x_ref points lie {where}; the reverse AIS bound needs every x_ref in the support")
    log_w = torch.zeros(n, dtype=torch.float64, device=y.device)
    for k in range(len(betas) - 1, 0, -1):
        log_w = log_w + _increment(c, betas[k - 1] - betas[k])
        if k - 1 > 0:
            eps = eps_at[k - 1].exp()
            for _ in range(n_steps):
                c, _ = _mala_step(path, c, betas[k - 1], eps, generator)
    _raise_if_bad(path, "reverse")
    value, se, ess = _log_mean_exp(log_w)
    return -value, se, ess


def _raise_if_bad(path: _Path, direction: str) -> None:
    if path.bad is not None and bool(path.bad):
        raise EBMError(f"f returned NaN or +inf (or a non-finite gradient) on the {direction} AIS path; "
                       "log Z is undefined there: fix the model (or bound its support) before estimating Z")


