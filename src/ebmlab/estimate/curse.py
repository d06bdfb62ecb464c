"""The curse of dimensionality, measured: quadrature cost explodes as n^d, AIS cost grows gently.

``gaussian_target`` gives correlated Gaussians with known log Z (the yardstick); ``curse_study``
returns rows {method, d, evaluations, seconds, error, stderr, extrapolated}; ``plot_curse`` draws
them. Quadrature beyond d = 3 is never run: its cost there is extrapolated from the measured
seconds per evaluation at d = 3, and every such row says ``extrapolated: True``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ebmlab.errors import EBMError
from ebmlab.estimate.ais import ais_log_z
from ebmlab.estimate.partition import MAX_QUADRATURE_DIM, quadrature_log_z


@dataclass(frozen=True)
class GaussianTarget:
    """f(x) = log N(x; mean, cov) + log_z, so Z = exp(log_z) exactly; ``samples`` [n, d] are exact draws."""

    f: Callable[[torch.Tensor], torch.Tensor]
    log_z: float
    mean: torch.Tensor
    cov: torch.Tensor
    samples: torch.Tensor


def gaussian_target(d: int, seed: int = 0, n_samples: int = 2000, offset: float = 1.5,
                    dtype: torch.dtype = torch.float32) -> GaussianTarget:
    """A d-dimensional Gaussian with variances log-spaced over [0.1, 10], a random rotation and a
    mean offset (about 2 per axis), unnormalised by ``offset`` nats so log Z is not trivially 0."""
    if d < 1:
        raise EBMError(f"d must be >= 1, got {d}")
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    var = torch.logspace(-1, 1, d, dtype=torch.float64) if d > 1 else torch.tensor([2.0], dtype=torch.float64)
    cov = q @ torch.diag(var) @ q.T
    mean = torch.randn(d, generator=g, dtype=torch.float64) + 2.0
    prec = torch.linalg.inv(cov).to(dtype)
    m = mean.to(dtype)
    log_z = 0.5 * d * math.log(2 * math.pi) + 0.5 * float(torch.logdet(cov)) + offset

    def f(x: torch.Tensor) -> torch.Tensor:
        r = x - m.to(x.dtype)
        return -0.5 * ((r @ prec.to(x.dtype)) * r).sum(1) + offset

    chol = torch.linalg.cholesky(cov)
    samples = (torch.randn(n_samples, d, generator=g, dtype=torch.float64) @ chol.T + mean).to(dtype)
    return GaussianTarget(f, log_z, mean, cov, samples)


class _Counted:
    """Wraps f and counts the points it is evaluated at (the cost unit of both methods)."""

    def __init__(self, f: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.f, self.evaluations = f, 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.evaluations += x.shape[0]
        return self.f(x)


def quadrature_cost(dims: Sequence[int] = (1, 2, 3), points_per_dim: int = 60,
                    extrapolate_to: int = 10, seed: int = 0) -> list[dict]:
    """Measured quadrature cost and error for d <= 3, extrapolated (``extrapolated: True``) beyond.

    The box is mean ± 8 sd per axis; a grid with n points per axis costs n^d evaluations.
    """
    rows, sec_per_eval = [], None
    for d in dims:
        if d > MAX_QUADRATURE_DIM:
            raise EBMError(f"quadrature is measured only for d <= {MAX_QUADRATURE_DIM}; larger d is extrapolated")
        t = gaussian_target(d, seed)
        sd = t.cov.diagonal().sqrt()
        bounds = torch.stack([t.mean - 8 * sd, t.mean + 8 * sd], 1).tolist()
        fc = _Counted(t.f)
        t0 = time.perf_counter()
        est = quadrature_log_z(fc, bounds, points_per_dim=points_per_dim)
        sec = time.perf_counter() - t0
        sec_per_eval = sec / fc.evaluations
        rows.append(dict(method="quadrature", d=d, evaluations=fc.evaluations, seconds=sec,
                         error=est.value - t.log_z, stderr=0.0, extrapolated=False))
    for d in range(max(dims) + 1, extrapolate_to + 1):
        n_eval = points_per_dim ** d
        rows.append(dict(method="quadrature", d=d, evaluations=n_eval, seconds=n_eval * sec_per_eval,
                         error=float("nan"), stderr=float("nan"), extrapolated=True))
    return rows


def ais_cost(dims: Sequence[int] = (1, 2, 5, 10, 20, 50, 100), seed: int = 0, **ais_kwargs) -> list[dict]:
    """AIS (default budget unless ``ais_kwargs`` say otherwise) on ``gaussian_target(d)``: measured
    evaluations (forward + reverse), seconds, error against the exact log Z, reported stderr, upper bound."""
    rows = []
    for d in dims:
        t = gaussian_target(d, seed)
        fc = _Counted(t.f)
        t0 = time.perf_counter()
        est = ais_log_z(fc, t.samples, generator=torch.Generator().manual_seed(seed), **ais_kwargs)
        rows.append(dict(method="ais", d=d, evaluations=fc.evaluations, seconds=time.perf_counter() - t0,
                         error=est.value - t.log_z, stderr=est.stderr,
                         upper_error=est.extras.get("upper", float("nan")) - t.log_z, extrapolated=False))
    return rows


def curse_study(quadrature_dims: Sequence[int] = (1, 2, 3), ais_dims: Sequence[int] = (1, 2, 5, 10, 20, 50, 100),
                extrapolate_to: int = 10, seed: int = 0, **ais_kwargs) -> list[dict]:
    """Both studies' rows, quadrature first."""
    return quadrature_cost(quadrature_dims, extrapolate_to=extrapolate_to, seed=seed) + \
        ais_cost(ais_dims, seed=seed, **ais_kwargs)


def plot_curse(rows: list[dict], path: str) -> None:
    """Two panels: f-evaluations against d (quadrature measured, quadrature extrapolated, AIS) and
    AIS |error| with its reported stderr against d. Writes a PNG at ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def pick(method, extrapolated):
        r = sorted((r for r in rows if r["method"] == method and r["extrapolated"] == extrapolated),
                   key=lambda r: r["d"])
        return [r["d"] for r in r], r

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    dq, rq = pick("quadrature", False)
    dx, rx = pick("quadrature", True)
    da, ra = pick("ais", False)
    if rq:
        ax1.semilogy(dq, [r["evaluations"] for r in rq], "o-", color="C0", label="quadrature (measured)")
    if rx:
        xs = ([dq[-1]] if rq else []) + dx
        ys = ([rq[-1]["evaluations"]] if rq else []) + [r["evaluations"] for r in rx]
        ax1.semilogy(xs, ys, "o--", color="C0", alpha=0.5, label="quadrature (extrapolated)")
    if ra:
        ax1.semilogy(da, [r["evaluations"] for r in ra], "s-", color="C1", label="AIS (measured)")
        ax2.semilogy(da, [max(abs(r["error"]), 1e-4) for r in ra], "s-", color="C1", label="AIS |error|")
        ax2.semilogy(da, [max(r["stderr"], 1e-4) for r in ra], "^:", color="C2", label="AIS reported stderr")
    ax1.set(xlabel="dimension d", ylabel="evaluations of f", title="cost of log Z")
    ax2.set(xlabel="dimension d", ylabel="nats", title="AIS error on Gaussians (known log Z)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
