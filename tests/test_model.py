"""EnergyModel: the sign convention, log_ratio without Z, score, parametrisations and support box."""
import math

import pytest
import torch
from torch import nn

from ebmlab import EBMError, EnergyModel
from ebmlab.density import as_log_density, score_of


class Quadratic(nn.Module):
    """n(x) = -|x - c|^2 / 2: the log density of N(c, I) up to a constant."""

    def __init__(self, c):
        super().__init__()
        self.c = nn.Parameter(torch.tensor(c, dtype=torch.float64))

    def forward(self, x):
        return -0.5 * ((x - self.c) ** 2).sum(1)


def test_sign_convention_high_f_is_likely_and_energy_is_minus_f():
    m = EnergyModel(Quadratic([1.0, 2.0]))
    centre, far = torch.tensor([[1.0, 2.0]], dtype=torch.float64), torch.tensor([[4.0, -2.0]], dtype=torch.float64)
    assert m.log_density(centre) > m.log_density(far)          # the mode has the highest f
    assert torch.equal(m.energy(far), -m.log_density(far))     # energy = -f
    assert m.energy(centre) < m.energy(far)                    # low energy = likely


def test_log_ratio_equals_true_log_density_ratio_without_z():
    m = EnergyModel(Quadratic([0.0, 0.0]))
    x = torch.randn(5, 2, dtype=torch.float64)
    y = torch.randn(5, 2, dtype=torch.float64)
    true = lambda z: -0.5 * (z ** 2).sum(1) - math.log(2 * math.pi)   # normalised N(0, I)
    torch.testing.assert_close(m.log_ratio(x, y), true(x) - true(y))


def test_score_is_gradient_of_f_and_leaves_no_parameter_grad():
    m = EnergyModel(Quadratic([1.0, -1.0]))
    x = torch.randn(7, 2, dtype=torch.float64)
    torch.testing.assert_close(m.score(x), -(x - m.net.c.detach()))   # ∇ log N(c, I) = -(x - c)
    assert m.net.c.grad is None


@pytest.mark.parametrize("param,expected", [
    ("exp", lambda n: n), ("square", lambda n: 2 * torch.log(n.abs())),
    ("abs", lambda n: torch.log(n.abs())), ("softplus", lambda n: torch.log(nn.functional.softplus(n))),
])
def test_parametrisations_give_log_of_nonnegative_g(param, expected):
    net = nn.Linear(3, 1).double()
    m = EnergyModel(net, parametrisation=param)
    x = torch.randn(6, 3, dtype=torch.float64)
    torch.testing.assert_close(m.log_density(x), expected(net(x)[:, 0]))


def test_bounds_make_f_minus_inf_outside_and_finite_inside():
    m = EnergyModel(Quadratic([0.0, 0.0]), bounds=[(-1, 1), (-1, 1)])
    f = m.log_density(torch.tensor([[0.5, 0.5], [1.5, 0.0]], dtype=torch.float64))
    assert torch.isfinite(f[0]) and f[1] == float("-inf")


def test_wrong_output_shape_and_bad_options_are_clear_errors():
    m = EnergyModel(nn.Linear(2, 3))
    with pytest.raises(EBMError, match="must return shape"):
        m.log_density(torch.randn(4, 2))
    with pytest.raises(EBMError, match="parametrisation"):
        EnergyModel(nn.Linear(2, 1), parametrisation="cube")
    with pytest.raises(EBMError, match="bounds"):
        EnergyModel(nn.Linear(2, 1), bounds=[(1, 0), (0, 1)])
    with pytest.raises(EBMError):
        as_log_density(42)


def test_score_of_plain_callable():
    x = torch.randn(4, 3)
    torch.testing.assert_close(score_of(lambda z: (z ** 3).sum(1), x), 3 * x ** 2)
