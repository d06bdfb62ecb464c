"""AIS log Z: accuracy within its own stderr, the IS limit, the lower/upper bracket, bad input.

Tolerances come from the estimator's reported stderr (plus its second-order bias, about se²/2),
never from a guessed rtol. Budgets are small so the file runs in seconds.
"""
from __future__ import annotations

import math

import pytest
import torch

import ebmlab
from ebmlab import EBMError, EnergyModel
from ebmlab.estimate.ais import ais_log_z, fit_base, sigmoid_schedule
from ebmlab.estimate.curse import gaussian_target
from ebmlab.estimate.partition import quadrature_log_z


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def within(value: float, truth: float, se: float, k: float = 4.0) -> bool:
    # log-mean-exp is biased low by about se²/2; allow twice that on top of k stderr
    return abs(value - truth) <= k * se + se * se


@pytest.mark.parametrize("d", [2, 10])
def test_gaussian_within_reported_stderr(d):
    t = gaussian_target(d, seed=3)
    est = ais_log_z(t.f, t.samples, n_chains=128, n_temps=100, generator=gen(0))
    assert isinstance(est.value, float) and isinstance(est.stderr, float) and est.stderr > 0
    assert within(est.value, t.log_z, est.stderr), (est, t.log_z)
    assert within(est.extras["upper"], t.log_z, est.extras["upper_stderr"]), (est.extras["upper"], t.log_z)
    assert 0.45 < est.extras["acceptance"] < 0.7          # step adaptation toward 0.574
    assert 1 <= est.extras["ess"] <= 128


def test_no_intermediate_distributions_is_plain_importance_sampling():
    t = gaussian_target(5, seed=1, n_samples=400)
    n = 300
    est = ais_log_z(t.f, t.samples, n_temps=0, n_chains=n, reverse=False, generator=gen(7))
    # by hand: Gaussian fitted to the data, std widened by 1.1, the same N(0, I) draws
    x = t.samples.double()
    cov = torch.cov(x.T)
    cov = cov + 1e-6 * float(cov.diagonal().mean()) * torch.eye(5, dtype=cov.dtype)
    chol = torch.linalg.cholesky(cov) * 1.1
    q = torch.distributions.MultivariateNormal(x.mean(0), scale_tril=chol)
    z = torch.randn(n, 5, generator=gen(7), dtype=torch.float32).double()
    draws = x.mean(0) + z @ chol.T
    log_w = t.f(draws.float()).double() - q.log_prob(draws)
    expect = float(torch.logsumexp(log_w, 0) - math.log(n))
    assert est.value == pytest.approx(expect, abs=1e-4)
    assert math.isnan(est.extras["acceptance"])           # no transitions were made
    assert within(est.value, t.log_z, est.stderr)         # and plain IS is itself unbiased in Z


def test_forward_below_and_reverse_above_truth():
    # a deliberately poor base (uniform box) and few temperatures: the bias dominates the noise,
    # so the forward estimate is a lower bound and the reverse one an upper bound (seeds 0-19 all hold)
    t = gaussian_target(10, seed=0)
    bounds = torch.stack([t.samples.min(0).values - 4, t.samples.max(0).values + 4], 1).tolist()
    est = ais_log_z(t.f, t.samples[:400], base="uniform", bounds=bounds, n_chains=128, n_temps=10,
                    generator=gen(0))
    assert est.value < t.log_z - est.stderr
    assert est.extras["upper"] > t.log_z + est.extras["upper_stderr"]
    # with a good base and more temperatures the bracket tightens around the truth
    good = ais_log_z(t.f, t.samples, n_chains=128, n_temps=100, generator=gen(0))
    assert good.value - 4 * good.stderr < t.log_z < good.extras["upper"] + 4 * good.extras["upper_stderr"]
    assert good.extras["upper"] - good.value < est.extras["upper"] - est.value


def test_uniform_base_matches_quadrature_on_a_bounded_model():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    box = [(-3.0, 3.0), (-2.0, 2.0)]
    model = EnergyModel(net, bounds=box)
    exact = quadrature_log_z(model, box).value
    est = ais_log_z(model, base="uniform", bounds=box, n_chains=128, n_temps=50, reverse=False,
                    generator=gen(1))
    assert est.stderr < 0.1 and within(est.value, exact, est.stderr), (est, exact)
    assert all(p.grad is None for p in net.parameters())   # AIS leaves no .grad on the model


def test_log_z_dispatcher_and_reproducibility():
    t = gaussian_target(3, seed=2, n_samples=300)
    a = ebmlab.log_z(t.f, method="ais", x_ref=t.samples, generator=gen(5), n_chains=64, n_temps=20)
    b = ebmlab.log_z(t.f, method="ais", x_ref=t.samples, generator=gen(5), n_chains=64, n_temps=20)
    assert isinstance(a.value, float) and isinstance(a.stderr, float) and a.method == "ais"
    assert a.value == b.value and a.extras["upper"] == b.extras["upper"]
    assert "upper" in a.extras and "ess" in a.extras


def test_float64_data_and_images_shapes():
    x = torch.randn(200, 1, 2, 2, generator=gen(0), dtype=torch.float64)
    f = lambda v: -0.5 * v.flatten(1).square().sum(1)           # noqa: E731  N(0, I_4), log Z known
    est = ais_log_z(f, x, n_chains=64, n_temps=20, generator=gen(0))
    assert within(est.value, 2 * math.log(2 * math.pi), est.stderr)


def test_schedule_endpoints_and_monotone():
    b = sigmoid_schedule(10)
    assert len(b) == 12 and b[0] == 0.0 and b[-1] == 1.0
    assert all(u < v for u, v in zip(b, b[1:]))
    assert sigmoid_schedule(0) == [0.0, 1.0]


def test_base_falls_back_to_diagonal_with_few_points():
    x = torch.randn(10, 8, generator=gen(0))
    assert fit_base(x).scale.ndim == 1
    assert fit_base(torch.randn(100, 8, generator=gen(0))).scale.ndim == 2


@pytest.mark.parametrize("bad", ["nan", "posinf"])
def test_non_finite_f_on_the_path_raises(bad):
    t = gaussian_target(2, seed=0, n_samples=200)
    fill = float("nan") if bad == "nan" else float("inf")

    def f(x):   # broken in a region the base and the path both reach
        out = t.f(x)
        return torch.where(x[:, 0] > float(t.mean[0]) + 1.0, torch.full_like(out, fill), out)

    with pytest.raises(EBMError, match="NaN or \\+inf"):
        ais_log_z(f, t.samples, n_chains=32, n_temps=5, generator=gen(0))


def test_bad_input_messages():
    t = gaussian_target(2, seed=0, n_samples=50)
    cases = [
        (dict(x_ref=t.samples[:, 0]), "x_ref must be data shaped"),
        (dict(x_ref=t.samples, n_chains=1), "n_chains"),
        (dict(x_ref=t.samples, n_temps=-1), "n_temps"),
        (dict(x_ref=t.samples, n_steps_per_temp=0), "n_steps_per_temp"),
        (dict(x_ref=t.samples, step_size=-0.1), "step_size"),
        (dict(x_ref=t.samples, base="uniform"), "needs bounds"),
        (dict(x_ref=t.samples, base="uniform", bounds=[(-1, 1)] * 3), "3 pairs"),
        (dict(x_ref=t.samples, base="laplace"), "unknown AIS base"),
        (dict(x_ref=None), "needs x_ref"),
        (dict(x_ref=t.samples.clone().fill_(float("nan"))), "NaN"),
        (dict(x_ref=t.samples * 100, base="uniform", bounds=[(-1, 1)] * 2), "outside"),
    ]
    for kwargs, msg in cases:
        with pytest.raises(EBMError, match=msg):
            ais_log_z(t.f, **{"n_temps": 2, "generator": gen(0), **kwargs})
    with pytest.raises(EBMError, match="shape"):
        ais_log_z(lambda x: x, t.samples, n_temps=2)          # returns [B, d], not [B]


def test_degenerate_weights_come_with_a_warning():
    t = gaussian_target(10, seed=0)
    est = ais_log_z(t.f, t.samples[:20], n_temps=0, n_chains=64, generator=gen(0))
    assert "degenerate" in est.extras["warning"]
    good = ais_log_z(t.f, t.samples, n_temps=0, n_chains=64, generator=gen(0))
    assert "warning" not in good.extras


def test_a_float64_model_with_float32_data():
    """The chains took x_ref's dtype: a float64 network given float32 data raised torch's "mat1 and
    mat2 must have the same dtype". They now take the model's (and x_ref is moved to its device)."""
    class Whitened(torch.nn.Module):      # f(x) = -|W x + b|^2 / 2: N(-W^-1 b, (W^T W)^-1), log Z known
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 2).double()
            with torch.no_grad():
                self.lin.weight.copy_(torch.tensor([[2.0, 0.5], [0.0, 0.7]]))
                self.lin.bias.copy_(torch.tensor([0.3, -0.4]))

        def forward(self, x):
            return -0.5 * self.lin(x).square().sum(1)

    m = Whitened()
    exact = math.log(2 * math.pi) - math.log(2.0 * 0.7)
    w = m.lin.weight.detach()
    x = torch.linalg.solve(w, (torch.randn(400, 2, generator=gen(0), dtype=torch.float64) - m.lin.bias.detach()).T).T
    est = ais_log_z(m, x.float(), n_chains=64, n_temps=20, generator=gen(1))
    assert est.stderr < 0.1 and within(est.value, exact, est.stderr), (est, exact)


def test_eval_ais_of_a_float64_model_reads_the_test_set_in_the_model_s_dtype(tmp_path):
    """``ebmlab eval``'s AIS path handed the model the test set as read (float32, on the CPU) and AIS a CPU
    generator. A float64 EnergyModel casts its input itself, but a CUDA model fails on the device (found by
    reading; no GPU here). The test set now goes to the model's device and dtype, checked through the dtype
    a float64 model is handed; the generator (made on the model's device) is indistinguishable on a CPU."""
    import sys
    import numpy as np
    import ebmlab
    from ebmlab.tasks.evaluate import evaluate_run
    from ebmlab.tasks.open import open_run
    x = np.random.default_rng(0).normal(size=(300, 4)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    ebmlab.train("auto", x, tmp_path / "run", steps=5, progress=False)
    run = open_run(tmp_path / "run")
    run.model.double()
    seen, real = [], run.model.log_density

    def recorded(t, *a, **k):          # what evaluate itself hands f (the chains' own dtype is another matter)
        if sys._getframe(1).f_code.co_filename.endswith("evaluate.py"):
            seen.append(t.dtype)
        return real(t, *a, **k)
    run.model.log_density = recorded
    out = evaluate_run(run, data=str(tmp_path / "x.npy"), log_z_method="ais", n_samples=50)
    assert out["log_z_method"] == "ais" and np.isfinite(out["nll"]) and np.isfinite(out["log_z"])
    assert seen and set(seen) == {torch.float64}, set(seen)
