"""Chain diagnostics from traces: effective sample size, split R-hat, their rank-normalised versions
(bulk-ESS and rank R-hat of Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021, as ArviZ and Stan
compute them), and a one-dict summary.

Traces are shaped [T, C] (T steps, C chains) or [T, C, d] (one diagnostic per coordinate).
numpy on the host: these run once after sampling, never inside the loop.
"""
from __future__ import annotations

import numpy as np
import torch

from ebmlab.errors import EBMError

ArrayLike = np.ndarray | torch.Tensor


def _as_trace(trace: ArrayLike, name: str = "trace", min_steps: int = 4) -> np.ndarray:
    """-> float64 array [T, C, d] (d = 1 for a [T, C] input)."""
    a = trace.detach().cpu().double().numpy() if isinstance(trace, torch.Tensor) else np.asarray(trace, float)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise EBMError(f"{name} must be shaped [T, C] or [T, C, d] (steps, chains[, dims]), got {a.shape}")
    if a.shape[0] < min_steps:
        raise EBMError(f"{name} needs at least {min_steps} steps per chain, got T = {a.shape[0]}")
    if not np.isfinite(a).all():
        raise EBMError(f"{name} contains NaN or inf; diagnose the sampler before computing diagnostics")
    return a


def _autocovariance(x: np.ndarray) -> np.ndarray:
    """Biased autocovariance along axis 0 by FFT (zero-padded to avoid wrap-around): [T, ...] -> [T, ...]."""
    t = x.shape[0]
    n = 1 << (2 * t - 1).bit_length()
    xc = x - x.mean(0)
    spec = np.fft.rfft(xc, n=n, axis=0)
    return np.fft.irfft(spec * np.conj(spec), n=n, axis=0)[:t] / t


def _ess_1d(x: np.ndarray) -> float:
    """Stan's multi-chain ESS for x [T, C]: pooled autocorrelation, Geyer's initial monotone sequence."""
    t, c = x.shape
    acov = _autocovariance(x)                       # [T, C]
    chain_var = acov[0] * t / (t - 1.0)
    mean_var = chain_var.mean()
    var_plus = mean_var * (t - 1.0) / t + (x.mean(0).var(ddof=1) if c > 1 else 0.0)
    if var_plus <= 0:
        return float(t * c)                         # constant trace: nothing to correlate
    rho = 1.0 - (mean_var - acov.mean(1)) / var_plus   # [T] combined autocorrelation, rho[0] = 1
    # Geyer: sum consecutive pairs while their sum is positive, then force the pair sums to be
    # non-increasing (the initial monotone sequence estimator), which removes noisy tail lags.
    pairs = rho[: 2 * ((t - 1) // 2)].reshape(-1, 2).sum(1)    # P_k = rho_2k + rho_2k+1
    stop = np.argmax(pairs <= 0) if (pairs <= 0).any() else len(pairs)
    pairs = np.minimum.accumulate(pairs[:stop])
    tau = -1.0 + 2.0 * pairs.sum()
    tau = max(tau, 1.0 / np.log10(t * c))          # Stan's floor: ESS <= N log10(N) for antithetic chains
    return float(t * c / tau)


def effective_sample_size(trace: ArrayLike) -> float | np.ndarray:
    """ESS over all chains (Geyer / Stan estimator with FFT autocorrelation).

    Args:
        trace: [T, C] -> float, or [T, C, d] -> array [d].
    For iid draws it is about T·C; for an AR(1) with coefficient φ about T·C (1 - φ) / (1 + φ).
    """
    a = _as_trace(trace)
    ess = np.array([_ess_1d(a[:, :, j]) for j in range(a.shape[2])])
    return float(ess[0]) if np.ndim(trace) == 2 else ess


def _split(a: np.ndarray) -> np.ndarray:
    """[T, C, d] -> [T//2, 2C, d]: each chain cut into its first and last halves (the middle draw of an odd T dropped)."""
    half = a.shape[0] // 2
    return np.concatenate([a[:half], a[a.shape[0] - half:]], axis=1)


def _rhat(s: np.ndarray) -> np.ndarray:
    """Gelman–Rubin R-hat of chains [n, C, d] (no further split) -> [d]."""
    n = s.shape[0]
    w = s.var(0, ddof=1).mean(0)                    # mean within-chain variance
    b = n * s.mean(0).var(0, ddof=1)                # between-chain variance
    var_hat = (n - 1.0) / n * w + b / n
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(w > 0, np.sqrt(var_hat / w), np.where(b > 0, np.inf, 1.0))


def _z_scale(s: np.ndarray) -> np.ndarray:
    """Rank-normalise each coordinate of [n, C, d] over all its n·C draws: z = Φ^-1((r - 3/8) / (S + 1/4)),
    r the average rank of ties (Blom's offsets, as Vehtari et al. 2021 and ArviZ's ``_z_scale``)."""
    out = np.empty_like(s)
    size = s.shape[0] * s.shape[1]
    for j in range(s.shape[2]):
        vals, inv, counts = np.unique(s[:, :, j].ravel(), return_inverse=True, return_counts=True)
        ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inv]          # 1-based average ranks
        u = torch.from_numpy((ranks - 0.375) / (size + 0.25))
        out[:, :, j] = torch.special.ndtri(u).numpy().reshape(s.shape[:2])
    return out


def rank_rhat(trace: ArrayLike) -> float | np.ndarray:
    """Rank-normalised split R-hat (Vehtari et al. 2021): max of the bulk R-hat (split R-hat of the
    rank-normalised draws) and the tail R-hat (the same of |x - median|), as ``arviz.rhat(method="rank")``.

    Unlike the classic R-hat it is unchanged by monotone transforms of f, finite for heavy tails,
    and it sees chains that agree in mean but not in spread. Args as ``split_rhat``; < 1.01 is the
    recommended threshold.
    """
    a = _as_trace(trace)
    bulk = _rhat(_z_scale(_split(a)))
    folded = np.abs(a - np.median(a.reshape(-1, a.shape[2]), axis=0))
    tail = _rhat(_z_scale(_split(folded)))
    r = np.maximum(bulk, tail)
    return float(r[0]) if np.ndim(trace) == 2 else r


def bulk_ess(trace: ArrayLike) -> float | np.ndarray:
    """Bulk-ESS (Vehtari et al. 2021): the multi-chain ESS of the rank-normalised split chains, as
    ``arviz.ess(method="bulk")``; how well the centre of the distribution is explored. Args as ``effective_sample_size``."""
    z = _z_scale(_split(_as_trace(trace)))
    ess = np.array([_ess_1d(z[:, :, j]) for j in range(z.shape[2])])
    return float(ess[0]) if np.ndim(trace) == 2 else ess


def split_rhat(trace: ArrayLike) -> float | np.ndarray:
    """Gelman–Rubin split R-hat: each chain cut in half, then between/within variance.

    Args:
        trace: [T, C] -> float, or [T, C, d] -> array [d]. About 1 when chains agree; > 1.01–1.1
            says the chains have not mixed (stuck in different modes or still drifting).
    """
    r = _rhat(_split(_as_trace(trace)))
    return float(r[0]) if np.ndim(trace) == 2 else r


def summarize_chains(acceptance: ArrayLike, grad_norm: ArrayLike | None,
                     log_density_trace: ArrayLike) -> dict:
    """The numbers ``ebmlab eval`` prints about a sampling run.

    Args:
        acceptance: [T, C] per-step acceptance probabilities (or 0/1 accepted flags).
        grad_norm: [T, C] ‖∇f‖ per step, or None (gradient-free samplers).
        log_density_trace: [T, C] f(x_t) per chain.
    Returns a dict of floats: acceptance mean / min and max over chains, stuck chains (acceptance
    below 1 %), mean and max gradient norm, ESS and split R-hat of f, and mean f in the last half.
    """
    acc = _as_trace(acceptance, "acceptance", min_steps=1)[:, :, 0]
    ld = _as_trace(log_density_trace, "log_density_trace")[:, :, 0]
    if acc.shape[1] != ld.shape[1]:
        raise EBMError(f"acceptance has {acc.shape[1]} chains but log_density_trace has {ld.shape[1]}")
    per_chain = acc.mean(0)
    out = {
        "acceptance": float(acc.mean()),
        "acceptance_min_chain": float(per_chain.min()),
        "acceptance_max_chain": float(per_chain.max()),
        "stuck_chains": int((per_chain < 0.01).sum()),
        "ess_log_density": effective_sample_size(ld),
        "rhat_log_density": split_rhat(ld),
        "log_density_mean_last_half": float(ld[ld.shape[0] // 2:].mean()),
        "n_steps": int(ld.shape[0]),
        "n_chains": int(ld.shape[1]),
    }
    if grad_norm is not None:
        g = _as_trace(grad_norm, "grad_norm", min_steps=1)[:, :, 0]
        out.update(grad_norm_mean=float(g.mean()), grad_norm_max=float(g.max()))
    return out
