"""Binary-state samplers against exact enumeration: single-spin means, pair correlations and the mean
of f of Gibbs, GWG, DMALA and block-Gibbs chains on a 4x4 Ising lattice (16 spins) and a 10x5 RBM.

Standard errors come from independent chains: each chain's time average (after burn-in) is one
independent draw, so SE = sd(chain averages) / sqrt(n_chains), autocorrelation included. Every
statistic must lie within 5 SE of its exact value. DULA's stationary law is biased; on a product of
independent bits it is known in closed form, and the test checks the chain hits that law, not p.
"""
from __future__ import annotations

import math

import pytest
import torch

from ebmlab.models.binary import binary_states
from ebmlab.models.ising import Ising
from ebmlab.models.rbm import RBM
from ebmlab.samplers import make_sampler
from ebmlab.samplers.base import log_density

K_SE = 5.0


def statistics(x: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
    """Per-state statistics [B, S]: every bit, every pair product x_i x_j (i < j), and f."""
    i, j = torch.triu_indices(x.shape[1], x.shape[1], 1)
    return torch.cat([x, x[:, i] * x[:, j], fx[:, None]], 1).double()


def exact_statistics(model) -> torch.Tensor:
    xs = binary_states(model.W.shape[1] if isinstance(model, RBM) else model.dim)
    fx = log_density(model, xs)
    p = torch.softmax(fx.double(), 0)
    return (p[:, None] * statistics(xs, fx)).sum(0)


def chain_statistics(model, method: str, n_chains: int, burn: int, keep: int, thin: int, seed: int = 0,
                     **kw) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean [S], SE [S] over independent chains, mean flips per step) after ``burn`` steps."""
    g = torch.Generator().manual_seed(seed)
    d = model.W.shape[1] if isinstance(model, RBM) else model.dim
    sampler = make_sampler(model, method, **kw)
    state = sampler.init((torch.rand(n_chains, d, generator=g) < 0.5).float())
    total, flips = 0.0, 0.0
    for t in range(burn + keep * thin):
        state, info = sampler.step(state, g)
        flips = flips + info.flips.mean()
        if t >= burn and (t - burn) % thin == thin - 1:
            total = total + statistics(state.x, state.log_density)
    per_chain = total / keep
    return per_chain.mean(0), per_chain.std(0) / math.sqrt(n_chains), flips / (burn + keep * thin)


def ising() -> Ising:
    return Ising.lattice(4, coupling=0.3, field=0.1)


def rbm() -> RBM:
    return RBM.random(10, 5, generator=torch.Generator().manual_seed(3))


# steps chosen so each chain decorrelates several times: Gibbs changes one bit in ~1/3 of steps,
# GWG proposes one flip per step and accepts ~90 %, DMALA moves ~0.8 bits per step at α = 0.2
CASES = {"gibbs": (600, 30, 16), "gwg": (200, 30, 6), "dmala": (200, 30, 6)}


@pytest.mark.parametrize("method", ["gibbs", "gwg", "dmala"])
def test_ising_lattice_moments_match_enumeration(method):
    model = ising()
    exact = exact_statistics(model)
    burn, keep, thin = CASES[method]
    mean, se, flips = chain_statistics(model, method, 400, burn, keep, thin)
    z = (mean - exact).abs() / se.clamp_min(1e-12)
    assert z.max() < K_SE, f"{method}: worst statistic {int(z.argmax())} off by {float(z.max()):.1f} SE"
    assert float(se[:-1].max()) < 0.02     # the test has power: bit and pair errors are small
    assert 0.0 < float(flips) <= (1.0 if method != "dmala" else 16.0)


@pytest.mark.parametrize("method", ["gibbs", "gwg", "dmala", "block-gibbs"])
def test_rbm_moments_match_enumeration(method):
    model = rbm()
    exact = exact_statistics(model)
    burn, keep, thin = CASES.get(method, (50, 30, 2))
    mean, se, flips = chain_statistics(model, method, 400, burn, keep, thin)
    z = (mean - exact).abs() / se.clamp_min(1e-12)
    assert z.max() < K_SE, f"{method}: worst statistic {int(z.argmax())} off by {float(z.max()):.1f} SE"
    assert float(se[:10].max()) < 0.03
    assert float(flips) > 0.0


def dula_stationary_mean(h: torch.Tensor, alpha: float) -> torch.Tensor:
    """P(x_i = 1) under DULA's own stationary law for f(x) = hᵀx (bits independent, ∇f = h):
    each bit is a two-state chain with P(0->1) = sigmoid(h/2 - 1/(2α)), P(1->0) = sigmoid(-h/2 - 1/(2α))."""
    up, down = torch.sigmoid(h / 2 - 0.5 / alpha), torch.sigmoid(-h / 2 - 0.5 / alpha)
    return up / (up + down)


def test_dula_has_its_known_bias_and_dmala_removes_it():
    h = torch.tensor([2.0, -1.0, 0.5, 0.0], dtype=torch.float64)
    model = Ising(torch.zeros(4, 4), h / 2)    # (h/2)ᵀs with s = 2x - 1 is hᵀx + const
    alpha = 1.0
    target = torch.sigmoid(h)
    biased = dula_stationary_mean(h, alpha)
    n_chains, burn, keep = 2000, 20, 20
    for method, expect in (("dula", biased), ("dmala", target)):
        g = torch.Generator().manual_seed(1)
        sampler = make_sampler(model, method, step_size=alpha)
        state = sampler.init((torch.rand(n_chains, 4, generator=g) < 0.5).float())
        acc = torch.zeros(n_chains, 4, dtype=torch.float64)
        for t in range(burn + keep):
            state, _ = sampler.step(state, g)
            if t >= burn:
                acc += state.x.double()
        per_chain = acc / keep
        mean, se = per_chain.mean(0), per_chain.std(0) / math.sqrt(n_chains)
        assert ((mean - expect).abs() / se).max() < K_SE, method
    # the bias is real: DULA's law is many SE away from p at α = 1 (0.77 vs 0.88 for h = 2)
    assert float(((biased - target).abs() / se.clamp_min(1e-12)).max()) > 10
    # ... and it vanishes as α -> 0
    assert float((dula_stationary_mean(h, 0.05) - target).abs().max()) < 0.01
