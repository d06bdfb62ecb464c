"""Diffusion recovery likelihood (``--objective drl``): the schedule, the recovery Langevin's law,
the loss on a tiny case, the level walk, exact resume, sampling, bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ebmlab.models.recovery import FINAL_SIGNAL, RecoveryEnergyModel, recovery_schedule
from ebmlab.samplers.recovery import RecoveryLangevin, recover
from ebmlab.samplers.run import run_chains
from ebmlab.training.api import resume_run, start_run
from ebmlab.training.objectives import DRL, Batch

from helpers_runs import assert_runs_identical, fails_cleanly


class Quadratic(nn.Module):
    """n(x, t) = -c_t ‖x‖² / 2: level t's EBM f = n / σ_t² is a centred Gaussian of precision c_t / σ_t²."""

    def __init__(self, c: list[float]) -> None:
        super().__init__()
        self.c = nn.Parameter(torch.tensor(c))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return -0.5 * self.c[t] * x.reshape(x.shape[0], -1).pow(2).sum(1)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------ the schedule and the forward noise
@pytest.mark.parametrize("levels", [1, 4, 6])
def test_schedule_ends_near_noise_and_its_steps_compose(levels):
    sigma, abar = recovery_schedule(levels)
    assert sigma.shape == (levels,) and abar.shape == (levels + 1,)
    assert abar[0] == 1.0 and abar[-1] == pytest.approx(FINAL_SIGNAL, rel=1e-9)
    assert torch.all(sigma > 0) and torch.all(sigma < 1) and torch.all(abar[1:] < abar[:-1])
    # ᾱ_{t+1} = ᾱ_t (1 - σ_t²): each step's noise composes to the level's signal fraction
    assert torch.allclose(abar[1:], abar[:-1] * (1 - sigma ** 2), rtol=1e-12)


def test_diffuse_gives_each_level_its_marginal():
    """x_{t+1} = sqrt(ᾱ_{t+1}) x0 + sqrt(1 - ᾱ_{t+1}) N(0, 1): mean and variance within 5 standard errors."""
    model = RecoveryEnergyModel(Quadratic([1.0] * 4), 4)
    n, x0 = 20000, 0.7
    _, abar = recovery_schedule(4)
    for t in range(4):
        tt = torch.full((n,), t)
        y, anchor = model.diffuse(torch.full((n, 1), x0), tt, torch.randn(n, 1, generator=gen(t)),
                                  torch.randn(n, 1, generator=gen(10 + t)))
        m, v = math.sqrt(abar[t + 1]) * x0, 1 - float(abar[t + 1])
        assert abs(float(anchor.mean()) - m) < 5 * math.sqrt(v / n)
        assert abs(float(anchor.var()) - v) < 5 * v * math.sqrt(2 / n)
        assert torch.allclose(y, model.scales[t] * (math.sqrt(abar[t]) * x0 + math.sqrt(1 - abar[t]) *
                                                    torch.randn(n, 1, generator=gen(t))), atol=1e-6)


# ------------------------------------------------------------------ the recovery Langevin
def test_recovery_langevin_samples_the_gaussian_conditional():
    """f(ỹ) = -c‖ỹ‖²/(2σ²) and the tether to x: the conditional is N(x / (1 + c), σ² / (1 + c));
    unadjusted Langevin with ε = b² σ² has the stationary variance σ²/(1+c) / (1 - b²(1+c)/4) (an AR(1)
    with coefficient 1 - b²(1+c)/2). Mean and variance within 5 standard errors of that law."""
    c, b2, n = 1.0, 0.05, 8000
    model = RecoveryEnergyModel(Quadratic([c]), 1)
    sigma_t = model.sigmas[0]                            # the one level's σ (0.995 for L = 1)
    x = torch.full((n, 1), 2.0)
    lev = torch.zeros(n, dtype=torch.long)
    y = recover(lambda z: model.level_log_density(z, lev), x, sigma_t.expand(n), 400, b2, gen(0))
    s2 = float(sigma_t) ** 2
    mean, var = 2.0 / (1 + c), s2 / (1 + c) / (1 - b2 * (1 + c) / 4)
    assert abs(float(y.mean()) - mean) < 5 * math.sqrt(var / n)
    assert abs(float(y.var()) - var) < 5 * var * math.sqrt(2 / n)


class Recorder(nn.Module):
    """n(x, t) = 0, recording the levels it is asked about (one entry per call)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.seen: list[int] = []

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.seen.append(int(t[0]))
        return self.w * x.reshape(x.shape[0], -1).sum(1)


def test_the_walk_visits_the_levels_top_down_and_ends_in_the_box():
    net = Recorder()
    model = RecoveryEnergyModel(net, 3)
    smp = RecoveryLangevin(model, step_size=0.2, steps_per_level=4, bounds=[[-1.0, 1.0]])
    assert smp.total_steps == 12
    x, diag = run_chains(smp, torch.randn(50, 1, 4, 4, generator=gen(0)) * 3, 12, gen(1))
    # init at level 2, then a gradient after every step but the last: 4 at 2, 4 at 1, 3 at 0 (+ init)
    assert net.seen == [2] * 4 + [1] * 4 + [0] * 4
    assert x.shape == (50, 1, 4, 4) and x.abs().max() <= 1.0 and torch.isfinite(x).all()
    assert float(diag.acceptance_rate.mean()) == 1.0


def test_the_recovery_sampler_refuses_a_model_without_levels():
    from ebmlab.errors import EBMError
    from ebmlab.models.energy import EnergyModel
    with pytest.raises(EBMError, match="--objective drl"):
        RecoveryLangevin(EnergyModel(nn.Linear(2, 1)))


# ------------------------------------------------------------------ the loss
def test_drl_loss_is_cd_on_the_recovery_conditional():
    """The objective's loss on a tiny batch equals mean f(ỹ-, t) - mean f(ỹ+, t), rebuilt by hand from
    the same generator draws (levels, the two noises, then the chains' noise); its gradient in c_t is
    the recovery likelihood's: E-[∂f] - E+[∂f] with ∂f/∂c_t = -‖ỹ‖²/(2σ_t²) on the examples at level t."""
    torch.manual_seed(0)
    model = RecoveryEnergyModel(Quadratic([0.5, 1.0, 2.0]), 3)
    x = torch.rand(16, 1, 2, 2, generator=gen(5)) * 2 - 1
    obj = DRL(steps=3, step_scale=0.3)
    net = lambda fn, *a: fn(*a).float()                          # noqa: E731  (fp32: the plain call)
    loss, stats = obj.loss(model, Batch(x, None, None, gen(7)), net)
    g = gen(7)
    t = torch.randint(0, 3, (16,), generator=g)
    e1, e2 = torch.randn(x.shape, generator=g), torch.randn(x.shape, generator=g)
    y_pos, anchor = model.diffuse(x, t, e1, e2)
    y_neg = recover(lambda z: model.level_log_density(z, t), anchor, model.sigmas[t], 3, 0.3, g)
    f_pos, f_neg = model.level_log_density(y_pos, t), model.level_log_density(y_neg, t)
    assert loss.item() == pytest.approx((f_neg.mean() - f_pos.mean()).item(), rel=1e-6)
    assert float(stats["f_pos"]) == pytest.approx(float(f_pos.mean().detach()), rel=1e-6)
    loss.backward()
    sq = lambda y: y.reshape(16, -1).pow(2).sum(1) / (2 * model.sigmas[t] ** 2)   # noqa: E731
    want = torch.stack([(-sq(y_neg) * (t == k)).sum() + (sq(y_pos) * (t == k)).sum() for k in range(3)]) / 16
    assert torch.allclose(model.net.c.grad, want.detach(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ runs: resume, sample, bad input
DRL_TINY = dict(preset="digits", objective="drl", steps=6, batch_size=32, mcmc_steps=2, drl_levels=3,
                net_width=4, checkpoint_every=3, log_every=2, plot_every=1000, seed=1)


def test_a_drl_run_resumes_bit_exactly(tmp_path):
    torch.set_num_threads(1)
    ref, _ = start_run("digits", tmp_path / "ref", **DRL_TINY)
    assert ref.fit().status == "finished"

    class StopAt3:
        def on_checkpoint(self, trainer, step):
            if step == 3:
                trainer.request_stop()
    part, _ = start_run("digits", tmp_path / "run", callbacks=[StopAt3()], **DRL_TINY)
    assert part.fit().status == "interrupted" and part.step == 3
    rest = resume_run(tmp_path / "run")
    assert rest.step == 3 and rest.fit().status == "finished"
    assert_runs_identical(tmp_path / "ref", tmp_path / "run")


def test_ebmlab_sample_walks_a_drl_run_from_noise(tmp_path, capsys):
    from ebmlab.cli import main as cli_main
    torch.set_num_threads(1)
    trainer, _ = start_run("digits", tmp_path / "run", **{**DRL_TINY, "steps": 2})
    trainer.fit()
    code = cli_main(["sample", str(tmp_path / "run"), "--n", "12", "--out", str(tmp_path / "s.npy")])
    err = capsys.readouterr()
    assert code == 0, err.err
    assert "6 steps" in err.out                      # L x K = 3 x 2: the whole walk by default
    x = np.load(tmp_path / "s.npy")
    assert x.shape == (12, 1, 8, 8) and np.isfinite(x).all()
    assert x.min() >= 0.0 and x.max() <= 16.0      # back in the digits' own scale, inside its range
    code = cli_main(["sample", str(tmp_path / "run"), "--n", "4", "--out", str(tmp_path / "s.png")])
    assert code == 0 and (tmp_path / "s.png").stat().st_size > 0


@pytest.mark.parametrize("argv,contains", [
    (["--data", "moons", "--objective", "drl"], "trains on images"),
    (["--data", "digits", "--objective", "drl", "--drl-levels", "0"], "drl_levels"),
    (["--data", "digits", "--objective", "drl", "--drl-levels", "-2"], "drl_levels"),
    (["--data", "digits", "--objective", "drl", "--sampler", "langevin"], "--sampler recovery"),
    (["--data", "digits", "--objective", "drl", "--net", "resnet"], "level-conditioned"),
])
def test_bad_drl_input_fails_in_one_line_and_writes_nothing(tmp_path, capsys, argv, contains):
    out = tmp_path / "run"
    fails_cleanly(["train", *argv, "--out", str(out), "--steps", "2"], capsys, contains)
    assert not out.exists()


def test_the_recovery_method_on_a_cd_run_is_one_line(tmp_path, capsys):
    trainer, _ = start_run("moons", tmp_path / "run", steps=2, hidden=8, depth=1, mcmc_steps=1, log_every=1)
    trainer.fit()
    out = tmp_path / "s.npy"
    line = fails_cleanly(["sample", str(tmp_path / "run"), "--method", "recovery", "--n", "4", "--out", str(out)],
                         capsys, "--objective drl")
    assert not out.exists()
    assert "--sampler in train, --method in sample" in line      # it named only --method, train's flag is --sampler


def test_image_presets_carry_the_objectives_own_recipe():
    """--objective drl on any preset gets the level walk from N(0, I); dsm on digits its annealed sampler."""
    from ebmlab.training.presets import resolve_config
    for preset in ("digits", "short-run", "faces", None):
        c = resolve_config("digits", {"preset": preset, "objective": "drl"})
        assert (c.sampler, c.init, c.objective) == ("recovery", "gaussian", "drl") and c.drl_levels == 6
    c = resolve_config("digits", {"preset": "digits", "objective": "drl", "step_size": 0.1, "drl_levels": 4})
    assert c.step_size == 0.1 and c.drl_levels == 4            # the user's settings win
    c = resolve_config("digits", {"preset": "digits", "objective": "dsm"})
    assert c.sampler == "annealed-langevin" and len(c.dsm_sigmas) > 1 and c.mcmc_steps % len(c.dsm_sigmas) == 0


def test_a_trajectory_of_the_level_walk_is_refused_in_one_line(tmp_path, capsys):
    torch.set_num_threads(1)
    trainer, _ = start_run("digits", tmp_path / "run", **{**DRL_TINY, "steps": 1})
    trainer.fit()
    out = tmp_path / "s.png"
    fails_cleanly(["sample", str(tmp_path / "run"), "--n", "4", "--trajectory", "2", "--out", str(out)],
                  capsys, "--trajectory is not available")
    assert not out.exists()
