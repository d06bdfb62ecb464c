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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_ais_and_mmd_on_the_gpu_agree_with_the_cpu():
    from ebmlab.estimate.ais import fit_base
    g = torch.Generator().manual_seed(0)
    x_ref = torch.randn(100, 3, generator=g, dtype=torch.float64)
    assert torch.allclose(fit_base(x_ref.cuda()).scale.cpu(), fit_base(x_ref).scale)
