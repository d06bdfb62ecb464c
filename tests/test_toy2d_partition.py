"""Built-in 2-D sets (true densities integrate to 1) and exact log Z by quadrature / enumeration."""
import math

import pytest
import torch

import ebmlab
from ebmlab import EBMError
from ebmlab.data import toy2d
from ebmlab.estimate.partition import binary_states, grid_cost, quadrature_grid


@pytest.mark.parametrize("name", toy2d.NAMES)
def test_true_density_integrates_to_one_and_draws_are_reproducible(name):
    # a 0.1 grid: the midpoint rule on Gaussians of sigma >= 0.1 errs by ~exp(-2 pi^2 sigma^2 / h^2),
    # and the checkerboard's edges (multiples of 2) fall on cell boundaries, so both are ~exact
    pts, vol = quadrature_grid([(-6, 6), (-6, 6)], 120)
    mass = float(toy2d.true_log_density(name, pts).exp().sum() * vol)
    assert abs(mass - 1) < 1e-3
    a = toy2d.make(name, 100, torch.Generator().manual_seed(3))
    b = toy2d.make(name, 100, torch.Generator().manual_seed(3))
    assert a.shape == (100, 2) and torch.equal(a, b)
    assert torch.isfinite(toy2d.true_log_density(name, a)).all()   # every draw lies in the support


def test_unknown_set_is_clear_error():
    with pytest.raises(EBMError, match="unknown built-in"):
        toy2d.make("spiral", 10)


def test_quadrature_matches_gaussian_log_z_in_1_2_3_dims():
    for d in (1, 2, 3):
        f = lambda x: -0.5 * (x ** 2).sum(1) / 0.7 ** 2
        est = ebmlab.log_z(f, method="quadrature", bounds=[(-7, 7)] * d)
        true = d * math.log(math.sqrt(2 * math.pi) * 0.7)
        assert abs(est.value - true) < 1e-4 and est.stderr == 0.0


def test_quadrature_refuses_high_dimension_and_says_why():
    with pytest.raises(EBMError, match="ais"):
        ebmlab.log_z(lambda x: -x.pow(2).sum(1), method="quadrature", bounds=[(-1, 1)] * 4)
    assert grid_cost(5, 200) == 200 ** 5


def test_quadrature_rejects_nan_f():
    with pytest.raises(EBMError, match="NaN"):
        ebmlab.log_z(lambda x: torch.full((x.shape[0],), float("nan")), bounds=[(0, 1)])


def test_enumeration_of_independent_bits_matches_closed_form():
    h = torch.tensor([0.3, -1.0, 2.0, 0.5])
    est = ebmlab.log_z(lambda s: (s * h).sum(1), method="enumeration", states=binary_states(4))
    assert abs(est.value - float(torch.log1p(h.exp()).sum())) < 1e-5


def test_unknown_log_z_method():
    with pytest.raises(EBMError, match="unknown log Z method"):
        ebmlab.log_z(lambda x: x.sum(1), method="magic")


def test_exact_nll_takes_a_plain_callable_like_log_z_does():
    """exact_nll once required ``model.log_density``: a plain f raised AttributeError."""
    import math

    from ebmlab.estimate.nll import exact_nll
    x = torch.randn(4000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    f = lambda z: -0.5 * (z ** 2).sum(1)                      # standard normal up to its log Z
    r = exact_nll(f, x, bounds=[(-8.0, 8.0), (-8.0, 8.0)])
    assert r["outside"] == 0
    assert abs(r["log_z"] - math.log(2 * math.pi)) < 1e-4
    assert abs(r["nll"] - float(0.5 * (x ** 2).sum(1).mean() + math.log(2 * math.pi))) < 1e-4


def _bounded_mlp_model():
    from ebmlab.models.energy import EnergyModel
    from ebmlab.nets.mlp import MLP
    torch.manual_seed(0)
    return EnergyModel(MLP(2, 16, 2), bounds=[(-3.0, 3.0), (-3.0, 3.0)])


def test_exact_nll_evaluates_the_grid_in_the_models_precision():
    """The quadrature grid was always float32 on the CPU: a float64 model raised torch's "mat1 and mat2
    must have the same dtype". Now grid and points follow the model's weights (dtype and device)."""
    from ebmlab.estimate.nll import exact_nll
    model = _bounded_mlp_model()
    x = torch.rand(50, 2, generator=torch.Generator().manual_seed(1)) * 4 - 2
    r32 = exact_nll(model, x, points_per_dim=100)
    r64 = exact_nll(model.double(), x.double(), points_per_dim=100)
    assert r64["outside"] == 0
    # the same weights in two precisions: the same log Z and NLL up to float32 rounding
    assert abs(r64["log_z"] - r32["log_z"]) < 1e-4 and abs(r64["nll"] - r32["nll"]) < 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_exact_nll_of_a_model_on_the_gpu():
    """The grid was built on the CPU whatever the model's device: a CUDA model (``ebmlab train --device
    cuda`` on 2-D data, whose summary computes the exact NLL; ``ebmlab eval --device cuda``) crashed."""
    from ebmlab.estimate.nll import exact_nll
    model = _bounded_mlp_model()
    x = torch.rand(50, 2, generator=torch.Generator().manual_seed(1)) * 4 - 2
    on_cpu = exact_nll(model, x, points_per_dim=100)
    on_gpu = exact_nll(model.cuda(), x, points_per_dim=100)
    assert abs(on_gpu["log_z"] - on_cpu["log_z"]) < 1e-4 and abs(on_gpu["nll"] - on_cpu["nll"]) < 1e-4


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_enumeration_rejects_nan_or_inf_f_like_quadrature(bad):
    """Quadrature refuses a NaN/+inf f; enumeration returned log Z = nan (or inf) "± 0" as if exact."""
    from ebmlab.estimate.discrete import binary_log_z, categorical_log_z
    f = lambda s: torch.where(s[:, 0] > 0, torch.full((s.shape[0],), bad), s.sum(1))
    with pytest.raises(EBMError, match="NaN or \\+inf"):
        ebmlab.log_z(f, method="enumeration", states=binary_states(3))
    with pytest.raises(EBMError, match="NaN or \\+inf"):
        binary_log_z(f, 3)
    with pytest.raises(EBMError, match="NaN or \\+inf"):
        categorical_log_z(f, 2, 3)
    # zero mass everywhere is a legal (if useless) answer, as for quadrature
    assert binary_log_z(lambda s: torch.full((s.shape[0],), float("-inf")), 3).value == float("-inf")


def test_exact_nll_reads_a_single_pair_as_every_coordinates_and_refuses_a_box_of_another_size():
    """A model whose support box is one (lo, hi) pair for all coordinates (as ``Box`` and every sampler
    read it) got a 1-D grid for its 2-D input, and a box with 3 pairs for 2-D data a 3-D grid: both
    ended in a shape error inside the network. Now the single pair is broadcast and a mismatch is one line."""
    from ebmlab.estimate.nll import exact_nll
    from ebmlab.models.energy import EnergyModel
    from ebmlab.nets.mlp import MLP
    torch.manual_seed(0)
    net = MLP(2, 16, 2)
    x = torch.rand(50, 2, generator=torch.Generator().manual_seed(1)) * 4 - 2
    one = exact_nll(EnergyModel(net, bounds=[(-3.0, 3.0)]), x, points_per_dim=100)
    two = exact_nll(EnergyModel(net, bounds=[(-3.0, 3.0)] * 2), x, points_per_dim=100)
    assert one == two
    with pytest.raises(EBMError, match="3 pairs"):
        exact_nll(EnergyModel(net), x, bounds=[(-3.0, 3.0)] * 3)


@pytest.mark.parametrize("points", [2.5, -5, 0, True])
def test_quadrature_refuses_a_grid_size_that_is_not_a_positive_integer(points):
    """points_per_dim=2.5 made arange(2.5) = 3 points with cells of width/2.5, a wrong log Z returned
    silently; -5 raised torch's "upper bound and lower bound inconsistent with step sign"; 0 meant the
    default (``or``)."""
    with pytest.raises(EBMError, match="points_per_dim must be an integer >= 1"):
        ebmlab.log_z(lambda x: -x.pow(2).sum(1), bounds=[(-1, 1)], points_per_dim=points)
