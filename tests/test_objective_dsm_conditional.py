"""Noise-conditional denoising score matching (``dsm_conditional``, NCSN) and drl's energy scale:
the model's levels and shapes, the loss on each example's own level (closed form on a Gaussian),
annealed Langevin on each level's f with Tweedie's last step, exact resume, old configs, bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from ebmlab.models.noise_conditional import NoiseConditionalEnergyModel
from ebmlab.models.recovery import RecoveryEnergyModel
from ebmlab.nets.levels import LevelConvNet
from ebmlab.rundir.config import RunConfig
from ebmlab.samplers.annealed import AnnealedLangevin
from ebmlab.samplers.recovery import conditional_grad, langevin_move
from ebmlab.samplers.run import run_chains
from ebmlab.training.api import resume_run, start_run
from ebmlab.training.objectives import DSM, Batch

from helpers_runs import assert_runs_identical, fails_cleanly

D = torch.float64


class LevelQuadratic(nn.Module):
    """n(x, i) = -σ_i ‖x‖² / (2 (1 + σ_i²)): f(x, σ_i) = n / σ_i is N(0, I) blurred by N(0, σ_i² I),
    whose score is -x / (1 + σ_i²) (the exact noise-conditional score of standard-normal data)."""

    def __init__(self, sigmas: list[float]) -> None:
        super().__init__()
        self.register_buffer("s", torch.tensor(sorted(sigmas, reverse=True), dtype=D))

    def forward(self, x: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        s = self.s[i]
        return -s * x.reshape(x.shape[0], -1).pow(2).sum(1) / (2 * (1 + s ** 2))


def identity_net(fn, *args):
    return fn(*args)


def test_the_model_stores_its_levels_largest_first_and_scales_by_one_over_sigma():
    net = LevelConvNet(1, 8, 3, width=4)
    model = NoiseConditionalEnergyModel(net, [0.1, 1.0, 0.3])
    assert model.noise_levels.tolist() == pytest.approx([1.0, 0.3, 0.1]) and model.n_levels == 3
    x = torch.randn(5, 1, 8, 8)
    i = torch.tensor([0, 1, 2, 2, 0])
    out = model.noise_log_density(x, i)
    assert out.shape == (5,)
    assert torch.allclose(out, net(x, i) / model.noise_levels[i], atol=1e-6)
    assert torch.allclose(model.log_density(x), model.noise_log_density(x, torch.full((5,), 2)))
    assert model(x).shape == (5,)
    assert "noise_levels" not in model.state_dict()            # derived from the config, not a weight


def test_the_model_refuses_no_levels():
    with pytest.raises(Exception, match="at least one noise level"):
        NoiseConditionalEnergyModel(LevelConvNet(1, 8, 1, width=4), [])


def test_conditional_dsm_loss_is_each_examples_own_level_and_its_closed_form():
    """On N(0, I) data with the exact blurred score s = -x̃ / (1 + σ²), σ s + ε = (ε - σ x) / (1 + σ²), so
    E ½ ‖σ s(x̃, σ) + ε‖² = (d/2) / (1 + σ²) per level (the minimum, not 0: ε is not predictable from x̃);
    the batch loss is the per-example formula with each example's own level."""
    sigmas = [1.0, 0.5, 0.1]
    model = NoiseConditionalEnergyModel(LevelQuadratic(sigmas), sigmas).double()
    n, d = 60_000, 3
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g, dtype=D)
    loss, stats = DSM(sigmas=tuple(sigmas)).loss(model, Batch(x_pos=x, x_neg=None, y_pos=None, gen=torch.Generator().manual_seed(5)),
                                                 identity_net)
    # redo the objective's draws: level index then noise, from the same generator
    g2 = torch.Generator().manual_seed(5)
    idx = torch.randint(0, 3, (n,), generator=g2)
    eps = torch.randn(x.shape, generator=g2, dtype=D)
    sig = torch.tensor(sigmas, dtype=D)[idx][:, None]
    xt = x + sig * eps
    per = 0.5 * (sig * (-xt / (1 + sig ** 2)) + eps).pow(2).sum(1)
    assert torch.allclose(loss, per.mean(), rtol=1e-10)
    closed = torch.tensor([0.5 * d / (1 + s * s) for s in sigmas], dtype=D)[idx].mean()
    assert abs(float(loss.detach()) - float(closed)) < 5 * float(per.std()) / n ** 0.5
    assert set(stats) >= {"dsm", "score_norm", "f_pos"}


def test_annealed_langevin_follows_each_levels_own_score_and_ends_with_tweedie():
    sigmas = [1.0, 0.5, 0.1]
    model = NoiseConditionalEnergyModel(LevelQuadratic(sigmas), sigmas).double()
    smp = AnnealedLangevin(model, step_size=0.001, sigmas=sigmas, steps_per_level=2, bounds=None, denoise=True)
    x0 = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), dtype=D)
    st = smp.init(x0)
    assert torch.allclose(st.score, -x0 / 2.0)                        # level 0: σ = 1
    for t in range(1, 6):
        st, _ = smp.step(st)
        s = sigmas[min(t // 2, 2)]
        assert torch.allclose(st.score, -st.x / (1 + s * s))          # step t's state: its level's score
    # the final step: the noisy move, then x + σ_L² s(x, σ_L)
    g = torch.Generator().manual_seed(7)
    moved = smp.move(st, torch.Generator().manual_seed(7))
    out, _ = smp.final_step(st, g)
    assert torch.allclose(out, moved + 0.01 * (-moved / 1.01))


def test_annealed_langevin_on_the_exact_scores_samples_the_data():
    """Standard-normal data, exact noise-conditional scores: the walk ends at N(0, (1 + σ_L²) a) with
    a = 1 / (1 - α / (2 (1 + σ_L²))) (unadjusted Langevin's bias), shrunk by Tweedie's factor 1 / (1 + σ_L²)."""
    sigmas = [2.0, 1.0, 0.5, 0.2]
    model = NoiseConditionalEnergyModel(LevelQuadratic(sigmas), sigmas).double()
    eps = 0.02
    smp = AnnealedLangevin(model, step_size=eps, sigmas=sigmas, steps_per_level=150, bounds=None, denoise=True)
    n = 4000
    x, _ = run_chains(smp, torch.full((n, 2), 5.0, dtype=D), 600, torch.Generator().manual_seed(0))
    v = 1 + 0.2 ** 2
    var = v / (1 - eps / (2 * v)) / v ** 2
    assert abs(float(x.mean())) < 5 * (var / (2 * n)) ** 0.5
    assert abs(float(x.var()) - var) < 5 * var * (2 / (2 * n)) ** 0.5


def test_the_sampler_refuses_a_conditional_model_at_other_levels():
    model = NoiseConditionalEnergyModel(LevelQuadratic([1.0, 0.1]), [1.0, 0.1])
    with pytest.raises(Exception, match="trained at levels"):
        AnnealedLangevin(model, 0.01, sigmas=[1.0, 0.5, 0.1])


# ------------------------------------------------------------------ runs
NC_TINY = dict(preset="digits", objective="dsm", dsm_conditional=True, dsm_sigmas=[1.0, 0.3, 0.05],
               sampler="annealed-langevin", mcmc_steps=6, step_size=1e-4, steps=6, batch_size=32, net_width=4,
               checkpoint_every=3, log_every=2, plot_every=1000, seed=1)


def test_a_noise_conditional_dsm_run_resumes_bit_exactly(tmp_path):
    torch.set_num_threads(1)
    ref, model = start_run("digits", tmp_path / "ref", **NC_TINY)
    assert isinstance(model, NoiseConditionalEnergyModel)
    assert ref.fit().status == "finished"

    class StopAt3:
        def on_checkpoint(self, trainer, step):
            if step == 3:
                trainer.request_stop()
    part, _ = start_run("digits", tmp_path / "run", callbacks=[StopAt3()], **NC_TINY)
    assert part.fit().status == "interrupted" and part.step == 3
    rest = resume_run(tmp_path / "run")
    assert rest.step == 3 and rest.fit().status == "finished"
    assert_runs_identical(tmp_path / "ref", tmp_path / "run")


def test_ebmlab_sample_anneals_a_noise_conditional_run(tmp_path, capsys):
    from ebmlab.cli import main as cli_main
    torch.set_num_threads(1)
    trainer, _ = start_run("digits", tmp_path / "run", **{**NC_TINY, "steps": 2})
    trainer.fit()
    code = cli_main(["sample", str(tmp_path / "run"), "--n", "12", "--out", str(tmp_path / "s.npy")])
    assert code == 0, capsys.readouterr().err
    x = np.load(tmp_path / "s.npy")
    assert x.shape == (12, 1, 8, 8) and np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 16.0


def test_configs_written_before_the_new_keys_keep_the_old_behaviour(tmp_path):
    d = RunConfig(objective="dsm", dsm_sigmas=[0.5, 0.1], sampler="annealed-langevin").to_dict()
    for key in ("dsm_conditional", "drl_energy_scale"):
        del d[key]
    c = RunConfig.from_dict(json.loads(json.dumps(d)))
    assert c.dsm_conditional is False and c.drl_energy_scale == 1.0


@pytest.mark.parametrize("argv,contains", [
    (["--data", "moons", "--objective", "dsm", "--dsm-conditional", "--sampler", "annealed-langevin"], "trains on images"),
    (["--data", "digits", "--objective", "cd", "--dsm-conditional"], "belongs to objective dsm"),
    (["--data", "digits", "--objective", "dsm", "--dsm-conditional", "--sampler", "langevin"], "annealed-langevin"),
    (["--data", "digits", "--objective", "drl", "--drl-energy-scale", "0"], "drl_energy_scale"),
])
def test_bad_input_fails_in_one_line_and_writes_nothing(tmp_path, capsys, argv, contains):
    out = tmp_path / "run"
    fails_cleanly(["train", *argv, "--out", str(out), "--steps", "2"], capsys, contains)
    assert not out.exists()


# ------------------------------------------------------------------ drl's energy scale
class QuadraticLevels(nn.Module):
    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return -0.5 * x.reshape(x.shape[0], -1).pow(2).sum(1)


@pytest.mark.parametrize("c", [1.0, 2e-3])
def test_drl_energy_scale_divides_f_and_makes_the_drift_half_grad_n_at_c_equal_b2(c):
    model = RecoveryEnergyModel(QuadraticLevels(), 3, energy_scale=c).double()
    y = torch.randn(4, 5, dtype=D)
    t = torch.tensor([0, 1, 2, 0])
    s2 = model.sigmas[t].double() ** 2
    assert torch.allclose(model.level_log_density(y, t), -0.5 * y.pow(2).sum(1) / (c * s2))
    # one noise-free step with b² = c from the anchor itself: ỹ + (b²/2) σ² ∇f = ỹ + ∇n / 2
    _, grad = conditional_grad(lambda z: model.level_log_density(z, t), y, y, model.sigmas[t].double())
    step = langevin_move(y, grad, model.sigmas[t].double(), c, None, noise=False)
    assert torch.allclose(step, y + 0.5 * (-y))
