"""Tensors made inside ebmlab go to the device of the tensors they meet (CUDA readiness, checked on a CPU).

A factory call without ``device=`` (``torch.eye(d)``, ``torch.ones(n)``, ``torch.rand(...)``) makes a
CPU tensor, which then meets the caller's CUDA tensors in an arithmetic op and raises "Expected all
tensors to be on the same device". No GPU is needed to find such calls: ``_factories_without_device``
records every factory call that names no device while the code under test runs. Where a GPU is
present, the same functions also run on it for real.
"""
from __future__ import annotations

import pytest
import torch

_FACTORIES = ("eye", "ones", "zeros", "full", "empty", "arange", "rand", "randn", "randint", "randperm", "tensor")


def _factories_without_device(monkeypatch) -> list[str]:
    """Patch torch's tensor factories to record (by name) each call that passes no ``device``."""
    calls: list[str] = []
    for name in _FACTORIES:
        real = getattr(torch, name)

        def recorded(*args, _real=real, _name=name, **kwargs):
            if kwargs.get("device") is None:
                calls.append(_name)
            return _real(*args, **kwargs)
        monkeypatch.setattr(torch, name, recorded)
    return calls


def test_ais_gaussian_base_makes_its_regulariser_on_the_data_device(monkeypatch):
    """fit_base added ``floor * torch.eye(d)`` (a CPU matrix) to the covariance of x_ref: ais_log_z with
    x_ref on a GPU (N >= 2 (d + 1), the full-covariance base) raised a device error."""
    from ebmlab.estimate.ais import fit_base
    x_ref = torch.randn(100, 3, generator=torch.Generator().manual_seed(0))
    calls = _factories_without_device(monkeypatch)
    base = fit_base(x_ref)
    assert calls == [] and base.scale.shape == (3, 3)


def test_mmd_makes_its_masks_and_labels_on_the_points_device(monkeypatch):
    """median_bandwidth's diagonal mask, the x/y label row of mmd2_unbiased / mmd_test and the permuted
    labels were CPU tensors: MMD of points on a GPU raised a device error."""
    from ebmlab.metrics.mmd import mmd2_unbiased, mmd_test
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(30, 2, generator=g), torch.randn(30, 2, generator=g) + 0.5
    expected = (mmd2_unbiased(x, y), mmd_test(x, y, n_permutations=20, generator=torch.Generator().manual_seed(1)))
    calls = _factories_without_device(monkeypatch)
    got = (mmd2_unbiased(x, y), mmd_test(x, y, n_permutations=20, generator=torch.Generator().manual_seed(1)))
    assert calls == [], calls
    assert got == expected     # the detector itself changes nothing


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_ais_and_mmd_on_the_gpu_agree_with_the_cpu():
    from ebmlab.estimate.ais import fit_base
    from ebmlab.metrics.mmd import mmd2_unbiased, mmd_test
    g = torch.Generator().manual_seed(0)
    x_ref = torch.randn(100, 3, generator=g, dtype=torch.float64)
    assert torch.allclose(fit_base(x_ref.cuda()).scale.cpu(), fit_base(x_ref).scale)
    x, y = torch.randn(30, 2, generator=g), torch.randn(30, 2, generator=g) + 0.5
    assert abs(mmd2_unbiased(x.cuda(), y.cuda()) - mmd2_unbiased(x, y)) < 1e-9
    gen = lambda: torch.Generator().manual_seed(1)
    assert mmd_test(x.cuda(), y.cuda(), 20, gen())[1] == mmd_test(x, y, 20, gen())[1]
