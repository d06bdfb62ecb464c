"""Fréchet distance: exact on Gaussians, ~0 on a set with itself, grows with a shift; digits ratio."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ebmlab.data.images import load_digits_images
from ebmlab.errors import EBMError
from ebmlab.metrics.frechet import fd_ratio, frechet_distance, inception_fid


def test_fd_self_zero_and_closed_form():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2000, 4, generator=g, dtype=torch.float64)
    assert frechet_distance(a, a) < 1e-8
    # FD between the empirical moments has a closed form when covariances commute (diagonal)
    b = a * torch.tensor([1.0, 2.0, 0.5, 1.0], dtype=torch.float64) + torch.tensor([3.0, 0, 0, 0], dtype=torch.float64)
    ca, cb = np.cov(a.numpy(), rowvar=False), np.cov(b.numpy(), rowvar=False)
    ma, mb = a.mean(0).numpy(), b.mean(0).numpy()
    from scipy.linalg import sqrtm
    ref = ((ma - mb) ** 2).sum() + np.trace(ca + cb - 2 * np.real(sqrtm(ca @ cb)))
    assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-6)


def test_fd_grows_with_shift():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(500, 8, generator=g), torch.randn(500, 8, generator=g)
    d = [frechet_distance(a, b + s) for s in (0.0, 0.5, 1.0, 2.0)]
    assert d == sorted(d) and d[-1] > 30 * d[0]


def test_fd_bad_input():
    with pytest.raises(EBMError):
        frechet_distance(torch.zeros(1, 3), torch.zeros(5, 3))
    with pytest.raises(EBMError):
        frechet_distance(torch.zeros(5, 3), torch.zeros(5, 4))
    with pytest.raises(EBMError, match="NaN"):
        frechet_distance(torch.full((5, 3), float("nan")), torch.zeros(5, 3))


def test_digits_fd_ratio():
    tr = load_digits_images("train", model_scale=True)
    te = load_digits_images("test", model_scale=True)
    # real data against real data at equal sizes: ratio ~ 1
    r = fd_ratio(tr[::2], tr[1::2], te)
    assert 0.7 < r["ratio"] < 1.4 and r["fd_train_test"] > 0
    # uniform noise (a sampler that learned nothing) and brightened digits are far worse
    noise = torch.rand(tr[::2].shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert fd_ratio(noise, tr[1::2], te)["ratio"] > 20
    assert fd_ratio((tr[::2] + 0.3).clamp(-1, 1), tr[1::2], te)["ratio"] > 2


def test_digits_classifier_saved_and_reloaded(tmp_path):
    from ebmlab.metrics import digits_features as dfeat
    net = dfeat.get_digits_classifier(0)                 # cached per process: trained once
    path = tmp_path / "clf.safetensors"
    dfeat.save_digits_classifier(net, path)
    x = load_digits_images("test", model_scale=True)[:16]
    assert torch.equal(dfeat.features(x, weights_path=path), dfeat.features(x))
    assert dfeat.features(x).shape == (16, dfeat.FEATURE_DIM)
    assert dfeat.digits_accuracy() > 0.9
    path.write_bytes(b"junk")
    dfeat._CACHE.pop((0, str(path)), None)
    with pytest.raises(EBMError, match="not a digits-classifier"):
        dfeat.get_digits_classifier(0, path)


def test_inception_fid_needs_local_weights(tmp_path, monkeypatch):
    monkeypatch.delenv("EBMLAB_INCEPTION_WEIGHTS", raising=False)
    x = torch.zeros(2, 3, 8, 8)
    with pytest.raises(EBMError, match="never downloads"):
        inception_fid(x, x)
    with pytest.raises(EBMError, match="not found"):
        inception_fid(x, x, weights_path=tmp_path / "missing.pth")
