"""Composition algebra: each combinator against closed forms (Gaussians) and 2-D quadrature."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from ebmlab import EBMError, EnergyModel
from ebmlab.models.compose import (ComposedModel, Condition, Contrast, Mixture, Product, Temperature,
                                   check_compatible, compose)
from ebmlab.models.spec import from_spec, to_spec
from ebmlab.density import score_of
from ebmlab.nets.mlp import MLP

D = torch.float64


class Gaussian(nn.Module):
    """f(x) = -½ (x-μ)ᵀ P (x-μ) + c: a Gaussian's log density up to an arbitrary constant c."""

    def __init__(self, mean, prec, c: float = 0.0) -> None:
        super().__init__()
        self.mean = torch.as_tensor(mean, dtype=D)
        self.prec = torch.as_tensor(prec, dtype=D)
        self.c = c

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        d = x - self.mean
        return -0.5 * torch.einsum("bi,ij,bj->b", d, self.prec, d) + self.c

    def log_z(self) -> float:
        """log ∫ exp f = c + d/2 log 2π − ½ log det P."""
        d = self.mean.numel()
        return self.c + 0.5 * d * math.log(2 * math.pi) - 0.5 * float(torch.logdet(self.prec))


def spd(g: torch.Generator, d: int) -> torch.Tensor:
    a = torch.randn(d, d, generator=g, dtype=D)
    return a @ a.T + 0.5 * torch.eye(d, dtype=D)


def gaussians(seed: int = 0, d: int = 2):
    g = torch.Generator().manual_seed(seed)
    g1 = Gaussian(torch.randn(d, generator=g, dtype=D), spd(g, d), c=3.7)
    g2 = Gaussian(torch.randn(d, generator=g, dtype=D), spd(g, d), c=-1.2)
    return g, g1, g2


def grid(lo: float, hi: float, n: int):
    """Cell-centre grid on [lo, hi]^2: points [n*n, 2] and cell area."""
    h = (hi - lo) / n
    t = lo + h * (torch.arange(n, dtype=D) + 0.5)
    xx, yy = torch.meshgrid(t, t, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1), h * h


def box_grid(bounds, n: int):
    """Cell-centre grid on a 2-D box: points and cell area."""
    (a, b), (c, d) = bounds
    hx, hy = (b - a) / n, (d - c) / n
    tx = a + hx * (torch.arange(n, dtype=D) + 0.5)
    ty = c + hy * (torch.arange(n, dtype=D) + 0.5)
    xx, yy = torch.meshgrid(tx, ty, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1), hx * hy


def mlp_model(seed: int, bounds) -> EnergyModel:
    torch.manual_seed(seed)
    return EnergyModel(MLP(2, hidden=16, depth=2), bounds=bounds).to(D)


# ---- algebra against closed forms -------------------------------------------------------

@pytest.mark.parametrize("d", [2, 3])
def test_product_of_gaussians_is_gaussian_with_summed_precision(d):
    g, g1, g2 = gaussians(1, d)
    w1, w2 = 1.0, 0.5
    prod = Product([g1, g2], [w1, w2])
    P = w1 * g1.prec + w2 * g2.prec
    mu = torch.linalg.solve(P, w1 * g1.prec @ g1.mean + w2 * g2.prec @ g2.mean)
    target = Gaussian(mu, P)
    x, y = torch.randn(50, d, generator=g, dtype=D), torch.randn(50, d, generator=g, dtype=D)
    torch.testing.assert_close(prod.log_ratio(x, y), target.log_density(x) - target.log_density(y),
                               rtol=0, atol=1e-10)


def test_product_weights_scale_and_sum():
    g, g1, g2 = gaussians(2)
    x = torch.randn(20, 2, generator=g, dtype=D)
    torch.testing.assert_close(Product([g1], [2.5]).log_density(x), 2.5 * g1.log_density(x))
    torch.testing.assert_close(Product([g1, g1]).log_density(x), 2 * g1.log_density(x))
    torch.testing.assert_close(Product([g1, g2], [0.3, 2.0]).log_density(x),
                               0.3 * g1.log_density(x) + 2.0 * g2.log_density(x))


def test_temperature_one_is_identity_and_scales_covariance():
    g, g1, _ = gaussians(3)
    x, y = torch.randn(20, 2, generator=g, dtype=D), torch.randn(20, 2, generator=g, dtype=D)
    assert torch.equal(Temperature(g1, 1.0).log_density(x), g1.log_density(x))
    # N(μ, Σ) at temperature T is N(μ, TΣ): precision P / T
    hot = Gaussian(g1.mean, g1.prec / 3.0)
    torch.testing.assert_close(Temperature(g1, 3.0).log_ratio(x, y), hot.log_density(x) - hot.log_density(y))


def test_contrast_alpha_zero_is_first_model_and_subtracts():
    g, g1, g2 = gaussians(4)
    x = torch.randn(20, 2, generator=g, dtype=D)
    torch.testing.assert_close(Contrast(g1, g2, alpha=0.0).log_density(x), g1.log_density(x), rtol=0, atol=0)
    torch.testing.assert_close(Contrast(g1, g2, alpha=0.4).log_density(x),
                               g1.log_density(x) - 0.4 * g2.log_density(x))
    torch.testing.assert_close(Contrast(g1, g2, alpha=0.4, weight_a=2.0).log_density(x),
                               2 * g1.log_density(x) - 0.4 * g2.log_density(x))


def test_mixture_with_log_z_is_weighted_sum_of_normalised_densities():
    g, g1, g2 = gaussians(5)
    x = torch.randn(30, 2, generator=g, dtype=D) * 2
    mix = Mixture([g1, g2], [3.0, 1.0], log_z=[g1.log_z(), g2.log_z()])
    p = 0.75 * torch.exp(g1.log_density(x) - g1.log_z()) + 0.25 * torch.exp(g2.log_density(x) - g2.log_z())
    torch.testing.assert_close(mix.log_density(x), torch.log(p), rtol=0, atol=1e-12)
    # without log_z it mixes exp(f_i) themselves, i.e. weights π_i Z_i (the documented subtlety)
    raw = Mixture([g1, g2], [3.0, 1.0])
    q = 0.75 * torch.exp(g1.log_density(x)) + 0.25 * torch.exp(g2.log_density(x))
    torch.testing.assert_close(raw.log_density(x), torch.log(q), rtol=0, atol=1e-12)


def test_mixture_with_log_z_integrates_to_one():
    _, g1, g2 = gaussians(6)
    mix = Mixture([g1, g2], [1.0, 2.0], log_z=[g1.log_z(), g2.log_z()])
    pts, area = grid(-12, 12, 400)
    total = float(torch.exp(mix.log_density(pts)).sum() * area)
    assert abs(total - 1.0) < 1e-8


def test_score_of_composite_is_weighted_sum_of_scores():
    g, g1, g2 = gaussians(7)
    x = torch.randn(10, 2, generator=g, dtype=D)
    s1, s2 = score_of(g1.log_density, x), score_of(g2.log_density, x)
    torch.testing.assert_close(Product([g1, g2], [1.0, 0.5]).score(x), s1 + 0.5 * s2)
    torch.testing.assert_close(Contrast(g1, g2, alpha=0.3).score(x), s1 - 0.3 * s2)
    torch.testing.assert_close(Temperature(g1, 2.0).score(x), s1 / 2)
    # mixture: posterior-weighted scores
    mix = Mixture([g1, g2], [1.0, 1.0], log_z=[g1.log_z(), g2.log_z()])
    r = torch.softmax(torch.stack([g1.log_density(x) - g1.log_z(), g2.log_density(x) - g2.log_z()], 1), 1)
    torch.testing.assert_close(mix.score(x), r[:, :1] * s1 + r[:, 1:] * s2)


def test_condition_is_the_gaussian_conditional():
    g, g1, _ = gaussians(8)
    c = 0.7
    cond = Condition(g1, torch.tensor([c, 0.0], dtype=D), torch.tensor([True, False]))
    P, mu = g1.prec, g1.mean
    # x2 | x1 = c ~ N(μ2 − P22⁻¹ P21 (c − μ1), P22⁻¹)
    m = mu[1] - P[1, 0] / P[1, 1] * (c - mu[0])
    target = Gaussian(m.reshape(1), P[1:, 1:])
    z, w = torch.randn(20, 1, generator=g, dtype=D), torch.randn(20, 1, generator=g, dtype=D)
    torch.testing.assert_close(cond.log_ratio(z, w), target.log_density(z) - target.log_density(w))
    assert cond.event_shape == (1,)
    full = cond.embed(z)
    assert torch.equal(full[:, 0], torch.full((20,), c, dtype=D)) and torch.equal(cond.free_part(full), z)
    torch.testing.assert_close(cond.score(z), score_of(g1.log_density, full)[:, 1:])


def test_condition_per_chain_values_and_bounds():
    model = mlp_model(0, [(-2, 2), (-3, 1)])
    vals = torch.tensor([[0.5, 0.0], [-1.0, 0.0]])
    cond = Condition(model, vals, torch.tensor([True, False]))
    assert cond.bounds.tolist() == [[-3.0, 1.0]]
    z = torch.tensor([[0.2], [0.9]], dtype=D)
    expect = model.log_density(torch.tensor([[0.5, 0.2], [-1.0, 0.9]], dtype=D))
    torch.testing.assert_close(cond.log_density(z), expect)
    assert torch.isneginf(cond.log_density(torch.tensor([[5.0], [0.0]], dtype=D)))[0]


# ---- exactness in 2-D: quadrature of the composite vs the renormalised product / mixture --

BOX_A = [(-3.0, 2.0), (-2.0, 3.0)]
BOX_B = [(-2.0, 3.0), (-3.0, 2.5)]


def test_product_of_bounded_mlps_matches_renormalised_product_on_grid():
    a, b = mlp_model(1, BOX_A), mlp_model(2, BOX_B)
    prod = Product([a, b], [1.0, 0.5])
    assert prod.bounds.tolist() == [[-2.0, 2.0], [-2.0, 2.5]]
    pts, area = box_grid(prod.bounds.tolist(), 200)
    with torch.no_grad():
        p = torch.exp(prod.log_density(pts))
        p = p / (p.sum() * area)
        q = torch.exp(a.log_density(pts)) * torch.exp(b.log_density(pts)) ** 0.5
        q = q / (q.sum() * area)
        # outside the intersection the composite has no mass
        far = torch.tensor([[2.5, 0.0], [0.0, -2.5]], dtype=D)
        assert torch.isneginf(prod.log_density(far)).all()
    torch.testing.assert_close(p, q, rtol=1e-12, atol=0)


def test_product_of_gaussians_normalised_by_quadrature_equals_closed_form():
    _, g1, g2 = gaussians(9)
    prod = Product([g1, g2], [0.7, 1.3])
    P = 0.7 * g1.prec + 1.3 * g2.prec
    mu = torch.linalg.solve(P, 0.7 * g1.prec @ g1.mean + 1.3 * g2.prec @ g2.mean)
    exact = Gaussian(mu, P)
    pts, area = grid(-10, 10, 400)
    f = prod.log_density(pts)
    log_z = torch.logsumexp(f, 0) + math.log(area)
    torch.testing.assert_close(f - log_z, exact.log_density(pts) - exact.log_z(), rtol=0, atol=1e-9)


def test_mixture_of_bounded_mlps_with_quadrature_log_z():
    a, b = mlp_model(3, BOX_A), mlp_model(4, BOX_B)
    pts, area = box_grid([(-3.0, 3.0), (-3.0, 3.0)], 240)  # covers both boxes; edges on cell boundaries
    with torch.no_grad():
        fa, fb = a.log_density(pts), b.log_density(pts)
        lza, lzb = [float(torch.logsumexp(f, 0) + math.log(area)) for f in (fa, fb)]
        mix = Mixture([a, b], [0.25, 0.75], log_z=[lza, lzb])
        assert mix.bounds.tolist() == [[-3.0, 3.0], [-3.0, 3.0]]
        fm = mix.log_density(pts)
    expect = torch.log(0.25 * torch.exp(fa - lza) + 0.75 * torch.exp(fb - lzb))
    torch.testing.assert_close(fm, expect, rtol=0, atol=1e-12)
    assert abs(float(torch.exp(fm).sum() * area) - 1.0) < 1e-12
    # a corner outside both boxes: -inf density, finite (zero) score
    corner = torch.tensor([[-2.9, -2.9]], dtype=D)
    assert torch.isneginf(mix.log_density(corner)).all()
    assert torch.equal(mix.score(corner), torch.zeros_like(corner))


def test_contrast_keeps_intersection_and_finite_inside():
    a, b = mlp_model(5, BOX_A), mlp_model(6, BOX_B)
    c = Contrast(a, b, alpha=0.5)
    pts, _ = box_grid(c.bounds.tolist(), 20)
    with torch.no_grad():
        assert torch.isfinite(c.log_density(pts)).all()
        outside = torch.tensor([[-2.5, 0.0]], dtype=D)  # inside a, outside b: would be +inf unmasked
        assert torch.isneginf(c.log_density(outside)).all()


# ---- modules, nesting, spec round trip ---------------------------------------------------

def test_composite_is_a_module_and_nests():
    a, b = mlp_model(7, BOX_A), mlp_model(8, BOX_B)
    t = Temperature(Product([a, b], [1.0, 2.0]), 2.0)
    assert isinstance(t, nn.Module) and isinstance(t, ComposedModel)
    assert any(k.startswith("models.0.models.0.net") for k in t.state_dict())
    x = torch.zeros(3, 2, dtype=D)
    torch.testing.assert_close(t(x), (a.log_density(x) + 2 * b.log_density(x)) / 2)
    torch.testing.assert_close(t.energy(x), -t.log_density(x))
    t32 = t.to(torch.float32)
    assert t32.log_density(x.float()).dtype == torch.float32
    assert t.bounds.tolist() == [[-2.0, 2.0], [-2.0, 2.5]]


def test_plain_callables_are_components():
    f = lambda x: -(x ** 2).sum(1)  # noqa: E731
    p = Product([f, f], [1.0, 1.0])
    x = torch.ones(4, 2)
    torch.testing.assert_close(p.log_density(x), torch.full((4,), -4.0))


def test_spec_round_trip_through_json():
    a, b = mlp_model(9, BOX_A), mlp_model(10, BOX_B)
    store = {"runs/a": a, "runs/b": b}
    inner = Product([a, b], [1.0, 0.5])
    outer = Mixture([inner, a], [1.0, 3.0], log_z=[0.1, -0.2])
    spec = to_spec(outer, [to_spec(inner, ["runs/a", "runs/b"]), "runs/a"])
    rebuilt = from_spec(json.loads(json.dumps(spec)), store.__getitem__)
    pts, _ = box_grid([(-2.0, 2.0), (-2.0, 2.0)], 10)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.log_density(pts), outer.log_density(pts))
    cases = [Temperature(a, 0.5), Contrast(a, b, 0.3, weight_a=2.0),
             Condition(a, torch.tensor([0.5, 0.0]), torch.tensor([True, False]))]
    for m in cases:
        srcs = ["runs/a", "runs/b"][: len(m.models)]
        r = from_spec(json.loads(json.dumps(to_spec(m, srcs))), store.__getitem__)
        z = torch.zeros(4, *m.event_shape, dtype=D) if isinstance(m, Condition) else pts
        with torch.no_grad():
            torch.testing.assert_close(r.log_density(z), m.log_density(z))


def test_compose_factory_maps_cli_ops():
    _, g1, g2 = gaussians(11)
    x = torch.randn(5, 2, dtype=D)
    assert isinstance(compose("and", [g1, g2], [1, 0.5]), Product)
    assert isinstance(compose("or", [g1, g2]), Mixture)
    c = compose("not", [g1, g2], [1, 0.5])
    torch.testing.assert_close(c.log_density(x), g1.log_density(x) - 0.5 * g2.log_density(x))
    c2 = compose("not", [g1, g2], [0.25])
    torch.testing.assert_close(c2.log_density(x), g1.log_density(x) - 0.25 * g2.log_density(x))


# ---- bad input ----------------------------------------------------------------------------

class Shaped(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.event_shape = shape

    def log_density(self, x):
        return x.reshape(x.shape[0], -1).sum(1)


@pytest.mark.parametrize("build", [
    lambda g1, g2: Product([]),
    lambda g1, g2: Mixture([]),
    lambda g1, g2: Product([g1, g2], [1.0]),
    lambda g1, g2: Product([g1, g2], [1.0, 0.0]),
    lambda g1, g2: Product([g1, g2], [1.0, float("nan")]),
    lambda g1, g2: Mixture([g1, g2], [1.0, -1.0]),
    lambda g1, g2: Mixture([g1, g2], log_z=[0.0]),
    lambda g1, g2: Temperature(g1, 0.0),
    lambda g1, g2: Temperature(g1, -1.0),
    lambda g1, g2: Temperature(g1, float("inf")),
    lambda g1, g2: Contrast(g1, g2, alpha=-0.1),
    lambda g1, g2: Product([mlp_model(0, [(-1, 0), (-1, 0)]), mlp_model(1, [(0.5, 1), (-1, 0)])]),
    lambda g1, g2: Product([mlp_model(0, BOX_A), EnergyModel(MLP(3), bounds=[(-1, 1)] * 3)]),
    lambda g1, g2: Product([Shaped((1, 8, 8)), Shaped((3, 8, 8))]),
    lambda g1, g2: Product([g1, EnergyModel(MLP(3)).to(D)], probe=torch.zeros(2, 2, dtype=D)),
    lambda g1, g2: Condition(g1, torch.zeros(2), torch.ones(2, dtype=torch.bool)),
    lambda g1, g2: Condition(g1, torch.zeros(3), torch.tensor([True, False])),
    lambda g1, g2: Condition(mlp_model(0, BOX_A), torch.tensor([9.0, 0.0]), torch.tensor([True, False])),
    lambda g1, g2: compose("xor", [g1, g2]),
    lambda g1, g2: compose("not", [g1, g2, g1]),
    lambda g1, g2: compose("not", [g1, g2], [1, 2, 3]),
    lambda g1, g2: from_spec({"op": "nope", "components": []}, lambda s: g1),
    lambda g1, g2: to_spec(Product([g1, g2]), ["only-one"]),
    lambda g1, g2: Product([g1, 42]),
])
def test_bad_input_raises_one_line_ebm_error(build):
    _, g1, g2 = gaussians(12)
    with pytest.raises(EBMError) as e:
        build(g1, g2)
    assert "\n" not in str(e.value)


def test_check_compatible_returns_event_shape():
    assert check_compatible([Shaped((1, 8, 8)), Shaped((1, 8, 8))]) == (1, 8, 8)
    _, g1, g2 = gaussians(13)
    assert check_compatible([g1, g2], probe=torch.zeros(3, 2, dtype=D)) == (2,)


def test_samplers_run_on_a_composite_and_keep_its_law():
    """MALA started exactly at the product's closed-form Gaussian keeps that law (5 standard errors) and moves."""
    from ebmlab import sample

    _, g1, g2 = gaussians(14)
    prod = Product([g1, g2], [1.0, 0.5])
    P = g1.prec + 0.5 * g2.prec
    mu = torch.linalg.solve(P, g1.prec @ g1.mean + 0.5 * g2.prec @ g2.mean)
    cov = torch.linalg.inv(P)
    g = torch.Generator().manual_seed(0)
    n = 4000
    x0 = mu + torch.randn(n, 2, generator=g, dtype=D) @ torch.linalg.cholesky(cov).T
    x = sample(prod, x0, method="mala", n_steps=20, step_size=0.05, generator=g)
    assert float((x != x0).any(1).double().mean()) > 0.5  # chains moved
    se_mean = (cov.diagonal() / n).sqrt()
    assert bool(((x.mean(0) - mu).abs() < 5 * se_mean).all())
    se_var = cov.diagonal() * math.sqrt(2 / (n - 1))
    assert bool(((x.var(0) - cov.diagonal()).abs() < 5 * se_var).all())
