"""AIS on {0, 1}^d (Neal 2001): log Z of a binary model too large to enumerate, with a reverse bound.

The base q is a product of Bernoullis fitted to data (``x_ref``: p_i = (Σ x_i + 1) / (N + 2), so no
bit has probability 0 or 1), exactly normalised. The path is geometric,
f_β(x) = (1 - β) log q(x) + β f(x), β on the sigmoid schedule of ``estimate.ais``. Each chain starts
from q, collects Σ_k (β_k - β_{k-1}) (f - log q)(x_{k-1}) and moves with Gibbs-with-gradients steps
that leave f_{β_k} invariant. The log-mean-exp of the weights is a stochastic *lower* bound of log Z;
the same path run backwards from exact samples of p (held-out data standing in for them) gives a
stochastic *upper* bound (Grosse et al. 2015, "BDMC"), as for the continuous AIS.
"""
from __future__ import annotations

import math

import torch

from ebmlab.density import as_log_density, placement
from ebmlab.errors import EBMError
from ebmlab.estimate.ais import sigmoid_schedule
from ebmlab.estimate.result import LogZEstimate
from ebmlab.samplers.base import ChainState, check_log_density, log_density_and_score
from ebmlab.samplers.gwg import GibbsWithGradients


def bernoulli_base(x_ref: torch.Tensor) -> torch.Tensor:
    """Log-probabilities [2, d] (row 0: log(1 - p), row 1: log p) of the smoothed product of Bernoullis."""
    x = x_ref.reshape(x_ref.shape[0], -1).double()
    p = (x.sum(0) + 1) / (x.shape[0] + 2)
    return torch.stack([torch.log1p(-p), torch.log(p)])


def _log_mean_exp(log_w: torch.Tensor) -> tuple[float, float, float]:
    """(log mean w, delta-method stderr, ESS) of log weights [n]."""
    m = log_w.max()
    w = torch.exp(log_w - m)
    return (float(m + torch.log(w.mean())), float(w.std() / math.sqrt(w.numel()) / w.mean()),
            float(w.sum() ** 2 / (w * w).sum()))


@torch.no_grad()
def binary_ais_log_z(f, x_ref: torch.Tensor, n_chains: int = 256, n_temps: int = 1000,
                     steps_per_temp: int = 1, generator: torch.Generator | None = None,
                     reverse: bool = True) -> LogZEstimate:
    """log Z of exp(f) over {0, 1}^d by AIS from a product-of-Bernoullis base fitted to ``x_ref`` [N, d].

    With ``reverse`` the points are split at random: min(n_chains, N // 2) of them start the reverse
    chains and the base is fitted to the rest (as ``estimate.ais`` does), so N >= 4 is needed.
    Returns the forward (lower) estimate with its stderr; ``extras`` hold ``upper`` (reverse AIS from
    those ``x_ref`` points, an upper bound when they are exact samples of p), ``ess`` and ``acceptance``.
    """
    if x_ref.ndim != 2 or not bool(((x_ref == 0) | (x_ref == 1)).all()):
        raise EBMError("binary AIS needs reference points x_ref [N, d] with values 0/1")
    if x_ref.shape[0] < (4 if reverse else 1):
        # reverse: at least two reverse chains (N // 2), or their stderr is the nan of one weight's std
        raise EBMError(f"binary AIS needs x_ref with N >= {4 if reverse else 1} (half of it starts the reverse "
                       f"chains), got N = {x_ref.shape[0]}; or pass reverse=False")
    for name, v, lo in (("n_chains", n_chains, 2), ("n_temps", n_temps, 1), ("steps_per_temp", steps_per_temp, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise EBMError(f"{name} must be an integer >= {lo}, got {v!r}")
    fn = as_log_density(f)
    # chains live where the model's weights are, in their dtype (float32 for a plain callable)
    device, dtype = placement(f)
    device, dtype = device or x_ref.device, dtype or torch.float32
    x_rev = None
    if reverse:
        # the reverse chains start from points the base never saw: a base fitted to the same points
        # rates them too likely, which pushed the "upper" value below log Z (by ~1 nat at d = 40, N = 20)
        perm = torch.randperm(x_ref.shape[0], generator=generator,
                              device=generator.device if generator is not None else "cpu").to(x_ref.device)
        n_rev = min(n_chains, x_ref.shape[0] // 2)
        x_rev, x_ref = x_ref[perm[:n_rev]], x_ref[perm[n_rev:]]
    table = bernoulli_base(x_ref).to(device)
    logit, const = (table[1] - table[0]).to(dtype), float(table[0].sum())

    def log_q(x: torch.Tensor) -> torch.Tensor:
        return x @ logit + const

    betas = sigmoid_schedule(n_temps)

    def move(x: torch.Tensor, beta: float, acc: list) -> torch.Tensor:
        kernel = GibbsWithGradients(lambda z: (1 - beta) * log_q(z) + beta * fn(z))
        # not kernel.init: its {0, 1} check reads the chains back to the host, a sync at every
        # temperature on a GPU; the chains are 0/1 by construction (a Bernoulli draw, then bit flips)
        state = ChainState(x, *log_density_and_score(kernel.f, x))
        for _ in range(steps_per_temp):
            state, info = kernel.step(state, generator)
            acc.append(info.accepted.float().mean())
        return state.x

    acc: list = []
    u = torch.rand((n_chains, table.shape[1]), generator=generator, device=device)
    x = (u < table[1].exp()).to(dtype)
    log_w = torch.zeros(n_chains, dtype=torch.float64, device=device)
    check_log_density(fn(x), x)     # once: f must return [B] (the kernels no longer check it at init)
    for k in range(1, len(betas)):
        log_w += (betas[k] - betas[k - 1]) * (fn(x).double() - log_q(x).double())
        if k < len(betas) - 1:
            x = move(x, betas[k], acc)
    value, se, ess = _log_mean_exp(log_w)
    extras = {"ess": ess, "acceptance": float(torch.stack(acc).mean()) if acc else 1.0, "n_temps": n_temps,
              "n_chains": n_chains}
    if reverse:
        xr = x_rev.to(device=device, dtype=dtype)
        log_wr = torch.zeros(xr.shape[0], dtype=torch.float64, device=device)
        for k in range(len(betas) - 1, 0, -1):
            log_wr -= (betas[k] - betas[k - 1]) * (fn(xr).double() - log_q(xr).double())
            if k > 1:
                xr = move(xr, betas[k - 1], [])
        up, up_se, up_ess = _log_mean_exp(log_wr)
        extras.update(upper=-up, upper_stderr=up_se, upper_ess=up_ess)
    return LogZEstimate(value, se, "ais-binary", extras)
