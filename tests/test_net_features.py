"""The vector MLP's first layer (``--net-features linear|sine``): learned Fourier features, recorded per run,
"linear" for runs that predate the key, drawn from the run's seed and saved with the weights."""
import json
import math

import pytest
import torch
from torch import nn

import ebmlab
from ebmlab.cli import main
from ebmlab.errors import EBMError
from ebmlab.nets.mlp import FEATURES, MLP, SINE_SCALE, Sine
from ebmlab.rundir import config as config_module
from ebmlab.rundir.config import RunConfig

TINY = dict(steps=20, batch_size=64, buffer_size=256, mcmc_steps=2, hidden=16, depth=2, log_every=10,
            checkpoint_every=10, plot_every=1000, n_test=200)


def _first_layer(model) -> nn.Linear:
    return next(m for m in model.modules() if isinstance(m, nn.Linear))


def test_config_choices_match_the_networks_table():
    assert tuple(FEATURES) == config_module.NET_FEATURES


def test_sine_layer_shapes_and_frequency_scale():
    torch.manual_seed(0)
    net = MLP(2, 128, 3, features="sine")
    assert isinstance(net.body[1], Sine) and isinstance(net.body[3], nn.SiLU)
    assert net(torch.randn(5, 2)).shape == (5,)
    w, b = net.body[0].weight.detach(), net.body[0].bias.detach()
    # 256 draws of N(0, (2 pi s)^2): the sample std is within 4 standard errors (1 / sqrt(2 * 256) relative)
    assert abs(float(w.std()) / (2 * math.pi * SINE_SCALE) - 1) < 4 / math.sqrt(2 * w.numel())
    assert float(b.abs().max()) <= math.pi
    # same state-dict keys as the linear net: config.json, not the checkpoint, tells them apart
    assert net.state_dict().keys() == MLP(2, 128, 3).state_dict().keys()
    with pytest.raises(ValueError, match="unknown features"):
        MLP(2, 8, 2, features="cosine")
    with pytest.raises(ValueError, match="exclude each other"):
        MLP(2, 8, 2, spectral_norm=True, features="sine")


def test_a_config_without_the_key_is_a_linear_run():
    # runs written before the key existed were trained with a linear first layer, and the sine net would
    # load their state dict without complaint, so the missing key must mean "linear"
    d = RunConfig().to_dict()
    del d["net_features"]
    assert RunConfig.from_dict(d).net_features == "linear"
    with pytest.raises(EBMError, match="exclude each other"):
        RunConfig(net_features="sine", spectral_norm=True)


def test_sine_layer_is_drawn_from_the_seed_and_saved_with_the_weights(tmp_path):
    a = ebmlab.train("auto", "moons", tmp_path / "a", progress=False, net_features="sine", seed=3, **TINY)
    b = ebmlab.train("auto", "moons", None, progress=False, net_features="sine", seed=3, **TINY)
    c = ebmlab.train("auto", "moons", None, progress=False, net_features="sine", seed=4, **TINY)
    torch.testing.assert_close(_first_layer(a.model).weight, _first_layer(b.model).weight, rtol=0, atol=0)
    assert not torch.equal(_first_layer(a.model).weight, _first_layer(c.model).weight)
    _assert_run_reloads_with(tmp_path / "a", a.model, "sine", Sine)


def _assert_run_reloads_with(run_dir, model, features, layer_type):
    """The run's config names the first layer, and the loaded run has that layer and the same f."""
    assert json.loads((run_dir / "config.json").read_text())["net_features"] == features
    loaded = ebmlab.load(run_dir)
    assert any(isinstance(m, layer_type) for m in loaded.net.modules())
    x = torch.randn(7, 2)
    torch.testing.assert_close(loaded.log_density(x), model.log_density(x))


def test_cli_flag_and_bad_values(tmp_path):
    assert main(["train", "--data", "moons", "--out", str(tmp_path / "a"), "--net-features", "sine", "--steps", "20",
                 "--batch-size", "64", "--hidden", "16", "--quiet"]) == 0
    assert json.loads((tmp_path / "a" / "config.json").read_text())["net_features"] == "sine"
    with pytest.raises(SystemExit) as e:
        main(["train", "--data", "moons", "--out", str(tmp_path / "b"), "--net-features", "fourier"])
    assert e.value.code == 2 and not (tmp_path / "b").exists()


def test_hybrid_layer_keeps_a_smooth_path_beside_the_sine_path():
    from ebmlab.nets.mlp import HybridFeatures
    torch.manual_seed(0)
    net = MLP(2, 128, 3, features="hybrid")
    first = net.body[0]
    assert isinstance(first, HybridFeatures) and isinstance(net.body[2], nn.SiLU)
    assert net(torch.randn(5, 2)).shape == (5,)
    h = first(torch.randn(9, 2))
    assert h.shape == (9, 128)
    # the sine half is bounded by 1; the smooth half is SiLU of an ordinary linear layer
    assert float(h[:, 64:].abs().max()) <= float(first.gain) + 1e-6
    x = torch.randn(9, 2)
    torch.testing.assert_close(first(x)[:, :64], nn.functional.silu(first.smooth(x)))
    w = first.fourier.weight.detach()
    assert abs(float(w.std()) / (2 * math.pi * SINE_SCALE) - 1) < 4 / math.sqrt(2 * w.numel())
    # an odd width gives the extra unit to the smooth path; relu reaches the smooth path too
    odd = HybridFeatures(3, 7, "relu")
    assert odd.smooth.out_features == 4 and odd.fourier.out_features == 3
    assert float(odd(torch.randn(4, 3))[:, :4].min()) >= 0.0
    with pytest.raises(ValueError, match="exclude each other"):
        MLP(2, 8, 2, spectral_norm=True, features="hybrid")
    with pytest.raises(EBMError, match="exclude each other"):
        RunConfig(net_features="hybrid", spectral_norm=True)


def test_hybrid_run_saves_and_loads(tmp_path):
    from ebmlab.nets.mlp import HybridFeatures
    a = ebmlab.train("auto", "moons", tmp_path / "a", progress=False, net_features="hybrid", seed=3, **TINY)
    _assert_run_reloads_with(tmp_path / "a", a.model, "hybrid", HybridFeatures)


def test_hybrid_gain_travels_with_the_weights(monkeypatch):
    # a run trained with one gain must load with it even if the module constant changes later
    from ebmlab.nets import mlp
    old = MLP(2, 16, 2, features="hybrid")
    assert float(old.body[0].gain) == pytest.approx(mlp.HYBRID_SINE_GAIN)
    monkeypatch.setattr(mlp, "HYBRID_SINE_GAIN", 1.0)
    new = MLP(2, 16, 2, features="hybrid")
    new.load_state_dict(old.state_dict())
    x = torch.randn(6, 2)
    torch.testing.assert_close(new(x), old(x))


@pytest.mark.parametrize("overrides, features, init", [
    ({}, "hybrid", "data"),                                          # the 2-D cd default (presets.CD_2D)
    ({"net_features": "linear", "init": "uniform"}, "linear", "uniform"),   # the user's flags win
    ({"objective": "nce"}, "linear", "uniform"),                     # other objectives keep the linear layer
])
def test_the_2d_cd_default_is_hybrid_with_data_restarts(tmp_path, overrides, features, init):
    ebmlab.train("auto", "moons", tmp_path / "r", progress=False, **{**TINY, "steps": 2, **overrides})
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (cfg["preset"], cfg["net_features"], cfg["init"]) == ("2d", features, init)
