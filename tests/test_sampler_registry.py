"""The one sampler table: every entry point agrees on names and defaults; mh-jump works outside
training; masked Langevin (inpainting) and AIS's MALA move share the samplers' arithmetic."""
from __future__ import annotations

import inspect
import math

import pytest
import torch
from torch import nn

import ebmlab
from ebmlab.errors import EBMError
from ebmlab.models.energy import EnergyModel
from ebmlab.samplers import (HMC, MALA, SAMPLER_NAMES, SAMPLERS, GaussianRandomWalk, Langevin, MaskedLangevin,
                             MetropolisHastings, UniformJumpProposal, make_sampler, run_chains, sample)
from ebmlab.samplers.mala import mala_log_q_ratio, mala_propose


def gauss(x: torch.Tensor) -> torch.Tensor:
    return -0.5 * (x * x).reshape(x.shape[0], -1).sum(1)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _default(cls, name: str):
    return inspect.signature(cls.__init__).parameters[name].default


def test_one_list_of_names_everywhere():
    from ebmlab.cli import _parser
    from ebmlab.rundir.config import SAMPLERS as CONFIG_SAMPLERS
    assert SAMPLER_NAMES == ("mh-jump", "mh", "langevin", "mala", "hmc", "gibbs", "gwg", "dmala", "dula",
                             "block-gibbs", "categorical-gibbs", "categorical-gwg", "annealed-langevin",
                             "recovery") == tuple(SAMPLERS)
    assert tuple(CONFIG_SAMPLERS) == SAMPLER_NAMES
    assert tuple(ebmlab.samplers.METHODS) == SAMPLER_NAMES
    sub = _parser()._subparsers._group_actions[0].choices
    assert tuple(sub["sample"]._option_string_actions["--method"].choices) == SAMPLER_NAMES
    assert tuple(sub["train"]._option_string_actions["--sampler"].choices) == SAMPLER_NAMES


def test_defaults_agree_with_the_classes():
    assert SAMPLERS["langevin"].step_size == _default(Langevin, "step_size")
    assert SAMPLERS["mala"].step_size == _default(MALA, "step_size")
    assert SAMPLERS["hmc"].step_size == _default(HMC, "step_size")
    assert SAMPLERS["mh"].step_size == _default(GaussianRandomWalk, "scale")
    assert MetropolisHastings(gauss).proposal.scale == SAMPLERS["mh"].step_size
    for name in ("langevin", "mala", "hmc"):
        assert make_sampler(gauss, name).step_size == SAMPLERS[name].step_size
    assert make_sampler(gauss, "mh").proposal.scale == SAMPLERS["mh"].step_size
    assert make_sampler(gauss, "hmc").n_leapfrog == _default(HMC, "n_leapfrog")


@pytest.mark.parametrize("method,kw", [("mh", {}), ("langevin", {}), ("mala", {}), ("hmc", {}),
                                       ("mh-jump", {"bounds": [(-3.0, 3.0)]})])
def test_sample_without_step_size_uses_the_table_default(method, kw):
    x0 = torch.randn(32, 2, generator=gen(0))
    a = sample(gauss, x0, method=method, n_steps=5, generator=gen(1), **kw)
    b = sample(gauss, x0, method=method, n_steps=5, step_size=SAMPLERS[method].step_size, generator=gen(1), **kw)
    assert torch.equal(a, b)


def test_mh_jump_in_sample_stays_in_the_box_and_mixes():
    box = [(-1.0, 1.0), (0.0, 4.0)]
    x = sample(lambda x: torch.zeros(x.shape[0]), torch.zeros(2000, 2), method="mh-jump", bounds=box,
               n_steps=30, step_size=0.1, jump_prob=0.5, generator=gen(0))
    assert (x[:, 0].abs() <= 1).all() and (x[:, 1] >= 0).all() and (x[:, 1] <= 4).all()
    assert x[:, 1].mean() > 1.5   # a flat target spreads from the edge over the box


def test_mh_jump_local_scale_is_a_fraction_of_the_box_width():
    s = make_sampler(gauss, "mh-jump", step_size=0.1, bounds=[(-1.0, 1.0), (0.0, 4.0)], jump_prob=0.3)
    assert isinstance(s.proposal, UniformJumpProposal)
    assert s.proposal.local_scale == pytest.approx(0.1 * 3.0) and s.proposal.jump_prob == 0.3


def test_mh_jump_uses_the_model_box_and_needs_one():
    model = EnergyModel(nn.Linear(2, 1), bounds=[(-2, 2), (-2, 2)])
    x = sample(model, torch.zeros(64, 2), method="mh-jump", n_steps=10, generator=gen(0))
    assert (x.abs() <= 2).all()
    with pytest.raises(EBMError, match="mh-jump"):
        sample(gauss, torch.zeros(4, 2), method="mh-jump")


@pytest.mark.parametrize("call", [
    lambda: make_sampler(gauss, "nuts"),
    lambda: make_sampler(gauss, "mala", n_leapfrog=3),
    lambda: make_sampler(gauss, "mh-jump", bounds=[(1.0, -1.0)]),
    lambda: make_sampler(gauss, "mh-jump", bounds=[(0.0, 1.0)], step_size=-1.0),
    lambda: make_sampler(gauss, "mh-jump", bounds=[(0.0, 1.0)], jump_prob=1.5),
])
def test_registry_mistakes_are_one_line_ebmerrors(call):
    with pytest.raises(EBMError) as err:
        call()
    assert "\n" not in str(err.value)


def test_cli_sample_with_mh_jump(tmp_path):
    from ebmlab.cli import main
    run = tmp_path / "run"
    assert main(["train", "--data", "moons", "--steps", "3", "--sampler", "mh", "--out", str(run), "--quiet",
                 "--checkpoint-every", "3", "--plot-every", "1000"]) == 0
    out = tmp_path / "s.npy"
    assert main(["sample", str(run), "--method", "mh-jump", "--n", "16", "--n-steps", "5", "--out", str(out)]) == 0
    assert out.is_file()


# ---- masked Langevin: the observed coordinates never move ----

def test_masked_langevin_moves_only_free_coordinates():
    x0 = torch.randn(16, 1, 4, 4, generator=gen(0))
    free = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    free[..., :2] = True
    x, _ = run_chains(MaskedLangevin(gauss, free, 0.1, bounds=(-1.0, 1.0)), x0, 10, gen(1))
    keep = ~free.expand_as(x0)
    assert torch.equal(x[keep], x0[keep])
    assert (x[~keep] != x0[~keep]).all() and (x[~keep].abs() <= 1).all()


def test_masked_langevin_with_everything_free_is_langevin():
    x0 = torch.randn(8, 3, generator=gen(0))
    a, _ = run_chains(MaskedLangevin(gauss, torch.ones(1, 3, dtype=torch.bool), 0.1), x0, 5, gen(2))
    b, _ = run_chains(Langevin(gauss, 0.1), x0, 5, gen(2))
    assert torch.equal(a, b)


def test_masked_langevin_bad_mask():
    with pytest.raises(EBMError):
        MaskedLangevin(gauss, torch.ones(1, 3))               # not bool
    s = MaskedLangevin(gauss, torch.ones(1, 5, dtype=torch.bool))
    with pytest.raises(EBMError, match="broadcast"):
        s.init(torch.zeros(4, 3))


# ---- the MALA proposal arithmetic that MALA and AIS share ----

def test_mala_arithmetic_same_for_a_number_and_a_tensor_step():
    x = torch.randn(50, 3, generator=gen(0), dtype=torch.float64)
    score = -x
    a, za = mala_propose(x, score, 0.3, gen(5))
    b, zb = mala_propose(x, score, torch.tensor(0.3, dtype=torch.float64), gen(5))
    assert torch.equal(za, zb) and torch.allclose(a, b, rtol=0, atol=1e-14)
    ra = mala_log_q_ratio(x, a, za, -a, 0.3)
    rb = mala_log_q_ratio(x, b, zb, -b, torch.tensor(0.3, dtype=torch.float64))
    assert torch.allclose(ra, rb, rtol=0, atol=1e-12)
    # against the definition log q(b|a) = -|b - a - eps grad f(a)|^2 / (4 eps)
    log_q = lambda to, frm: -((to - frm - 0.3 * (-frm)) ** 2).sum(1) / 1.2   # noqa: E731
    assert torch.allclose(ra, log_q(x, a) - log_q(a, x), rtol=1e-10, atol=1e-10)
    assert math.isfinite(float(ra.sum()))
