"""OOD scores and AUROC: the statistic itself, the score directions, and the digits outlier sets."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from ebmlab import EBMError
from ebmlab.evaluate.ood import (auroc, digits_outliers, image_patches, ood_scores, ood_table,
                                 shuffle_pixels, uniform_noise)


def test_auroc_extremes():
    assert auroc([2.0, 3.0, 4.0], [0.0, 1.0]) == 1.0
    assert auroc([0.0, 1.0], [2.0, 3.0, 4.0]) == 0.0
    assert auroc([1.0, 1.0, 1.0], [1.0, 1.0]) == 0.5
    same = np.random.default_rng(0).normal(size=50)
    assert auroc(same, same) == 0.5


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 6, size=rng.integers(1, 40)).astype(float)  # small integer range: many ties
    b = rng.integers(0, 6, size=rng.integers(1, 40)).astype(float) - 1
    expect = roc_auc_score(np.r_[np.ones(a.size), np.zeros(b.size)], np.r_[a, b])
    assert auroc(torch.tensor(a), b) == pytest.approx(expect, abs=1e-12)


def test_auroc_bad_input():
    with pytest.raises(EBMError):
        auroc([], [1.0])
    with pytest.raises(EBMError):
        auroc([float("nan")], [1.0])


def gaussian_f(x: torch.Tensor) -> torch.Tensor:
    return -0.5 * (x.reshape(x.shape[0], -1) ** 2).sum(1)


def test_ood_scores_direction_and_values():
    x = torch.tensor([[0.1, 0.0], [3.0, 4.0]])
    s = ood_scores(gaussian_f, x, batch_size=1)
    torch.testing.assert_close(s["log_density"], torch.tensor([-0.005, -12.5]))
    torch.testing.assert_close(s["score_norm"], torch.tensor([-0.1, -5.0]))  # ∇f = -x
    # both higher for the typical point
    assert all(bool(v[0] > v[1]) for v in s.values())


def test_ood_table_separates_far_outliers():
    g = torch.Generator().manual_seed(0)
    x_in = torch.randn(200, 2, generator=g)
    rows = ood_table(gaussian_f, x_in, {"far": torch.randn(100, 2, generator=g) + 8.0, "same": x_in.clone()})
    assert [r["outlier"] for r in rows] == ["far", "same"]
    assert rows[0]["auroc_log_density"] == 1.0 and rows[0]["auroc_score_norm"] == 1.0
    assert rows[1]["auroc_log_density"] == 0.5 and rows[1]["n_out"] == 200
    with pytest.raises(EBMError):
        ood_table(gaussian_f, x_in, {"wrong-shape": torch.zeros(5, 3)})


def test_outlier_sets_shapes_ranges_and_determinism():
    g = torch.Generator().manual_seed(0)
    noise = uniform_noise(7, generator=g)
    assert noise.shape == (7, 1, 8, 8) and noise.min() >= -1 and noise.max() <= 1
    digits = torch.rand(5, 1, 8, 8, generator=g) * 2 - 1
    sh = shuffle_pixels(digits, generator=g)
    assert torch.equal(sh.reshape(5, -1).sort(1).values, digits.reshape(5, -1).sort(1).values)
    assert not torch.equal(sh, digits)
    p1 = image_patches(6, generator=torch.Generator().manual_seed(3))
    p2 = image_patches(6, generator=torch.Generator().manual_seed(3))
    assert p1.shape == (6, 1, 8, 8) and torch.equal(p1, p2)
    assert p1.min() >= -1 and p1.max() <= 1 and p1.std() > 0
    sets = digits_outliers(digits.reshape(5, 64), n=4, generator=g)
    assert set(sets) == {"uniform-noise", "shuffled-pixels", "photo-patches"}
    assert all(v.shape == (4, 64) for v in sets.values())
