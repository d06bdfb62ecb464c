"""``input_gain``: the vector MLP's fixed front is gain x (x - mean) / std. Runs written before the key existed
open with gain 1; a network without that front refuses the setting instead of ignoring it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ebmlab.errors import EBMError
from ebmlab.nets.mlp import Standardize
from ebmlab.rundir.config import RunConfig


def _front(model: torch.nn.Module) -> Standardize:
    fronts = [m for m in model.modules() if isinstance(m, Standardize)]
    assert len(fronts) == 1
    return fronts[0]


def test_the_gain_multiplies_the_standardised_input(tmp_path):
    import ebmlab
    x = np.random.default_rng(0).normal([1.0, -2.0], [3.0, 0.5], size=(400, 2)).astype(np.float32)
    runs = {g: ebmlab.train(None, x, tmp_path / f"g{g}", steps=2, progress=False, input_gain=g) for g in (1.0, 2.5)}
    one, scaled = _front(runs[1.0].model), _front(runs[2.5].model)
    assert torch.equal(one.mean, scaled.mean)
    assert torch.allclose(one.std / scaled.std, torch.full((2,), 2.5))
    z = torch.tensor([[4.0, -1.0]])
    assert torch.allclose(scaled(z), 2.5 * one(z))
    # the saved run rebuilds with its gain
    again = _front(ebmlab.load(tmp_path / "g2.5"))
    assert torch.allclose(again(z), scaled(z))


def test_old_configs_read_gain_one_and_bad_gains_are_refused():
    old = RunConfig().to_dict()
    del old["input_gain"]                                  # a config.json written before the key existed
    assert RunConfig.from_dict(old).input_gain == 1.0
    for bad in (0.0, -1.0, float("nan"), float("inf"), 1e4):
        with pytest.raises(EBMError, match="input_gain must be in") as err:
            RunConfig(input_gain=bad)
        assert str(bad) in str(err.value)


def test_a_network_without_the_standardised_front_refuses_the_gain(tmp_path):
    import ebmlab
    images = np.random.default_rng(0).uniform(-1, 1, size=(32, 1, 8, 8)).astype(np.float32)
    with pytest.raises(EBMError, match="input_gain scales the standardised input") as err:
        ebmlab.train(None, images, tmp_path / "img", steps=1, progress=False, input_gain=2.0)
    assert "leave input_gain at 1" in str(err.value)
    assert not (tmp_path / "img").exists()


def test_the_2d_nce_preset_takes_gain_1_4_and_the_other_objectives_and_user_networks_keep_1():
    """Session 16 (training/presets.py, results/objectives2d_gain_nce_s16.md): nce's 2-D preset only."""
    from ebmlab.data.sources import load_data
    from ebmlab.training.presets import resolve_config
    ds = load_data("moons")
    gains = {obj: resolve_config("moons", {"objective": obj}, dataset=ds).input_gain for obj in ("cd", "dsm", "ssm", "nce")}
    assert gains == {"cd": 1.0, "dsm": 1.0, "ssm": 1.0, "nce": 1.4}
    assert resolve_config("moons", {"objective": "nce", "input_gain": 2.0}, dataset=ds).input_gain == 2.0
    # a user's network has no standardised front for the gain to scale
    assert resolve_config("moons", {"objective": "nce", "net": "custom"}, dataset=ds).input_gain == 1.0
