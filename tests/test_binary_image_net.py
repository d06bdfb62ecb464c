"""The default network of binary images (nets/binary_image.py): shapes, what build picks, and that runs
written before it (no ``default_net`` in data.json) keep their MLP."""
from __future__ import annotations

import pytest
import torch

from ebmlab.errors import EBMError
from ebmlab.models.energy import EnergyModel
from ebmlab.nets.binary_image import BinaryConvNet
from ebmlab.nets.mlp import MLP
from ebmlab.rundir.build import build_model, describe_binary_data
from ebmlab.rundir.config import RunConfig


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 4, 4), (3, 6, 5)])
def test_conv_net_takes_flat_bits_and_images(shape):
    net = BinaryConvNet(shape, width=4, hidden=8)
    d = shape[0] * shape[1] * shape[2]
    x = (torch.rand(5, d, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    out = net(x)
    assert out.shape == (5,) and torch.isfinite(out).all()
    assert torch.allclose(net(x.reshape(5, *shape)), out)
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(net(xg).sum(), xg)
    assert g.shape == x.shape and torch.isfinite(g).all()


def test_build_picks_the_conv_net_for_binary_images_only():
    cfg = RunConfig(preset="binary", hidden=16)
    img = build_model(cfg, describe_binary_data(16, [1, 4, 4]))
    assert isinstance(img, EnergyModel) and any(isinstance(m, BinaryConvNet) for m in img.modules())
    vec = build_model(cfg, describe_binary_data(16))
    assert not any(isinstance(m, BinaryConvNet) for m in vec.modules()) and any(isinstance(m, MLP) for m in vec.modules())
    forced = build_model(cfg.replace(net="mlp"), describe_binary_data(16, [1, 4, 4]))
    assert not any(isinstance(m, BinaryConvNet) for m in forced.modules())
    old = describe_binary_data(16, [1, 4, 4])
    del old["default_net"]                   # a run written before the conv net: its MLP is rebuilt
    assert not any(isinstance(m, BinaryConvNet) for m in build_model(cfg, old).modules())
    with pytest.raises(EBMError, match="needs binary images"):
        build_model(cfg.replace(net="conv"), describe_binary_data(16))
