"""dsm with antithetic noise pairs (``dsm_antithetic``): each example's term is the mean of its terms at ε and -ε.

What must hold: the pair's loss is exactly that mean; the expectation is dsm's own closed form (the objective is
unchanged, only the estimator); for a linear score (a Gaussian model) the terms odd in ε cancel, so the pair's
variance is below that of two independent draws; the config key defaults to off for runs written before it; the
trainer's dsm reads it (a noise-conditional model gets each pair's level twice).
"""
from __future__ import annotations

import math

import pytest
import torch

from ebmlab.rundir.config import RunConfig
from ebmlab.training.score_matching import dsm_loss

D = torch.float64
MU = torch.tensor([1.0, -0.5], dtype=D)
A = torch.tensor([[1.0, 0.0], [0.6, 0.5]], dtype=D)
SIGMA = A @ A.T
M = torch.tensor([0.7, -0.2], dtype=D)
P = torch.tensor([[1.5, -0.4], [-0.4, 2.0]], dtype=D)


def quad_f(x: torch.Tensor) -> torch.Tensor:
    return -0.5 * (((x - M) @ P) * (x - M)).sum(1)


def draws(n: int, sigma: float, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = MU + torch.randn(n, 2, generator=g, dtype=D) @ A.T
    return x, torch.randn(n, 2, generator=g, dtype=D), torch.full((n,), sigma, dtype=D)


def per_example(x: torch.Tensor, eps: torch.Tensor, sigma: float) -> torch.Tensor:
    """½ ‖σ s(x + σε) + ε‖² for the Gaussian model's score s(x) = -P (x - m), in closed form."""
    return 0.5 * (sigma * -((x + sigma * eps - M) @ P) + eps).pow(2).sum(1)


def test_the_pair_s_loss_is_the_mean_of_its_two_terms():
    x, eps, sig = draws(1000, 0.3, 0)
    anti, stats = dsm_loss(quad_f, x, eps, sig, antithetic=True)
    plus, _ = dsm_loss(quad_f, x, eps, sig)
    minus, _ = dsm_loss(quad_f, x, -eps, sig)
    assert torch.allclose(anti, 0.5 * (plus + minus), rtol=1e-12, atol=1e-12)
    assert torch.allclose(stats["dsm"], anti.detach())


def grad_m(x: torch.Tensor, eps: torch.Tensor, sigma: float) -> torch.Tensor:
    """[n, 2] each example's gradient of ½ ‖σ s(x + σε) + ε‖² in the model's mean m: σ P (σ s(x + σε) + ε)."""
    return sigma * (sigma * -((x + sigma * eps - M) @ P) + eps) @ P


# the share of the gradient's variance left (the smaller σ, the more of it is the noise the pair cancels; at
# 100 000 examples a variance is known to ~1 %): measured 0.71 at σ 0.5, well under 0.5 at 0.1
@pytest.mark.parametrize("sigma, most", [(0.1, 0.5), (0.5, 0.8)])
def test_the_expectation_is_dsm_s_closed_form_and_the_gradient_s_variance_is_lower(sigma, most):
    """The loss's value keeps its variance (its largest part, ½‖ε‖², is even in ε); what the pairs cut is the
    gradient's, whose leading noise σ P ε is odd in ε. Against two independent draws per example (the same cost)."""
    n = 100_000
    x, eps, sig = draws(n, sigma, 2)
    loss, _ = dsm_loss(quad_f, x, eps, sig, antithetic=True)
    pair = 0.5 * (per_example(x, eps, sigma) + per_example(x, -eps, sigma))     # [n] one value per example
    assert torch.allclose(loss, pair.mean(), rtol=1e-12, atol=1e-12)
    # dsm's expectation (test_objectives_score_nce.py derives it): unchanged by the pairs
    b = torch.eye(2, dtype=D) - sigma ** 2 * P
    closed = 0.5 * (sigma ** 2 * (torch.trace(P @ SIGMA @ P) + (P @ (MU - M)).pow(2).sum()) + torch.trace(b.T @ b))
    assert abs(float(loss - closed)) < 5 * float(pair.std() / math.sqrt(n))
    # the gradient in m: autograd through dsm_loss equals the closed form's pair mean (checks grad_m)
    m = M.clone().requires_grad_(True)
    small = slice(0, 500)
    f_m = lambda t: -0.5 * (((t - m) @ P) * (t - m)).sum(1)      # noqa: E731
    g_auto, = torch.autograd.grad(dsm_loss(f_m, x[small], eps[small], sig[small], antithetic=True)[0], m)
    g_pair = 0.5 * (grad_m(x, eps, sigma) + grad_m(x, -eps, sigma))
    assert torch.allclose(g_auto, g_pair[small].mean(0), rtol=1e-10, atol=1e-12)
    _, eps2, _ = draws(n, sigma, 3)
    g_two = 0.5 * (grad_m(x, eps, sigma) + grad_m(x, eps2, sigma))
    var_pair, var_two = float(g_pair.var(0).sum()), float(g_two.var(0).sum())
    # for this linear score the pair's gradient is σ² P s(x), free of ε: only the data's spread is left
    assert torch.allclose(g_pair, sigma ** 2 * (-((x - M) @ P)) @ P, rtol=1e-10, atol=1e-12)
    assert var_pair < most * var_two, (var_pair, var_two)


def test_for_a_fixed_point_the_odd_terms_cancel_exactly():
    """At one x the linear score makes the pair's term ½‖σ s(x)‖² + ½‖(I - σ²P) ε‖²: no term of first order in ε."""
    sigma = 0.2
    x = torch.tensor([[0.3, -1.1]], dtype=D).expand(500, 2)
    eps = torch.randn(500, 2, generator=torch.Generator().manual_seed(4), dtype=D)
    pair = 0.5 * (per_example(x, eps, sigma) + per_example(x, -eps, sigma))
    s = -((x - M) @ P)
    b = torch.eye(2, dtype=D) - sigma ** 2 * P
    expected = 0.5 * (sigma * s).pow(2).sum(1) + 0.5 * (eps @ b.T).pow(2).sum(1)
    assert torch.allclose(pair, expected, rtol=1e-12, atol=1e-12)


def test_the_key_defaults_to_off_for_runs_written_before_it():
    old = RunConfig(objective="dsm").to_dict()
    del old["dsm_antithetic"]
    assert RunConfig.from_dict(old).dsm_antithetic is False


def test_the_trainer_s_dsm_reads_it_and_pairs_a_noise_conditional_level():
    """DSM.from_config reads the key; on a noise-conditional model each pair is scored at its example's own level
    (the index stacked twice, as the points are), so the loss is the closed form's pair mean per level."""
    from ebmlab.models.noise_conditional import NoiseConditionalEnergyModel
    from ebmlab.training.objectives import DSM, Batch
    from test_objective_dsm_conditional import LevelQuadratic, identity_net
    assert DSM.from_config(RunConfig(objective="dsm", dsm_antithetic=True)).antithetic is True
    assert DSM.from_config(RunConfig(objective="dsm")).antithetic is False
    sigmas = [1.0, 0.5, 0.1]
    model = NoiseConditionalEnergyModel(LevelQuadratic(sigmas), sigmas).double()
    n, d = 4000, 3
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(0), dtype=D)
    loss, _ = DSM(sigmas=tuple(sigmas), antithetic=True).loss(
        model, Batch(x_pos=x, x_neg=None, y_pos=None, gen=torch.Generator().manual_seed(5)), identity_net)
    g2 = torch.Generator().manual_seed(5)             # the objective's draws: level index, then noise
    idx = torch.randint(0, 3, (n,), generator=g2)
    eps = torch.randn(x.shape, generator=g2, dtype=D)
    sig = torch.tensor(sigmas, dtype=D)[idx][:, None]

    def term(e: torch.Tensor) -> torch.Tensor:       # the exact blurred score of N(0, I) at each example's level
        xt = x + sig * e
        return 0.5 * (sig * (-xt / (1 + sig ** 2)) + e).pow(2).sum(1)
    assert torch.allclose(loss, (0.5 * (term(eps) + term(-eps))).mean(), rtol=1e-10)


def test_the_2d_dsm_preset_pairs_the_noise_and_the_user_can_turn_it_off():
    """The 2d preset's dsm sets the pairs (training/presets.py, session 18); --no-dsm-antithetic wins; other
    objectives and the image presets do not get it (measured on 2-D only)."""
    from ebmlab.training.presets import resolve_config
    assert resolve_config("moons", {"preset": "2d", "objective": "dsm"}).dsm_antithetic is True
    assert resolve_config("moons", {"preset": "2d", "objective": "dsm", "dsm_antithetic": False}).dsm_antithetic is False
    for other in ("cd", "ssm", "nce"):
        assert resolve_config("moons", {"preset": "2d", "objective": other}).dsm_antithetic is False
    assert resolve_config("digits", {"preset": "digits", "objective": "dsm"}).dsm_antithetic is False
