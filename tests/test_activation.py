"""The vector MLP's activation (``--activation``): recorded per run, SiLU for runs that predate it."""
import json

import pytest
import torch
from torch import nn

import ebmlab
from ebmlab.cli import main
from ebmlab.nets.mlp import ACTIVATIONS, MLP
from ebmlab.rundir import config as config_module
from ebmlab.rundir.config import RunConfig
from ebmlab.errors import EBMError

TINY = dict(steps=20, batch_size=64, buffer_size=256, mcmc_steps=2, hidden=16, depth=2, log_every=10,
            checkpoint_every=10, plot_every=1000, n_test=200)


def test_config_choices_match_the_networks_table():
    assert tuple(ACTIVATIONS) == config_module.ACTIVATIONS


def test_mlp_uses_the_named_activation_and_refuses_others():
    relu = MLP(2, 8, 2, activation="relu")
    assert [type(m) for m in relu.body if not isinstance(m, nn.Linear)] == [nn.ReLU, nn.ReLU]
    assert all(not isinstance(m, nn.ReLU) for m in MLP(2, 8, 2).body)        # default: SiLU
    with pytest.raises(ValueError, match="unknown activation"):
        MLP(2, 8, 2, activation="tanh")


def test_a_config_without_the_key_is_a_silu_run():
    # runs written before the key existed: their weights were trained with SiLU, and a ReLU net would
    # load the same state dict without complaint, so the missing key must mean SiLU
    d = RunConfig().to_dict()
    del d["activation"]
    assert RunConfig.from_dict(d).activation == "silu"


def test_relu_run_is_recorded_and_reloads_as_relu(tmp_path):
    run = ebmlab.train("auto", "moons", tmp_path / "r", progress=False, activation="relu", **TINY)
    recorded = json.loads((tmp_path / "r" / "config.json").read_text())
    assert recorded["activation"] == "relu"
    loaded = ebmlab.load(tmp_path / "r")
    assert any(isinstance(m, nn.ReLU) for m in loaded.net.modules())
    x = torch.randn(7, 2)
    torch.testing.assert_close(loaded.log_density(x), run.model.log_density(x))


def test_cli_flag_and_bad_values(tmp_path, capsys):
    assert main(["train", "--data", "moons", "--out", str(tmp_path / "a"), "--activation", "relu", "--steps", "20",
                 "--batch-size", "64", "--hidden", "16", "--quiet"]) == 0
    assert json.loads((tmp_path / "a" / "config.json").read_text())["activation"] == "relu"
    with pytest.raises(SystemExit) as e:
        main(["train", "--data", "moons", "--out", str(tmp_path / "b"), "--activation", "tanh"])
    assert e.value.code == 2 and not (tmp_path / "b").exists()
    with pytest.raises(EBMError, match="ssm needs a smooth network"):
        RunConfig(objective="ssm", activation="relu")
