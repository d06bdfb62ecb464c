"""Unit tests for ebmlab.samplers: accept arithmetic, shapes, seeds, no graph/.grad, argument errors."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import ebmlab
from ebmlab.errors import EBMError
from ebmlab.models.energy import EnergyModel
from ebmlab.samplers import (HMC, MALA, BitFlip, GaussianRandomWalk, Langevin, MetropolisHastings,
                             UniformJumpProposal, make_sampler, mh_accept, run_chains, sample)
from ebmlab.samplers.accept import accept_prob, guard

METHODS = ["mh", "langevin", "mala", "hmc"]
KW = {"mh": {}, "langevin": {}, "mala": {}, "hmc": {"n_leapfrog": 3}}


def gauss(x: torch.Tensor) -> torch.Tensor:
    """log N(0, I) up to a constant, any event shape."""
    return -0.5 * (x * x).reshape(x.shape[0], -1).sum(1)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- the MH accept rule ----

def test_mh_accept_exact_arithmetic_float64():
    log_alpha = torch.tensor([0.0, 1e-300, 3.0, math.inf, -1e-12, -0.1, -0.7, -2.0, -30.0,
                              -math.inf, math.nan] * 50, dtype=torch.float64)
    accepted = mh_accept(log_alpha, gen(7))
    u = torch.rand(log_alpha.shape, generator=gen(7), dtype=torch.float64)   # the same draws
    expected = (log_alpha >= 0) | (u < torch.exp(log_alpha))
    assert accepted.dtype == torch.bool and accepted.shape == log_alpha.shape
    assert torch.equal(accepted, expected)
    # the lecture's ">=" rule: ties and improvements always accepted; -inf and NaN never
    assert accepted[(log_alpha >= 0)].all()
    assert not accepted[torch.isneginf(log_alpha) | torch.isnan(log_alpha)].any()


def test_mh_accept_tie_accepted_even_for_u_near_one():
    # log_alpha = 0 must be accepted whatever u is: f(x') >= f(x) accepts unconditionally.
    accepted = mh_accept(torch.zeros(100_000, dtype=torch.float64), gen(1))
    assert accepted.all()


def test_mh_accept_rate_matches_exp_log_alpha():
    n, p = 200_000, 0.3
    rate = mh_accept(torch.full((n,), math.log(p), dtype=torch.float64), gen(2)).double().mean().item()
    assert abs(rate - p) < 5 * math.sqrt(p * (1 - p) / n)


def test_accept_prob_and_guard():
    la = torch.tensor([0.5, 0.0, -1.0, -math.inf, math.nan], dtype=torch.float64)
    expected = torch.tensor([1.0, 1.0, math.exp(-1.0), 0.0, 0.0], dtype=torch.float64)
    assert torch.equal(accept_prob(la), expected)
    f_prop = torch.tensor([0.0, math.inf, math.nan, -math.inf, 1.0], dtype=torch.float64)
    g = guard(torch.full((5,), 2.0, dtype=torch.float64), f_prop)
    assert g[0] == 2.0 and g[4] == 2.0 and torch.isneginf(g[1:4]).all()


@pytest.mark.parametrize("bad", [math.inf, math.nan])
@pytest.mark.parametrize("method", ["mh", "mala", "hmc"])
def test_non_finite_proposals_are_rejected(method, bad):
    # f is bad (NaN or +inf) for x > 0: chains started at x < 0 can never enter that region.
    def f(x):
        v = -0.5 * (x[:, 0] + 1.0) ** 2
        return torch.where(x[:, 0] > 0, torch.full_like(v, bad), v)
    x0 = torch.full((2000, 1), -1.0, dtype=torch.float64)
    x, diag = run_chains(make_sampler(f, method, step_size=0.5, **KW[method]), x0, 20, gen(3))
    assert (x <= 0).all() and torch.isfinite(x).all()
    assert (x != x0).any()   # but they do move


# ---- shapes, dtypes, reproducibility ----

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 3, 3), (3,)])
def test_shape_dtype_device_kept(method, dtype, shape):
    f = gauss if len(shape) > 1 else (lambda x: -0.5 * x * x)
    x0 = torch.randn(shape, generator=gen(0), dtype=dtype)
    x = sample(f, x0, method=method, n_steps=3, step_size=0.1, generator=gen(1), **KW[method])
    assert x.shape == x0.shape and x.dtype == dtype and x.device == x0.device
    assert not x.requires_grad


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_chain_different_seed_differs(method):
    x0 = torch.randn(64, 2, generator=gen(0))
    a = sample(gauss, x0, method=method, n_steps=10, step_size=0.3, generator=gen(5), **KW[method])
    b = sample(gauss, x0, method=method, n_steps=10, step_size=0.3, generator=gen(5), **KW[method])
    c = sample(gauss, x0, method=method, n_steps=10, step_size=0.3, generator=gen(6), **KW[method])
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_default_generator_follows_torch_manual_seed():
    x0 = torch.zeros(16, 2)
    torch.manual_seed(11)
    a = sample(gauss, x0, n_steps=5)
    torch.manual_seed(11)
    b = sample(gauss, x0, n_steps=5)
    assert torch.equal(a, b)


def test_zero_steps_returns_a_copy_of_x0():
    x0 = torch.randn(4, 2)
    x = sample(gauss, x0, n_steps=0, generator=gen(0))
    assert torch.equal(x, x0) and x.data_ptr() != x0.data_ptr()


def test_x0_is_not_modified_and_requires_grad_input_ok():
    x0 = torch.randn(8, 2, requires_grad=True)
    before = x0.detach().clone()
    x = sample(gauss, x0, method="mala", n_steps=3, step_size=0.1, generator=gen(0))
    assert torch.equal(x0.detach(), before) and not x.requires_grad and x0.grad is None


# ---- update rules, checked against hand arithmetic ----

def test_langevin_one_step_is_the_documented_rule():
    x0 = torch.randn(32, 3, generator=gen(0), dtype=torch.float64)
    eps, noise, clip = 0.2, 0.05, 0.3
    s = Langevin(lambda x: -0.5 * ((x - 4.0) ** 2).sum(1), eps, noise_scale=noise, grad_clip=clip,
                 bounds=[(-1.0, 1.0)])
    state, info = s.step(s.init(x0), gen(9))
    z = torch.randn(x0.shape, generator=gen(9), dtype=torch.float64)
    expected = (x0 + eps * (4.0 - x0).clamp(-clip, clip) + noise * z).clamp(-1.0, 1.0)
    assert torch.allclose(state.x, expected, rtol=0, atol=1e-15)
    assert torch.allclose(state.log_density, -0.5 * ((expected - 4.0) ** 2).sum(1))
    assert torch.allclose(state.score, 4.0 - expected)
    assert info.accepted.all() and (info.accept_prob == 1).all()
    assert torch.allclose(info.grad_norm, torch.linalg.vector_norm(4.0 - x0, dim=1))


def test_langevin_default_noise_is_sqrt_2_eps():
    assert Langevin(gauss, 0.08).noise_scale == pytest.approx(math.sqrt(0.16))


def test_mh_step_is_the_lecture_rule():
    x0 = torch.randn(1000, 2, generator=gen(0), dtype=torch.float64)
    f = lambda x: -0.5 * ((x - 1.0) ** 2).sum(1)
    s = MetropolisHastings(f, GaussianRandomWalk(0.7))
    state, info = s.step(s.init(x0), gen(4))
    g = gen(4)
    prop = x0 + 0.7 * torch.randn(x0.shape, generator=g, dtype=torch.float64)
    u = torch.rand(1000, generator=g, dtype=torch.float64)
    d = f(prop) - f(x0)
    acc = (d >= 0) | (u < torch.exp(d))
    assert torch.equal(info.accepted, acc)
    # allclose at rounding level: torch.add(x, z, alpha=s) may fuse the multiply-add
    assert torch.allclose(state.x, torch.where(acc[:, None], prop, x0), rtol=0, atol=1e-14)
    assert torch.allclose(state.log_density, torch.where(acc, f(prop), f(x0)), rtol=0, atol=1e-12)


def test_mala_log_alpha_matches_hand_formula():
    eps = 0.4
    f = lambda x: -0.25 * (x ** 4).sum(1)          # non-Gaussian so the proposal is really asymmetric
    grad = lambda x: -(x ** 3)
    x0 = torch.randn(500, 2, generator=gen(0), dtype=torch.float64)
    s = MALA(f, eps)
    _, info = s.step(s.init(x0), gen(8))
    z = torch.randn(x0.shape, generator=gen(8), dtype=torch.float64)
    xp = x0 + eps * grad(x0) + math.sqrt(2 * eps) * z
    log_q = lambda a, b: -((a - b - eps * grad(b)) ** 2).sum(1) / (4 * eps)   # log q(a | b)
    la = f(xp) - f(x0) + log_q(x0, xp) - log_q(xp, x0)
    assert torch.allclose(info.accept_prob, torch.exp(la.clamp(max=0)), rtol=1e-10, atol=1e-12)


def test_hmc_exact_on_quadratic_is_reversible_energy_conserving_for_tiny_step():
    s = HMC(gauss, step_size=1e-3, n_leapfrog=5)
    x0 = torch.randn(200, 3, generator=gen(0), dtype=torch.float64)
    _, info = s.step(s.init(x0), gen(1))
    assert (info.accept_prob > 1 - 1e-6).all()   # the Hamiltonian is conserved to O(ε²)


def test_bitflip_keeps_dtype_and_values():
    for dtype in (torch.float32, torch.int64, torch.bool):
        x0 = (torch.rand(50, 6, generator=gen(0)) < 0.5).to(dtype)
        f = lambda x: -(x.double().sum(1) - 3.0) ** 2
        x = sample(f, x0, method="mh", n_steps=5, proposal=BitFlip(0.2), generator=gen(1))
        assert x.dtype == dtype and ((x == 0) | (x == 1)).all()


def test_uniform_jump_stays_in_box_and_jumps():
    x0 = torch.zeros(2000, 2)
    p = UniformJumpProposal([(-1.0, 1.0), (0.0, 3.0)], jump_prob=0.5, local_scale=0.5)
    x = sample(lambda x: torch.zeros(x.shape[0]), x0, method="mh", n_steps=30, proposal=p, generator=gen(0))
    assert (x[:, 0] >= -1).all() and (x[:, 0] <= 1).all() and (x[:, 1] >= 0).all() and (x[:, 1] <= 3).all()
    assert x[:, 1].mean() > 1.0   # started on the box edge, the flat target spreads to the middle


def test_langevin_respects_model_bounds():
    model = EnergyModel(nn.Linear(2, 1), bounds=[(-1, 1), (-1, 1)])
    nn.init.constant_(model.net.weight, 50.0)   # pushes hard towards the corner
    x = sample(model, torch.zeros(100, 2), step_size=0.1, n_steps=20, generator=gen(0))
    assert (x.abs() <= 1).all()


# ---- no graph, no .grad ----

@pytest.mark.parametrize("method", METHODS)
def test_no_grad_left_on_parameters_and_no_graph(method):
    net = nn.Sequential(nn.Linear(2, 16), nn.SiLU(), nn.Linear(16, 1))
    model = EnergyModel(net)
    x, diag = run_chains(make_sampler(model, method, step_size=0.05, **KW[method]),
                         torch.randn(32, 2, generator=gen(0)), 5, gen(1))
    assert all(p.grad is None for p in model.parameters())
    assert not x.requires_grad and x.grad_fn is None
    for t in (diag.acceptance_rate, diag.mean_accept_prob):
        assert t.shape == (32,) and t.grad_fn is None and ((t >= 0) & (t <= 1)).all()
    if method != "mh":
        assert diag.mean_grad_norm.shape == (32,) and (diag.mean_grad_norm > 0).all()
    else:
        assert diag.mean_grad_norm is None


def test_langevin_diagnostics_report_full_acceptance():
    _, diag = run_chains(Langevin(gauss, 0.1), torch.zeros(8, 2), 4, gen(0))
    assert (diag.acceptance_rate == 1).all() and diag.n_steps == 4


def test_public_entry_point():
    x = ebmlab.sample(gauss, torch.zeros(10, 2), method="hmc", n_steps=2, step_size=0.1, generator=gen(0))
    assert x.shape == (10, 2)


def test_is_calibrated_flags():
    assert MetropolisHastings.is_calibrated and MALA.is_calibrated and HMC.is_calibrated
    assert not Langevin.is_calibrated


# ---- user mistakes ----

@pytest.mark.parametrize("call", [
    lambda: sample(gauss, torch.zeros(4, 2), method="nuts"),
    lambda: sample(gauss, torch.zeros(4, 2), step_size=-0.1),
    lambda: sample(gauss, torch.zeros(4, 2), step_size=0.0),
    lambda: sample(gauss, torch.zeros(4, 2), step_size=math.nan),
    lambda: sample(gauss, torch.zeros(4, 2), method="mala", step_size=-1.0),
    lambda: sample(gauss, torch.zeros(4, 2), method="hmc", n_leapfrog=0),
    lambda: sample(gauss, torch.zeros(4, 2), n_steps=-1),
    lambda: sample(gauss, torch.zeros(4, 2), n_steps=2.5),
    lambda: sample(gauss, torch.zeros(4, 2), noise_scale=-1.0),
    lambda: sample(gauss, torch.zeros(4, 2), grad_clip=0.0),
    lambda: sample(gauss, torch.zeros(4, 2), n_leapfrog=3),           # langevin has no n_leapfrog
    lambda: sample(gauss, torch.zeros(4, 2), bounds=[(1.0, -1.0)]),
    lambda: sample(gauss, torch.zeros(4, 3), bounds=[(0, 1), (0, 1)]),
    lambda: sample(lambda x: x, torch.zeros(4, 2)),                    # f returns [B, 2], not [B]
    lambda: sample(lambda x: x.sum(), torch.zeros(4, 2), method="mh"),  # f returns a scalar
    lambda: sample(gauss, torch.zeros(4, 2, dtype=torch.int64)),      # gradients need floats
    lambda: sample(gauss, torch.zeros(0, 2)),
    lambda: sample(gauss, [[0.0, 0.0]]),
    lambda: sample(gauss, torch.zeros(4, 2), generator=0),
    lambda: sample(gauss, torch.full((4, 2), 0.5), method="mh", proposal=BitFlip(0.1)),
    lambda: BitFlip(1.5),
    lambda: GaussianRandomWalk(0.0),
    lambda: UniformJumpProposal([(0, 1)], jump_prob=2.0),
    lambda: MetropolisHastings(gauss, proposal="gaussian"),
    lambda: make_sampler(42, "langevin"),
    lambda: run_chains("langevin", torch.zeros(4, 2), 3),
])
def test_bad_arguments_raise_ebmerror(call):
    with pytest.raises(EBMError) as err:
        call()
    assert "\n" not in str(err.value) and len(str(err.value)) > 10


# ---- cost: f is never evaluated twice at a point ----

@pytest.mark.parametrize("method,per_step,extra", [("langevin", 1, 0), ("mala", 1, 1), ("hmc", 3, 1), ("mh", 1, 1)])
def test_number_of_f_evaluations(method, per_step, extra):
    calls = []

    def f(x):
        calls.append(1)
        return gauss(x)
    run_chains(make_sampler(f, method, step_size=0.1, **KW[method]), torch.zeros(4, 2), 7, gen(0))
    # unadjusted Langevin: n evaluations for n steps, like a hand loop (the last point's f is not needed)
    assert len(calls) == 7 * per_step + extra


def test_final_step_matches_step():
    s = Langevin(gauss, 0.1)
    x0 = torch.randn(16, 2, generator=gen(0))
    x_run, _ = run_chains(s, x0, 5, gen(1))
    g, state = gen(1), s.init(x0)
    for _ in range(5):
        state, _ = s.step(state, g)
    assert torch.equal(x_run, state.x)


def test_run_chains_freezes_parameters_while_sampling_and_restores_them():
    """Frozen parameters make sampling cheaper; the exact set that required grad must come back."""
    from ebmlab import EnergyModel
    from ebmlab.samplers.run import make_sampler, run_chains
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.SiLU(), torch.nn.Linear(8, 1))
    net[0].bias.requires_grad_(False)              # a parameter the user froze stays frozen
    seen = []
    model = EnergyModel(net)
    orig = model.log_density

    def spy(x):
        seen.append(any(p.requires_grad for p in net.parameters()))
        return orig(x)

    model.log_density = spy
    sampler = make_sampler(model, "langevin", step_size=0.01)
    run_chains(sampler, torch.randn(16, 2), 3, torch.Generator().manual_seed(0))
    assert seen and not any(seen)
    assert [p.requires_grad for p in net.parameters()] == [True, False, True, True]


# ---- ebmlab.sample never hands back NaN samples (session 15: they came back silently) ----

def _quadratic(x: torch.Tensor) -> torch.Tensor:
    return -(x ** 2).sum(-1)


def test_sample_refuses_non_finite_x0():
    x0 = torch.zeros(4, 2)
    x0[1, 0] = float("nan")
    with pytest.raises(EBMError, match="x0 contains NaN or infinite values"):
        ebmlab.sample(_quadratic, x0, "langevin", 5, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_sample_refuses_f_nan_or_plus_inf_at_x0(bad):
    # a calibrated sampler rejects every move from such a start and used to return x0 unchanged
    f = lambda x: torch.where(x[:, 0] > 0, torch.full_like(x[:, 0], bad), _quadratic(x))
    x0 = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    with pytest.raises(EBMError, match=r"f is NaN or \+inf at some chains' starting points"):
        ebmlab.sample(f, x0, "mh", 5, generator=torch.Generator().manual_seed(0))


def test_sample_allows_minus_inf_at_x0():
    # -inf is a point outside the support (a model's box): the chains may start there
    f = lambda x: torch.where(x[:, 0] > 0, torch.full_like(x[:, 0], -float("inf")), _quadratic(x))
    x0 = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    x = ebmlab.sample(f, x0, "mh", 5, generator=torch.Generator().manual_seed(0))
    assert x.shape == (2, 2) and bool(torch.isfinite(x).all())


def test_sample_refuses_chains_that_end_non_finite():
    # Langevin with a step far too large for a quartic f overflows to inf / NaN within a few steps
    quartic = lambda x: (x ** 4).sum(-1)
    with pytest.raises(EBMError, match="the chains reached NaN or infinite values within 50 steps"):
        ebmlab.sample(quartic, torch.full((4, 2), 3.0), "langevin", 50, step_size=1.0,
                      generator=torch.Generator().manual_seed(0))


def test_run_chains_leaves_finite_checks_to_its_caller():
    # training calls run_chains once a step: no host syncs there, its guard judges the chains
    quartic = lambda x: (x ** 4).sum(-1)
    x, _ = run_chains(make_sampler(quartic, "langevin", step_size=1.0), torch.full((4, 2), 3.0), 50,
                      torch.Generator().manual_seed(0))
    assert not bool(torch.isfinite(x).all())


# ---- MH with uniform jumps on a bounded EnergyModel: its own box mask stands in for the proposal's ----
class _Bump(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -((x - 0.5) ** 2).sum(1) * 3.0


def _mh_chain(f, box, x0, n=30):
    kernel = MetropolisHastings(f, UniformJumpProposal(box, jump_prob=0.3, local_scale=0.4))
    return run_chains(kernel, x0, n, gen(5))


def test_mh_jump_on_a_bounded_model_is_bit_identical_to_the_restricted_chain():
    """The MH kernel skips its own -inf mask when f is a plain EnergyModel whose bounds are the proposal's box
    (the 2-D recipe's chains); the chains and their acceptance must be exactly those of the masked path, which a
    plain lambda (not the model's own method) still takes — from starts inside and outside the box."""
    box = [(-1.0, 2.0), (-0.5, 1.5)]
    model = EnergyModel(_Bump(), bounds=box)
    x0 = torch.randn(500, 2, generator=gen(1)) * 2      # many starts outside the box (f = -inf there)
    x_fast, d_fast = _mh_chain(model, box, x0)
    x_ref, d_ref = _mh_chain(lambda x: model.log_density(x), box, x0)
    assert torch.equal(x_fast, x_ref)
    assert torch.equal(d_fast.acceptance_rate, d_ref.acceptance_rate)
    assert torch.equal(d_fast.mean_accept_prob, d_ref.mean_accept_prob)


def test_mh_jump_keeps_a_smaller_proposal_box_than_the_models():
    """With a proposal box inside the model's, the model's mask is not enough: chains must stay in the smaller box."""
    model = EnergyModel(_Bump(), bounds=[(-3.0, 3.0), (-3.0, 3.0)])
    small = [(0.0, 1.0), (0.0, 1.0)]
    x, _ = _mh_chain(model, small, torch.full((300, 2), 0.5))
    assert bool(((x >= 0) & (x <= 1)).all())
