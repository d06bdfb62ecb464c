"""Image energy networks: shapes, spectral norm, the size-based default, and shape errors."""
from __future__ import annotations

import pytest
import torch

from ebmlab.errors import EBMError
from ebmlab.nets.image import ResNetEnergy, SmallConvNet, default_image_net
from ebmlab.models.energy import EnergyModel


@pytest.mark.parametrize("c,s,kind", [(1, 8, SmallConvNet), (3, 16, SmallConvNet), (1, 28, ResNetEnergy)])
def test_default_net_shapes(c, s, kind):
    net = default_image_net(c, s)
    assert isinstance(net, kind)
    x = torch.rand(2, c, s, s) * 2 - 1
    assert net(x).shape == (2,)
    g = EnergyModel(net).score(x)                          # smooth and differentiable in x
    assert g.shape == x.shape and bool(torch.isfinite(g).all())


def test_default_net_picks_by_size():
    assert isinstance(default_image_net(3, 64), ResNetEnergy) and isinstance(default_image_net(3, 128), ResNetEnergy)
    assert isinstance(default_image_net(1, 12), SmallConvNet)


@pytest.mark.parametrize("cls,s", [(SmallConvNet, 8), (ResNetEnergy, 16)])
def test_spectral_norm_option(cls, s):
    net = cls(1, s, spectral_norm=True)
    names = [n for n, _ in net.named_parameters()]
    assert any("parametrizations" in n for n in names)
    assert not any("parametrizations" in n for n, _ in cls(1, s).named_parameters())
    net.train()
    out = net(torch.rand(3, 1, s, s))
    assert out.shape == (3,)


def test_net_rejects_wrong_shape_and_bad_sizes():
    net = SmallConvNet(1, 8)
    with pytest.raises(EBMError, match=r"\[B, 1, 8, 8\]"):
        net(torch.rand(2, 3, 8, 8))
    with pytest.raises(EBMError):
        default_image_net(0, 8)
    with pytest.raises(EBMError):
        default_image_net(1, 2)


def test_small_net_batch_independent():
    # no batch norm: f of one image must not depend on the others in the batch
    net = SmallConvNet(1, 8)
    x = torch.rand(4, 1, 8, 8)
    assert torch.allclose(net(x)[:1], net(x[:1]), atol=1e-6)
