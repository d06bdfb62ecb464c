"""The score-matching floor kept to the empty part of the box (``sm_uniform_where`` "empty",
training/floor.py): where its points fall, the radius the data sets, what happens with no empty space."""
from __future__ import annotations

import math

import pytest
import torch

from ebmlab.errors import EBMError
from ebmlab.models.energy import EnergyModel
from ebmlab.rundir.config import RunConfig
from ebmlab.training.floor import NN_QUANTILE, RADIUS_FACTOR, EmptySpace
from ebmlab.training.objectives import SSM

BOX = torch.tensor([[-5.0, 7.0], [-5.0, 4.0]])          # [d, 2] rows (low, high)


class _Zero(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(1) * 0.0


def floored_ssm(x_train: torch.Tensor, lam: float, where: str) -> SSM:
    obj = SSM(uniform=lam, uniform_where=where)
    obj.setup(EnergyModel(_Zero(), bounds=BOX.tolist()), x_train, lambda t: t, torch.device("cpu"), 0)
    return obj


def cluster(n: int, seed: int) -> torch.Tensor:
    """An anisotropic Gaussian cluster well inside BOX (std 1 along x, 0.3 along y)."""
    g = torch.Generator().manual_seed(seed)
    return torch.tensor([1.0, -0.5]) + torch.randn(n, 2, generator=g) * torch.tensor([1.0, 0.3])


def test_the_radius_is_a_multiple_of_the_datas_nearest_neighbour_distance_in_std_units():
    """On a regular grid every point's nearest neighbour is one spacing away; after dividing each
    coordinate by its std both spacings (0.1 in x, 0.2 in y: std 0.1 s and 0.2 s) are 1 / s."""
    i = torch.arange(40, dtype=torch.float32)
    gx, gy = torch.meshgrid(0.1 * i, 0.2 * i, indexing="ij")
    x = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    space = EmptySpace.fit(x, lambda t: t, torch.device("cpu"), 0)
    s = float(x[:, 0].std() / 0.1)                          # std of a coordinate in units of its spacing
    assert space.radius == pytest.approx(RADIUS_FACTOR / s, rel=1e-4)
    assert 0 < NN_QUANTILE <= 1


def test_empty_floor_points_lie_farther_than_the_radius_from_every_training_point():
    x_train = cluster(2000, 0)
    lam, n = 0.3, 20000
    x = torch.full((n, 2), 100.0)                           # outside the box: replaced rows are easy to tell
    for where in ("box", "empty"):
        obj = floored_ssm(x_train, lam, where)
        y = obj.floored(x, torch.Generator().manual_seed(1))
        new = (y != 100.0).all(1)
        frac = float(new.double().mean())
        # the empty part is most of this box, so nearly every floor row finds an empty candidate
        assert abs(frac - lam) < 5 * math.sqrt(lam * (1 - lam) / n)
        u = y[new]
        assert ((u >= BOX[:, 0]) & (u <= BOX[:, 1])).all()
        space = EmptySpace.fit(x_train, lambda t: t, torch.device("cpu"), 0)
        dist = torch.cdist(u / space.scale, x_train / space.scale).min(1).values
        near = int((dist <= space.radius).sum())
        if where == "empty":
            assert near == 0
        else:                                               # the box floor does land near the data
            assert near > 20


def test_with_no_empty_space_the_batch_keeps_its_data_points():
    """Training points on a fine grid over the whole box: no candidate is far from them, so no row is
    replaced (a floor row with no empty candidate keeps its data point)."""
    i = torch.linspace(0, 1, 60)
    gx, gy = torch.meshgrid(BOX[0, 0] + 12 * i, BOX[1, 0] + 9 * i, indexing="ij")
    x_train = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    obj = floored_ssm(x_train, 0.5, "empty")
    x = torch.full((1000, 2), 100.0)
    assert torch.equal(obj.floored(x, torch.Generator().manual_seed(2)), x)


def test_the_floor_place_key_defaults_to_box_for_old_configs_and_rejects_unknown_values():
    old = RunConfig(objective="ssm", sm_uniform=0.02).to_dict()
    del old["sm_uniform_where"]                             # a config.json written before the key existed
    assert RunConfig.from_dict(old).sm_uniform_where == "box"
    assert RunConfig(objective="ssm", sm_uniform_where="empty").sm_uniform_where == "empty"
    with pytest.raises(EBMError, match="sm_uniform_where must be one of box, empty"):
        RunConfig(objective="ssm", sm_uniform_where="nowhere")
