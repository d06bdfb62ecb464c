"""MMD², its permutation test, the Fréchet distance and energy histograms."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ebmlab import EBMError
from ebmlab.metrics.frechet import frechet_distance
from ebmlab.metrics.mmd import energy_histogram_data, mmd2_unbiased, mmd_test


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def normal(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, d, generator=gen(seed), dtype=torch.float64) + shift


def test_mmd2_matches_the_definition():
    x, y, h = normal(7, 3, 0), normal(5, 3, 1, 0.5), 1.3
    k = lambda a, b: math.exp(-float((a - b).square().sum()) / (2 * h * h))   # noqa: E731
    kxx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    kyy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / (5 * 4)
    kxy = sum(k(x[i], y[j]) for i in range(7) for j in range(5)) / (7 * 5)
    assert mmd2_unbiased(x, y, bandwidth=h) == pytest.approx(kxx + kyy - 2 * kxy, abs=1e-12)


def test_mmd2_near_zero_for_one_distribution_and_positive_for_a_shift():
    reps, n = 20, 200
    null = np.array([mmd2_unbiased(normal(n, 2, 2 * r), normal(n, 2, 2 * r + 1)) for r in range(reps)])
    sd = null.std(ddof=1)
    # unbiased: the mean of independent replicates is 0 within its standard error (5 of them)
    assert abs(null.mean()) < 5 * sd / math.sqrt(reps)
    shifted = mmd2_unbiased(normal(n, 2, 100), normal(n, 2, 101, shift=1.0))
    assert shifted > null.mean() + 10 * sd


def test_permutation_test_p_values():
    _, p_shift = mmd_test(normal(100, 2, 0), normal(100, 2, 1, 0.8), n_permutations=99, generator=gen(0))
    assert p_shift == pytest.approx(1 / 100)          # the smallest p a 99-permutation test can give
    # under the null p is uniform: with 40 replicates, #(p <= 0.2) ~ Binomial(40, 0.2) = 8 ± 2.5
    ps = [mmd_test(normal(40, 2, 2 * r), normal(40, 2, 2 * r + 1), n_permutations=49, generator=gen(r))[1]
          for r in range(40)]
    small = sum(p <= 0.2 for p in ps)
    assert abs(small - 8) <= 4 * math.sqrt(40 * 0.2 * 0.8)
    assert all(1 / 50 <= p <= 1 for p in ps)


def test_frechet_distance_exact_cases():
    x = normal(300, 4, 0)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    c = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    assert frechet_distance(x, x + c) == pytest.approx(float(c.square().sum()), abs=1e-6)
    feats = frechet_distance(x[:, :2], (x + c)[:, :2])   # features: the first two coordinates
    assert feats == pytest.approx(5.0, abs=1e-6)


def test_energy_histograms_share_bins_and_keep_the_sign():
    f = lambda x: -0.5 * x.square().sum(1)           # noqa: E731  f = log density, E = -f
    data, model = normal(500, 2, 0), normal(500, 2, 1) * 2.0
    edges, hd, hm = energy_histogram_data(f, data, model, bins=30)
    assert edges.shape == (31,) and hd.shape == hm.shape == (30,)
    w = np.diff(edges)
    assert (hd * w).sum() == pytest.approx(1.0) and (hm * w).sum() == pytest.approx(1.0)
    centers = 0.5 * (edges[1:] + edges[:-1])
    assert (hd * w * centers).sum() < (hm * w * centers).sum()   # wider model samples: higher energy
    assert edges[0] >= 0.0                                         # energies of this f are >= 0


def test_bad_inputs():
    with pytest.raises(EBMError, match="same event size"):
        mmd2_unbiased(normal(10, 2, 0), normal(10, 3, 1))
    with pytest.raises(EBMError, match="N >= 2"):
        mmd2_unbiased(torch.zeros(1, 2), normal(10, 2, 1))
    with pytest.raises(EBMError, match="n_permutations"):
        mmd_test(normal(10, 2, 0), normal(10, 2, 1), n_permutations=0)


def test_energy_histograms_of_a_float64_model_on_float32_points():
    """Both sets went to f as given: a float64 network raised torch's dtype error on float32 points (and a
    GPU model a device error on CPU points). They now follow the model's weights."""
    from ebmlab.models.energy import EnergyModel
    from ebmlab.nets.mlp import MLP
    torch.manual_seed(0)
    m = EnergyModel(MLP(2, 8, 1))
    m64 = EnergyModel(MLP(2, 8, 1)).double()
    m64.load_state_dict(m.state_dict())
    g = torch.Generator().manual_seed(1)
    data, model = torch.randn(50, 2, generator=g), torch.randn(50, 2, generator=g) + 1
    e32, e64 = energy_histogram_data(m, data, model, bins=10), energy_histogram_data(m64, data, model, bins=10)
    assert all(np.allclose(a, b, atol=1e-4) for a, b in zip(e32, e64))
