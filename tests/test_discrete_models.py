"""RBM and Ising models, exact log Z by enumeration, and the binary samplers' plumbing."""
from __future__ import annotations

import pytest
import torch

import ebmlab
from ebmlab.errors import EBMError
from ebmlab.models.binary import binary_states, check_enumerable
from ebmlab.models.ising import Ising, lattice_couplings
from ebmlab.models.rbm import RBM
from ebmlab.samplers import BINARY_SAMPLERS, make_sampler, run_chains
from host_reads import host_reads


def random_rbm(nv: int, nh: int, seed: int = 0) -> RBM:
    return RBM.random(nv, nh, generator=torch.Generator().manual_seed(seed), bias_std=1.0)


@pytest.mark.parametrize("nv,nh", [(6, 9), (9, 6)])
def test_rbm_log_z_enumerates_either_side(nv, nh):
    m = random_rbm(nv, nh)
    with torch.no_grad():
        brute = torch.logsumexp(m.log_density(binary_states(nv)).double(), 0)
        by_hidden = torch.logsumexp(m.hidden_log_density(binary_states(nh)).double(), 0)
    assert abs(m.log_z() - float(brute)) < 1e-4
    assert abs(float(by_hidden) - float(brute)) < 1e-4


def test_rbm_free_energy_sums_out_the_hidden_units():
    m = random_rbm(4, 3)
    v = binary_states(4)
    h = binary_states(3)
    # log Σ_h exp(bᵀv + cᵀh + hᵀWv) per v, by brute force
    with torch.no_grad():
        e = (v @ m.b)[:, None] + (h @ m.c)[None, :] + v @ m.W.T @ h.T
        assert torch.allclose(torch.logsumexp(e, 1), m.log_density(v), atol=1e-5)
        assert m.hidden(v).shape == (16, 3) and m.visible(h).shape == (8, 4)


def test_rbm_on_images_keeps_the_event_shape():
    m = RBM(16, 4, event_shape=(1, 4, 4))
    g = torch.Generator().manual_seed(0)
    v = m.sample_visible(m.sample_hidden(torch.zeros(3, 1, 4, 4), g), g)
    assert v.shape == (3, 1, 4, 4) and set(v.unique().tolist()) <= {0.0, 1.0}
    assert m.log_density(v).shape == (3,)


def test_ising_lattice_and_log_z():
    J = lattice_couplings(3, 1.0)
    assert torch.equal(J, J.T) and int(J.sum()) == 2 * 18 and J.diag().abs().sum() == 0   # 18 bonds on a 3x3 torus
    m = Ising.lattice(3, coupling=0.4, field=0.2)
    s = 2 * binary_states(9) - 1
    brute = torch.logsumexp(0.4 * 0.5 * ((s @ J.float()) * s).sum(1) + 0.2 * s.sum(1), 0)
    assert abs(m.log_z() - float(brute)) < 1e-4
    learned = Ising(torch.zeros(4, 4), learn=True)
    assert sum(p.numel() for p in learned.parameters()) == 20


def test_enumeration_too_large_says_how_large_and_offers_ais():
    with pytest.raises(EBMError, match=r"2\^30 = 1.07e\+09 states.*AIS"):
        check_enumerable(30)
    with pytest.raises(EBMError, match="AIS"):
        RBM(30, 28).log_z()


@pytest.mark.parametrize("method", ["gibbs", "gwg", "dmala", "dula"])
def test_sample_by_name_is_reproducible_and_binary(method):
    model = Ising.lattice(3, 0.3)
    x0 = (torch.rand(64, 9, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    a = ebmlab.sample(model, x0, method=method, n_steps=20, generator=torch.Generator().manual_seed(1))
    b = ebmlab.sample(model, x0, method=method, n_steps=20, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x0.shape
    assert set(a.unique().tolist()) <= {0.0, 1.0} and not torch.equal(a, x0)


def test_diagnostics_report_acceptance_and_flips():
    model = Ising.lattice(3, 0.3)
    x0 = torch.zeros(32, 9)
    g = torch.Generator().manual_seed(0)
    _, gwg = run_chains(make_sampler(model, "gwg"), x0, 50, g)
    _, dula = run_chains(make_sampler(model, "dula", step_size=0.5), x0, 50, g)
    _, bg = run_chains(make_sampler(random_rbm(9, 4), "block-gibbs"), x0, 10, g)
    assert 0 < float(gwg.acceptance_rate.mean()) <= 1 and float(gwg.mean_flips.max()) <= 1
    assert float(dula.acceptance_rate.min()) == 1.0 and float(dula.mean_flips.mean()) > 1
    assert float(bg.mean_flips.mean()) > 0


def test_binary_samplers_refuse_non_binary_states_naming_the_value():
    model = Ising.lattice(2, 0.3)
    x0 = torch.zeros(4, 4)
    x0[2, 1] = 0.5
    for method in BINARY_SAMPLERS[:4]:
        with pytest.raises(EBMError, match=r"x0\[2, 1\] = 0.5"):
            ebmlab.sample(model, x0, method=method, n_steps=1)
    with pytest.raises(EBMError, match="RBM"):
        make_sampler(model, "block-gibbs")


def test_binary_ais_brackets_the_exact_log_z():
    from ebmlab.estimate.binary_ais import binary_ais_log_z
    m = random_rbm(16, 6, seed=4)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        p = torch.softmax(m.log_density(binary_states(16)).double(), 0)
    x_ref = binary_states(16)[torch.multinomial(p, 1000, replacement=True, generator=g)]
    est = binary_ais_log_z(m, x_ref, n_chains=256, n_temps=200, generator=g)
    exact = m.log_z()
    # forward: within 5 of its own standard errors (plus a small allowance for AIS's downward bias)
    assert abs(est.value - exact) < 5 * est.stderr + 0.02, (est, exact)
    assert abs(est.extras["upper"] - exact) < 5 * est.extras["upper_stderr"] + 0.02
    assert est.extras["ess"] > 50


def test_ising_picture_of_samples_and_magnetisation(tmp_path):
    from ebmlab.viz.ising import ising_chains, plot_ising_chains
    lat, mag = ising_chains(Ising.lattice(6, coupling=0.6), 6, n_chains=4, n_steps=50,
                            generator=torch.Generator().manual_seed(0))
    assert lat.shape == (4, 6, 6) and mag.shape == (50, 4) and float(mag.abs().max()) <= 1.0
    out = plot_ising_chains(lat, mag, tmp_path / "ising.png", title="6x6, J = 0.6")
    assert out.exists() and out.stat().st_size > 1000


def test_log_z_entry_point_enumerates_binary_spaces():
    m = Ising.lattice(3, coupling=0.3, field=0.1)
    by_model = ebmlab.log_z(m, method="binary", dim=9)
    by_callable = ebmlab.log_z(lambda x: m.log_density(x), method="binary", dim=9)
    assert by_model.stderr == 0.0 and abs(by_model.value - by_callable.value) < 1e-5
    assert abs(by_model.value - m.log_z()) < 1e-9


def test_gwg_survives_a_non_finite_gradient():
    def f(x):   # finite f, NaN gradient everywhere (0 * inf from sqrt at 0): no crash, states stay 0/1
        return (x * torch.tensor(float("nan"))).nan_to_num(0.0).sum(1) + x.sqrt().sum(1) * 0
    x0 = torch.zeros(8, 5)
    x = ebmlab.sample(f, x0, method="gwg", n_steps=5, generator=torch.Generator().manual_seed(0))
    assert x.shape == (8, 5) and set(x.unique().tolist()) <= {0.0, 1.0}


def test_binary_ais_reverse_value_is_not_pushed_below_log_z_by_its_own_base():
    """The reverse chains once started from the very points the Bernoulli base was fitted to; that base
    rates them too likely, and the "upper" value fell ~1 nat BELOW the exact log Z (d = 40, N = 20 exact
    samples, six seeds: mean -1.05, every seed below, and below the forward estimate). Now the base is
    fitted to the other half of x_ref (as the continuous AIS does): mean +0.30 over the same seeds."""
    from ebmlab.estimate.binary_ais import binary_ais_log_z
    d = 40
    a = 1.5 * torch.randn(d, generator=torch.Generator().manual_seed(0))
    exact = float(torch.nn.functional.softplus(a.double()).sum())     # f = a.x: Z = prod(1 + e^a_i)
    gaps = []
    for s in range(6):
        x_ref = (torch.rand(20, d, generator=torch.Generator().manual_seed(100 + s)) < torch.sigmoid(a)).float()
        est = binary_ais_log_z(lambda x: x @ a, x_ref, n_chains=256, n_temps=20,
                               generator=torch.Generator().manual_seed(s))
        gaps.append(est.extras["upper"] - exact)
    # the seeds' gaps spread by ~0.3 nats: the mean of six has a standard error of ~0.13
    assert sum(gaps) / len(gaps) > -0.25, gaps


def test_exact_discrete_log_z_and_nll_of_a_float64_network():
    """Enumerated states and test points were always float32 (only the device followed the model): a
    float64 network raised torch's dtype error in binary_log_z / exact_binary_nll and their categorical
    twins. They now follow the weights' dtype; float32 and float64 copies of one net agree."""
    from ebmlab.estimate.discrete import binary_log_z, exact_binary_nll, exact_categorical_nll
    from ebmlab.models.categorical import one_hot
    from ebmlab.models.energy import EnergyModel
    from ebmlab.nets.mlp import MLP
    torch.manual_seed(0)
    m = EnergyModel(MLP(6, 8, 1))
    m64 = EnergyModel(MLP(6, 8, 1)).double()
    m64.load_state_dict(m.state_dict())
    x = (torch.rand(20, 6, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    assert abs(binary_log_z(m64, 6).value - binary_log_z(m, 6).value) < 1e-5
    assert abs(exact_binary_nll(m64, x)["nll"] - exact_binary_nll(m, x)["nll"]) < 1e-5
    xc = one_hot(torch.randint(0, 3, (20, 2), generator=torch.Generator().manual_seed(2)), 3)     # [20, 6]
    assert abs(exact_categorical_nll(m64, xc, 3)["nll"] - exact_categorical_nll(m, xc, 3)["nll"]) < 1e-5


def test_binary_ais_reads_nothing_back_to_the_host_per_temperature(monkeypatch):
    """Each temperature built a GWG kernel through ``init``, whose {0, 1} check is a bool() of a tensor:
    one host sync per temperature (1000 by default) on a GPU. The count of reads must not grow with
    n_temps (before the fix: 17 reads at 4 temperatures, 89 at 40)."""
    from ebmlab.estimate.binary_ais import binary_ais_log_z
    m = random_rbm(8, 3, seed=1)
    x_ref = (torch.rand(40, 8, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    counts = []
    for n_temps in (4, 40):
        reads = host_reads(monkeypatch)
        binary_ais_log_z(m, x_ref, n_chains=16, n_temps=n_temps, generator=torch.Generator().manual_seed(0))
        counts.append(len(reads))
        monkeypatch.undo()
    assert counts[0] == counts[1], counts


def test_binary_ais_of_a_float64_network():
    """The chains were always float32: a float64 network raised torch's dtype error."""
    from ebmlab.estimate.binary_ais import binary_ais_log_z
    from ebmlab.models.energy import EnergyModel
    from ebmlab.nets.mlp import MLP
    torch.manual_seed(0)
    m64 = EnergyModel(MLP(6, 8, 1)).double()
    x_ref = (torch.rand(40, 6, generator=torch.Generator().manual_seed(1)) < 0.5).double()
    est = binary_ais_log_z(m64, x_ref, n_chains=64, n_temps=50, generator=torch.Generator().manual_seed(0))
    exact = ebmlab.log_z(m64, method="binary", dim=6).value
    assert abs(est.value - exact) < 5 * est.stderr + 0.05, (est, exact)


def test_binary_ais_needs_two_reverse_chains():
    """With N = 2 or 3 points the reverse run had one chain: its stderr was the nan of a single weight's std."""
    from ebmlab.estimate.binary_ais import binary_ais_log_z
    m = random_rbm(6, 3, seed=1)
    x_ref = (torch.rand(4, 6, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    with pytest.raises(EBMError, match="N >= 4"):
        binary_ais_log_z(m, x_ref[:3], n_chains=8, n_temps=5)
    est = binary_ais_log_z(m, x_ref, n_chains=8, n_temps=5, generator=torch.Generator().manual_seed(0))
    assert est.extras["upper_stderr"] == est.extras["upper_stderr"]        # not nan
    binary_ais_log_z(m, x_ref[:1], n_chains=8, n_temps=5, reverse=False)   # forward alone needs no split
