"""CUDA readiness, checked on a CPU: tensors made inside ebmlab go to the device of the tensors they
meet, and sampling loops read nothing back to the host per step.

A factory call without ``device=`` (``torch.eye(d)``, ``torch.ones(n)``, ``torch.rand(...)``) makes a
CPU tensor, which then meets the caller's CUDA tensors in an arithmetic op and raises "Expected all
tensors to be on the same device". No GPU is needed to find such calls: ``_factories_without_device``
records every factory call that names no device while the code under test runs. Where a GPU is
present, the same functions also run on it for real. ``host_reads`` (tests/host_reads.py) counts the
tensor -> Python reads (bool(), float(), .item(), ...), each a host sync on a GPU: their number must not
grow with the steps.
"""
from __future__ import annotations

import pytest
import torch

from ebmlab.samplers import SAMPLER_NAMES
from host_reads import host_reads

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


def _target(method: str):
    """(f, x0, options) fit for ``method``: an RBM for {0, 1} states, a Potts lattice for one-hot ones, a
    small drl model for ``recovery``, a Gaussian otherwise."""
    from ebmlab.models.categorical import one_hot
    from ebmlab.models.potts import Potts
    from ebmlab.models.rbm import RBM
    from ebmlab.samplers.registry import BINARY_SAMPLERS, CATEGORICAL_SAMPLERS
    g = torch.Generator().manual_seed(0)
    if method in BINARY_SAMPLERS:
        return RBM.random(6, 3, generator=g), (torch.rand(4, 6, generator=g) < 0.5).float(), {}
    if method in CATEGORICAL_SAMPLERS:
        return Potts.lattice(2, 2, 3), one_hot(torch.randint(0, 3, (4, 4), generator=g), 3), {}
    if method == "recovery":
        from ebmlab.models.recovery import RecoveryEnergyModel
        from ebmlab.nets.levels import LevelConvNet
        torch.manual_seed(0)
        model = RecoveryEnergyModel(LevelConvNet(1, 8, 3), 3)
        return model, torch.randn(4, 1, 8, 8, generator=g), {"steps_per_level": 2}
    options = {"bounds": [(-3.0, 3.0)]} if method == "mh-jump" else {}
    return (lambda x: -0.5 * x.pow(2).sum(1)), torch.zeros(4, 2), options


@pytest.mark.parametrize("method", SAMPLER_NAMES)
def test_sampling_loops_read_nothing_back_per_step(monkeypatch, method):
    from ebmlab.samplers import make_sampler, run_chains
    f, x0, options = _target(method)
    counts = []
    for n_steps in (3, 30):
        reads = host_reads(monkeypatch)
        run_chains(make_sampler(f, method, **options), x0, n_steps, torch.Generator().manual_seed(0))
        counts.append(len(reads))
        monkeypatch.undo()
    assert counts[0] == counts[1], counts


def test_ais_reads_nothing_back_per_temperature(monkeypatch):
    from ebmlab.estimate.ais import ais_log_z
    x = torch.randn(100, 2, generator=torch.Generator().manual_seed(0))
    counts = []
    for n_temps in (3, 30):
        reads = host_reads(monkeypatch)
        ais_log_z(lambda v: -0.5 * v.pow(2).sum(1), x, n_chains=16, n_temps=n_temps,
                  generator=torch.Generator().manual_seed(0))
        counts.append(len(reads))
        monkeypatch.undo()
    assert counts[0] == counts[1], counts


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
