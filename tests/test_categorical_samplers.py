"""Categorical states: one-hot helpers, the Potts model's exact log Z, and the categorical Gibbs and
GWG chains against exact enumeration (site marginals, neighbour agreement and the mean of f within
5 standard errors; SE from independent chains' time averages, autocorrelation included)."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from ebmlab.errors import EBMError
from ebmlab.models.categorical import categorical_states, enumerate_categorical_logsumexp, from_one_hot, one_hot
from ebmlab.models.potts import Potts
from ebmlab.samplers import make_sampler, sample
from ebmlab.samplers.base import log_density

K_SE = 5.0


def potts() -> Potts:
    g = torch.Generator().manual_seed(1)
    m = Potts.lattice(2, 3, 3, coupling=0.6)
    with torch.no_grad():
        m.h.copy_(0.5 * torch.randn(m.h.shape, generator=g))
    return m


def test_one_hot_round_trip_and_state_order():
    x = torch.tensor([[0, 2, 1], [1, 1, 0]])
    y = one_hot(x, 3)
    assert y.shape == (2, 9) and torch.equal(y.sum(1), torch.full((2,), 3.0))
    assert torch.equal(from_one_hot(y, 3), x)
    assert torch.equal(from_one_hot(one_hot(x.reshape(2, 3, 1), 3), 3, (3, 1)), x.reshape(2, 3, 1))
    s = categorical_states(2, 3)
    assert torch.equal(from_one_hot(s, 3), torch.tensor(list(itertools.product(range(3), repeat=2))))


def test_potts_log_z_matches_a_brute_force_sum_and_k2_is_ising():
    m = potts()
    xs = categorical_states(6, 3)
    brute = float(torch.logsumexp(m.log_density(xs).double(), 0))
    assert abs(m.log_z() - brute) < 1e-6
    # f counts agreeing neighbour pairs: all equal on a periodic 2x3 lattice (9 distinct bonds) at h = 0
    flat = Potts.lattice(2, 3, 3, coupling=1.0)
    assert float(flat.log_density(one_hot(torch.zeros(1, 6, dtype=torch.long), 3))) == pytest.approx(9.0)
    # the sum over a chunk boundary equals the one-chunk sum
    small = enumerate_categorical_logsumexp(m.log_density, 6, 3, chunk=100)
    assert abs(float(small) - brute) < 1e-6


def test_enumeration_refuses_a_space_too_large():
    with pytest.raises(EBMError, match=r"3\^16 .* states, more than the limit 2\^24"):
        categorical_states(16, 3)


def statistics(x: torch.Tensor, fx: torch.Tensor, k: int) -> torch.Tensor:
    """[B, S]: every site's one-hot indicators, agreement of sites (0, 1) and (0, 3), and f."""
    v = x.reshape(x.shape[0], -1, k)
    agree = torch.stack([(v[:, 0] * v[:, 1]).sum(1), (v[:, 0] * v[:, 3]).sum(1)], 1)
    return torch.cat([x, agree, fx[:, None]], 1).double()


@pytest.mark.parametrize("method,burn,keep,thin", [("categorical-gibbs", 150, 30, 6), ("categorical-gwg", 150, 30, 6)])
def test_chains_match_enumeration(method, burn, keep, thin):
    m = potts()
    xs = categorical_states(6, 3)
    fx = log_density(m, xs)
    exact = (torch.softmax(fx.double(), 0)[:, None] * statistics(xs, fx, 3)).sum(0)
    g = torch.Generator().manual_seed(0)
    n = 300
    sampler = make_sampler(m, method)
    state = sampler.init(one_hot(torch.randint(0, 3, (n, 6), generator=g), 3))
    total, moved = 0.0, 0.0
    for t in range(burn + keep * thin):
        state, info = sampler.step(state, g)
        moved = moved + info.accepted.float().mean()
        if t >= burn and (t - burn) % thin == thin - 1:
            total = total + statistics(state.x, state.log_density, 3)
    per_chain = total / keep
    mean, se = per_chain.mean(0), per_chain.std(0) / math.sqrt(n)
    z = (mean - exact).abs() / se.clamp_min(1e-12)
    assert z.max() < K_SE, f"{method}: statistic {int(z.argmax())} off by {float(z.max()):.1f} SE"
    assert float(se[:-1].max()) < 0.03
    assert torch.allclose(log_density(m, state.x), state.log_density, atol=1e-5)   # cache is f(x)
    assert 0.2 < float(moved) / (burn + keep * thin) <= 1.0


def test_categories_come_from_the_model_the_option_or_the_shape():
    m = potts()
    x0 = one_hot(torch.zeros(4, 6, dtype=torch.long), 3)
    out = sample(m, x0, method="categorical-gwg", n_steps=5, generator=torch.Generator().manual_seed(0))
    assert out.shape == x0.shape and torch.equal(out.reshape(4, 6, 3).sum(-1), torch.ones(4, 6))
    plain = lambda x: m.log_density(x.reshape(x.shape[0], -1))   # noqa: E731  (no .categories)
    out3 = sample(plain, x0.reshape(4, 6, 3), method="categorical-gibbs", n_steps=5,
                  generator=torch.Generator().manual_seed(0))
    assert out3.shape == (4, 6, 3)
    with pytest.raises(EBMError, match="needs the number of categories"):
        make_sampler(plain, "categorical-gibbs").init(x0)
    out2 = make_sampler(plain, "categorical-gibbs", categories=3).init(x0)
    assert out2.x.shape == x0.shape


def test_non_one_hot_start_is_refused_naming_the_site():
    x0 = one_hot(torch.zeros(2, 6, dtype=torch.long), 3)
    x0[1, 4] = 1.0                       # site 1 of chain 1 now has two categories on
    with pytest.raises(EBMError, match="chain 1 site 1"):
        make_sampler(potts(), "categorical-gwg").init(x0)
