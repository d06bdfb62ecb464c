"""Discrete EBMs on binary data whose true density is known exactly (issue 14).

Data: ~20-bit vectors drawn exactly (by enumerating all 2^20 states) from an Ising lattice and from a
random RBM, and the binarised digits pooled to 4x4 (16 bits; no known truth, exact NLL of each model
by enumeration). Every test NLL in the table is exact: log Z by enumerating {0,1}^d (an RBM: its
smaller side). Rows:

- truth: -mean log p(x) of the test set under the generating distribution;
- ebmlab default: ``ebmlab.train(None, x_train)`` with no settings (the ``binary`` preset);
- ebmlab RBM: ``net="rbm"`` (the ``rbm`` preset, PCD with block Gibbs);
- scikit-learn ``BernoulliRBM``: best of a grid of hidden sizes and learning rates (selected on a
  validation split, reported on test), exact NLL by enumerating its weights;
- EM mixture of Bernoullis (best K of a grid, same selection), and independent bits.

    PYTHONPATH=src .venv-bench/bin/python benchmarks/discrete.py [--quick] [--only ising|rbm|digits|digits8|speed|potts]

Categorical data (``--only potts``): a 3x4 Potts lattice with K = 3, exact draws; ebmlab's default
(``--categories 3``) against an EM mixture of categoricals and independent categoricals.

Writes benchmarks/results/discrete.md (discrete_quick.md; with --only, discrete_<section>.md).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

import ebmlab
from ebmlab.data.binary import digits_binary
from ebmlab.estimate.discrete import exact_binary_nll
from ebmlab.models.binary import binary_states
from ebmlab.models.ising import Ising
from ebmlab.models.rbm import RBM
from ebmlab.training.presets import PRESETS

HERE = Path(__file__).resolve().parent


def cpu() -> float:
    return time.process_time()


# ------------------------------------------------------------------ data with a known density
def exact_draws(model: torch.nn.Module, d: int, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n exact draws [n, d] of exp(f)/Z by enumeration, and log p of every state [2^d]."""
    with torch.no_grad():
        states = binary_states(d)
        logp = torch.cat([model.log_density(s).double() for s in states.split(1 << 16)])
        logp = logp - torch.logsumexp(logp, 0)
    idx = torch.multinomial(logp.exp(), n, replacement=True, generator=g)
    return states[idx], logp


def state_index(x: torch.Tensor) -> torch.Tensor:
    d = x.shape[1]
    return (x.long() * (2 ** torch.arange(d - 1, -1, -1))).sum(1)


def targets(quick: bool) -> dict[str, tuple[torch.nn.Module, int]]:
    g = torch.Generator().manual_seed(7)
    rbm = RBM.random(20, 8, generator=g)
    ising = Ising.lattice(4, coupling=0.4, field=0.1, cols=5)
    return {"Ising 4x5 lattice (J=0.4, h=0.1)": (ising, 20), "random RBM 20x8": (rbm, 20)}


# ------------------------------------------------------------------ baselines
def independent_bits_nll(x_train: np.ndarray, x_test: np.ndarray) -> float:
    p = (x_train.sum(0) + 1) / (x_train.shape[0] + 2)        # Laplace smoothing
    return float(-(x_test * np.log(p) + (1 - x_test) * np.log(1 - p)).sum(1).mean())


def bernoulli_mixture(x: np.ndarray, k: int, iters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """EM for a mixture of k products of Bernoullis: (weights [k], means [k, d])."""
    rng = np.random.default_rng(seed)
    mu = rng.uniform(0.25, 0.75, (k, x.shape[1]))
    w = np.full(k, 1.0 / k)
    for _ in range(iters):
        logr = np.log(w) + x @ np.log(mu).T + (1 - x) @ np.log(1 - mu).T
        logr -= logr.max(1, keepdims=True)
        r = np.exp(logr)
        r /= r.sum(1, keepdims=True)
        nk = r.sum(0) + 1e-9
        w = nk / nk.sum()
        mu = np.clip((r.T @ x + 1) / (nk[:, None] + 2), 1e-4, 1 - 1e-4)   # Beta(2,2)-smoothed M step
    return w, mu


def mixture_nll(w: np.ndarray, mu: np.ndarray, x: np.ndarray) -> float:
    ll = np.log(w) + x @ np.log(mu).T + (1 - x) @ np.log(1 - mu).T
    m = ll.max(1, keepdims=True)
    return float(-(m[:, 0] + np.log(np.exp(ll - m).sum(1))).mean())


def sklearn_rbm_model(est) -> RBM:
    m = RBM(est.components_.shape[1], est.components_.shape[0])
    with torch.no_grad():
        m.W.copy_(torch.from_numpy(est.components_))
        m.b.copy_(torch.from_numpy(est.intercept_visible_))
        m.c.copy_(torch.from_numpy(est.intercept_hidden_))
    return m


def frozen_digits_rbm(n_hidden: int) -> RBM:
    """scikit-learn's BernoulliRBM fitted to the 64-bit binarised training digits, as an ebmlab RBM with frozen
    weights: the fixed target of the sampler-speed and MMD sections."""
    from sklearn.neural_network import BernoulliRBM
    x = digits_binary("train", False).numpy()
    est = BernoulliRBM(n_components=n_hidden, learning_rate=0.05, batch_size=64, n_iter=20, random_state=0).fit(x)
    model = sklearn_rbm_model(est)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def best_sklearn_rbm(x_fit: np.ndarray, x_val: np.ndarray, x_test: np.ndarray, quick: bool) -> tuple[float, str, float]:
    from sklearn.neural_network import BernoulliRBM
    grid = [(h, lr) for h in ((16,) if quick else (8, 16, 32)) for lr in ((0.05,) if quick else (0.01, 0.05))]
    best = None
    t0 = cpu()
    for h, lr in grid:
        est = BernoulliRBM(n_components=h, learning_rate=lr, batch_size=64, n_iter=10 if quick else 30,
                           random_state=0).fit(x_fit)
        model = sklearn_rbm_model(est)
        val = exact_binary_nll(model, torch.from_numpy(x_val).float())["nll"]
        if best is None or val < best[0]:
            best = (val, f"H={h}, lr={lr}", exact_binary_nll(model, torch.from_numpy(x_test).float())["nll"])
    return best[2], best[1], cpu() - t0


def best_mixture(x_fit: np.ndarray, x_val: np.ndarray, x_test: np.ndarray, quick: bool) -> tuple[float, str, float]:
    best = None
    t0 = cpu()
    for k in ((8, 32) if quick else (8, 16, 32, 64)):
        w, mu = bernoulli_mixture(x_fit, k, 50 if quick else 100, seed=0)
        val = mixture_nll(w, mu, x_val)
        if best is None or val < best[0]:
            best = (val, f"K={k}", mixture_nll(w, mu, x_test))
    return best[2], best[1], cpu() - t0


def ebmlab_nll(x_train: np.ndarray, x_test: np.ndarray, **settings) -> tuple[float, float]:
    t0 = cpu()
    run = ebmlab.train(None, x_train.astype(np.float32), progress=False, **settings)
    return exact_binary_nll(run.model, torch.from_numpy(x_test).float())["nll"], cpu() - t0


def ebmkit_rbm_nll(x_train: np.ndarray, x_test: np.ndarray, quick: bool) -> tuple[float, float] | None:
    """ebmkit's discrete EBM where it applies to {0,1}^d: its Bernoulli RBM (ebm.nets.RBM) trained by its
    own ContrastiveDivergence loss with its block-Gibbs sampler and a replay buffer (persistent CD) through its
    Trainer, with the numbers of ebmlab's rbm preset (hidden units, Gibbs steps, buffer of fair coins without
    re-initialisation, Adam lr, batch, steps; ebmkit's Trainer keeps the lr constant). Test NLL exact by its
    own log_z. None when ebmkit is not installed."""
    try:
        from ebm.buffer import ReplayBuffer
        from ebm.losses.cd import ContrastiveDivergence
        from ebm.nets.lattice import RBM as KitRBM
        from ebm.samplers.gibbs import GibbsSampler
        from ebm.training import Trainer
    except ImportError:
        return None
    d = x_train.shape[1]
    torch.manual_seed(0)                  # ebmkit draws from torch's global generator
    t0 = cpu()
    p = PRESETS["rbm"]
    rbm = KitRBM(d, p["hidden"])
    coins = lambda shape: (torch.rand(shape) < 0.5).float()   # noqa: E731
    loss = ContrastiveDivergence(GibbsSampler(steps=p["mcmc_steps"]),
                                 buffer=ReplayBuffer(p["buffer_size"], (d,), reinit_prob=0.0, init_fn=coins))
    Trainer(rbm, loss, lr=p["lr"], device="cpu").fit(torch.from_numpy(x_train).float(),
                                                     steps=p["steps"] // 10 if quick else p["steps"],
                                                     batch_size=p["batch_size"], verbose=False)
    t = cpu() - t0
    with torch.no_grad():
        nll = float(rbm(torch.from_numpy(x_test).float()).double().mean() + rbm.log_z().double())
    return nll, t


def ebmkit_table(quick: bool, n_train: int, n_test: int) -> list[str]:
    """ebmkit's RBM on the two known-truth targets (the same draws as the ising / rbm sections)."""
    out = ["### ebmkit's discrete EBM on the known-truth targets", "",
           "Same draws as the Ising and RBM sections (seed 0 per target). ebmkit's RBM (ebm.nets.RBM) with its own "
           "CD loss, block-Gibbs sampler, replay buffer and Trainer, at ebmlab's rbm-preset numbers ("
           f"{PRESETS['rbm']['hidden']} hidden, PCD-{PRESETS['rbm']['mcmc_steps']}, lr {PRESETS['rbm']['lr']:g} "
           f"constant, batch {PRESETS['rbm']['batch_size']}, {PRESETS['rbm']['steps']} steps); exact NLL by its own log_z. Compare with the rows "
           "`ebmlab default` and `ebmlab RBM` of discrete_ising.md / discrete_rbm.md (same data, same truth).", "",
           "| target | truth NLL | ebmkit RBM NLL | minus truth | CPU-s |", "|---|---:|---:|---:|---:|"]
    for name, (model, d) in targets(quick).items():
        g = torch.Generator().manual_seed(0)
        x, logp = exact_draws(model, d, n_train + n_test, g)
        x_train, x_test = x[:n_train], x[n_train:]
        truth = float(-logp[state_index(x_test)].mean())
        res = ebmkit_rbm_nll(x_train.numpy(), x_test.numpy(), quick)
        if res is None:
            return out[:1] + ["", "ebmkit is not installed here: not measured.", ""]
        out.append(f"| {name} | {truth:.4f} | {res[0]:.4f} | {res[0] - truth:+.4f} | {res[1]:.0f} |")
        print(out[-1], file=sys.stderr)
    return out + [""]


# ------------------------------------------------------------------ the table
def compare(name: str, x_train: torch.Tensor, x_test: torch.Tensor, truth: float | None, quick: bool,
            ebm_settings: dict) -> list[str]:
    xt, xs = x_train.numpy().astype(np.float64), x_test.numpy().astype(np.float64)
    n_val = xt.shape[0] // 10
    x_fit, x_val = xt[n_val:], xt[:n_val]
    rows = []
    gap = (lambda v: f"{v - truth:+.4f}") if truth is not None else (lambda v: "")
    if truth is not None:
        rows.append(("truth (generating density)", truth, "", ""))
    nll, t = ebmlab_nll(xt, xs, **ebm_settings)
    rows.append(("ebmlab default (no flags)", nll, "binary preset: MLP, GWG persistent CD", f"{t:.0f}"))
    print(f"  {name}: ebmlab default {nll:.4f} ({t:.0f} CPU-s)", file=sys.stderr)
    nll, t = ebmlab_nll(xt, xs, net="rbm", **ebm_settings)
    rows.append(("ebmlab RBM (--net rbm)", nll, "rbm preset: block-Gibbs PCD", f"{t:.0f}"))
    nll, how, t = best_sklearn_rbm(x_fit, x_val, xs, quick)
    rows.append(("scikit-learn BernoulliRBM (best of grid)", nll, how, f"{t:.0f}"))
    nll, how, t = best_mixture(x_fit, x_val, xs, quick)
    rows.append(("EM mixture of Bernoullis (best K)", nll, how, f"{t:.0f}"))
    rows.append(("independent bits", independent_bits_nll(xt, xs), "", "0"))
    out = [f"### {name}", "", f"{x_train.shape[0]} training / {x_test.shape[0]} test points, d = {x_train.shape[1]}.",
           "", "| model | test NLL (nats) | minus truth | setting | CPU-s |", "|---|---:|---:|---|---:|"]
    for label, v, how, t in rows:
        out.append(f"| {label} | {v:.4f} | {gap(v)} | {how} | {t} |")
    return out + [""]


# ------------------------------------------------------------------ categorical data: a Potts target
def potts_target() -> "Potts":
    """A 3x4 periodic Potts lattice with K = 3 (3^12 = 531441 states) and a field favouring category 0."""
    from ebmlab.models.potts import Potts
    return Potts.lattice(3, 4, 3, coupling=0.5, field=torch.tensor([0.3, 0.0, -0.2]))


def categorical_mixture(x: np.ndarray, k: int, n_cat: int, iters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """EM for a mixture of k products of categoricals on one-hot x [N, d*K]: (weights [k], log probs [k, d*K])."""
    rng = np.random.default_rng(seed)
    n, dk = x.shape
    logp = np.log(rng.dirichlet(np.ones(n_cat), size=(k, dk // n_cat)).reshape(k, dk))
    w = np.full(k, 1.0 / k)
    for _ in range(iters):
        logr = np.log(w) + x @ logp.T
        logr -= logr.max(1, keepdims=True)
        r = np.exp(logr)
        r /= r.sum(1, keepdims=True)
        nk = r.sum(0) + 1e-9
        w = nk / nk.sum()
        counts = (r.T @ x + 1).reshape(k, -1, n_cat)             # Dirichlet(2)-smoothed M step
        logp = np.log(counts / counts.sum(-1, keepdims=True)).reshape(k, dk)
    return w, logp


def categorical_mixture_nll(w: np.ndarray, logp: np.ndarray, x: np.ndarray) -> float:
    ll = np.log(w) + x @ logp.T
    m = ll.max(1, keepdims=True)
    return float(-(m[:, 0] + np.log(np.exp(ll - m).sum(1))).mean())


def potts_table(quick: bool, n_train: int, n_test: int, ebm_settings: dict) -> list[str]:
    from ebmlab.estimate.discrete import exact_categorical_nll
    from ebmlab.models.categorical import categorical_states, from_one_hot
    model, k, sites = potts_target(), 3, 12
    with torch.no_grad():
        states = categorical_states(sites, k)
        logp = model.log_density(states).double()
        logp = logp - torch.logsumexp(logp, 0)
    idx = torch.multinomial(logp.exp(), n_train + n_test, replacement=True, generator=torch.Generator().manual_seed(0))
    x = states[idx]
    truth = float(-logp[idx[n_train:]].mean())
    xt, xs = x[:n_train].numpy().astype(np.float64), x[n_train:].numpy().astype(np.float64)
    ints = from_one_hot(x[:n_train], k, (3, 4)).numpy()         # what a user has: integers [N, 3, 4]
    rows = [("truth (generating density)", truth, "", "")]
    t0 = cpu()
    run = ebmlab.train(None, ints, categories=k, progress=False, **ebm_settings)
    nll = exact_categorical_nll(run.model, x[n_train:], k)["nll"]
    rows.append(("ebmlab default (--categories 3, no other flags)", nll,
                 "categorical preset: MLP on one-hot, categorical GWG persistent CD", f"{cpu() - t0:.0f}"))
    print(f"  potts: ebmlab default {nll:.4f} (truth {truth:.4f}, {cpu() - t0:.0f} CPU-s)", file=sys.stderr)
    # the model class of the target: a fully connected Potts model with learned couplings, same recipe
    from ebmlab.models.potts import Potts
    g = torch.Generator().manual_seed(0)
    pairwise = Potts(0.01 * torch.randn(sites * k, sites * k, generator=g), k,
                     0.01 * torch.randn(sites * k, generator=g), learn=True)
    t0 = cpu()
    run = ebmlab.train(pairwise, ints, categories=k, progress=False, **ebm_settings)
    nll = exact_categorical_nll(run.model, x[n_train:], k)["nll"]
    rows.append(("ebmlab Potts model, learned couplings (network=Potts(..., learn=True))", nll,
                 "categorical preset, all pairs coupled", f"{cpu() - t0:.0f}"))
    n_val = xt.shape[0] // 10
    best, t0 = None, cpu()
    for m in ((8, 32) if quick else (8, 16, 32, 64)):
        w, lp = categorical_mixture(xt[n_val:], m, k, 50 if quick else 100, seed=0)
        val = categorical_mixture_nll(w, lp, xt[:n_val])
        if best is None or val < best[0]:
            best = (val, f"K={m}", categorical_mixture_nll(w, lp, xs))
    rows.append(("EM mixture of categoricals (best K)", best[2], best[1], f"{cpu() - t0:.0f}"))
    p = (xt.sum(0) + 1).reshape(sites, k)
    p = np.log(p / p.sum(1, keepdims=True)).reshape(-1)
    rows.append(("independent categoricals", float(-(xs @ p).mean()), "", "0"))
    out = ["### Potts 3x4 lattice, K = 3 (coupling 0.5, field (0.3, 0, -0.2))", "",
           f"{n_train} training / {n_test} test points drawn exactly (enumerating all 3^12 = 531441 states); every "
           "NLL exact (ebmlab's log Z by enumerating 3^12 one-hot states).", "",
           "| model | test NLL (nats) | minus truth | setting | CPU-s |", "|---|---:|---:|---|---:|"]
    for label, v, how, t in rows:
        out.append(f"| {label} | {v:.4f} | {v - truth:+.4f} | {how} | {t} |")
    return out + [""]


# ------------------------------------------------------------------ the full 8x8 binarised digits (AIS)
def ais_bracket(model: torch.nn.Module, x_test: torch.Tensor, n_temps: int, seed: int = 0) -> tuple[float, float]:
    """(NLL from forward AIS, NLL from reverse AIS) on x_test [N, 64]: forward log Z is a stochastic lower
    bound, so its NLL is the low end; the reverse run from the test points gives the high end."""
    from ebmlab.estimate.binary_ais import binary_ais_log_z
    for p in model.parameters():
        p.requires_grad_(False)
    est = binary_ais_log_z(model, x_test, n_chains=256, n_temps=n_temps, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        mean_f = float(model.log_density(x_test).double().mean())
    return est.value - mean_f, est.extras["upper"] - mean_f


def digits8_table(quick: bool, ebm_settings: dict) -> list[str]:
    """ebmlab's default on ``digits-binary`` (the conv net for binary images) and its RBM, scikit-learn's
    BernoulliRBM (grid selected on a validation split by the forward-AIS NLL), the EM mixture, independent bits."""
    import tempfile
    from sklearn.neural_network import BernoulliRBM
    from ebmlab.cli import main as cli_main
    x_tr, x_te = digits_binary("train", False), digits_binary("test", False)
    n_temps = 500 if quick else 3000
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = cpu()
        run = ebmlab.train(None, "digits-binary", Path(tmp) / "run", progress=False, **ebm_settings)
        t_train = cpu() - t0
        lo, hi = ais_bracket(run.model, x_te, n_temps)
        rows.append(("ebmlab default (no flags)", lo, hi, "binary preset: conv net for binary images, GWG PCD",
                     f"{t_train:.0f}"))
        print(f"  digits 8x8: ebmlab default [{lo:.3f}, {hi:.3f}] ({t_train:.0f} CPU-s)", file=sys.stderr)
        # the full run's grid goes where the docs page shows it (mkdocs serves only docs/), as the MMD picture
        pic = (HERE / "results" / "discrete_digits8_samples_quick.png" if quick
               else HERE.parent / "docs" / "img" / "discrete_digits8_samples.png")
        cli_main(["sample", str(Path(tmp) / "run"), "--out", str(pic), "--n", "64", "--n-steps", "2000", "--seed", "0"])
    t0 = cpu()
    rbm = ebmlab.train(None, "digits-binary", net="rbm", progress=False, **ebm_settings)
    t_train = cpu() - t0
    lo, hi = ais_bracket(rbm.model, x_te, n_temps)
    rows.append(("ebmlab RBM (--net rbm)", lo, hi, "rbm preset: 32 hidden, block-Gibbs PCD", f"{t_train:.0f}"))
    xt = x_tr.numpy().astype(np.float64)
    n_val = xt.shape[0] // 10
    best, t0 = None, cpu()
    for h in ((16,) if quick else (16, 32, 64)):
        for lr in ((0.05,) if quick else (0.01, 0.05)):
            est = BernoulliRBM(n_components=h, learning_rate=lr, batch_size=64, n_iter=10 if quick else 30,
                               random_state=0).fit(xt[n_val:])
            model = sklearn_rbm_model(est)
            val, _ = ais_bracket(model, torch.from_numpy(xt[:n_val]).float(), n_temps)
            if best is None or val < best[0]:
                best = (val, f"H={h}, lr={lr}", model)
    lo, hi = ais_bracket(best[2], x_te, n_temps)
    rows.append(("scikit-learn BernoulliRBM (best of grid)", lo, hi, best[1], f"{cpu() - t0:.0f}"))
    nll, how, t = best_mixture(xt[n_val:], xt[:n_val], x_te.numpy().astype(np.float64), quick)
    rows.append(("EM mixture of Bernoullis (best K)", nll, nll, how + " (exact)", f"{t:.0f}"))
    ind = independent_bits_nll(xt, x_te.numpy().astype(np.float64))
    rows.append(("independent bits", ind, ind, "(exact)", "0"))
    out = ["### Full 8x8 binarised digits (64 bits, AIS)", "",
           f"{x_tr.shape[0]} training / {x_te.shape[0]} test digits (scikit-learn's 8x8 digits, pixel > 8). The EBMs' "
           f"NLL is bracketed by AIS ({n_temps} temperatures, 256 chains, product-of-Bernoullis base, "
           "estimate/binary_ais.py): 'low' from the forward run (a stochastic lower bound of log Z), 'high' from "
           "the reverse run started at the test digits (an upper bound when they are exact samples of the "
           "model; where it came out below 'low', the test digits are not exact samples of the model and the pair is "
           "not a bracket: their gap says how far AIS is from agreeing with itself). The mixture and independent "
           "bits are exact.", "",
           f"Samples of the ebmlab default: `{pic.relative_to(HERE.parent)}` (64 chains from fair coins, 2000 GWG "
           "steps).", "",
           "| model | test NLL low | test NLL high | setting | CPU-s |", "|---|---:|---:|---|---:|"]
    for label, lo, hi, how, t in rows:
        out.append(f"| {label} | {lo:.3f} | {hi:.3f} | {how} | {t} |")
    return out + [""]


# ------------------------------------------------------------------ sampler speed
def sampler_speed(quick: bool) -> list[str]:
    """Effective samples per CPU-second of f(x) and of a fixed random projection of x along chains of each
    binary sampler on one RBM of the 64-bit binarised digits (scikit-learn's fit, 32 hidden units)."""
    from ebmlab.metrics.diagnostics import effective_sample_size
    from ebmlab.samplers import make_sampler
    model = frozen_digits_rbm(32)
    n_chains, burn, steps = (16, 200, 400) if quick else (32, 1000, 4000)
    proj = torch.randn(64, generator=torch.Generator().manual_seed(1))
    lines = ["### Sampler speed: RBM on 64-bit binarised digits", "",
             f"{n_chains} chains from fair coins, {burn} burn-in steps, then {steps} recorded steps; ESS (Geyer, "
             "all chains) of f(x) and of a fixed random projection wᵀx, per CPU-second of the recorded steps.", "",
             "| sampler | CPU ms / step | acceptance | bits flipped / step | ESS f / CPU-s | ESS wᵀx / CPU-s |",
             "|---|---:|---:|---:|---:|---:|"]
    rates: dict[str, tuple[float, float]] = {}
    for method in ("gibbs", "gwg", "dmala", "dula", "block-gibbs"):
        g = torch.Generator().manual_seed(2)
        sampler = make_sampler(model, method)
        state = sampler.init((torch.rand(n_chains, 64, generator=g) < 0.5).float())
        for _ in range(burn):
            state, _ = sampler.step(state, g)
        fs, ps, acc, flips = [], [], 0.0, 0.0
        t0 = cpu()
        for _ in range(steps):
            state, info = sampler.step(state, g)
            fs.append(state.log_density)
            ps.append(state.x @ proj)
            acc = acc + info.accepted.float().mean()
            flips = flips + info.flips.mean()
        t = cpu() - t0
        ess_f = effective_sample_size(torch.stack(fs).double().numpy())
        ess_p = effective_sample_size(torch.stack(ps).double().numpy())
        lines.append(f"| {method} | {1000 * t / steps:.2f} | {float(acc) / steps:.3f} | {float(flips) / steps:.2f} | "
                     f"{ess_f / t:.0f} | {ess_p / t:.0f} |")
        print(f"  speed {method}: {ess_f / t:.0f} ESS/s", file=sys.stderr)
        rates[method] = (ess_f / t, ess_p / t)
    try:     # ebmkit's Gibbs-with-gradients on the same model (p ∝ exp(-E): E = -f); its own global RNG
        from ebm.samplers.discrete import GibbsWithGradients as KitGWG
    except ImportError:
        KitGWG = None
    if KitGWG is not None:
        torch.manual_seed(2)
        kit = KitGWG(steps=1)
        energy = lambda z: -model.log_density(z)   # noqa: E731
        x = (torch.rand(n_chains, 64) < 0.5).float()
        for _ in range(burn):
            x = kit.step(energy, x)
        fs, ps = [], []
        t0 = cpu()
        for _ in range(steps):
            x = kit.step(energy, x)
            with torch.no_grad():
                fs.append(model.log_density(x))
            ps.append(x @ proj)
        t = cpu() - t0
        ess_f = effective_sample_size(torch.stack(fs).double().numpy())
        ess_p = effective_sample_size(torch.stack(ps).double().numpy())
        lines.append(f"| ebmkit GibbsWithGradients | {1000 * t / steps:.2f} | | | {ess_f / t:.0f} | {ess_p / t:.0f} |")
        rates["ebmkit gwg"] = (ess_f / t, ess_p / t)
    lines += ["", "Ratios of effective samples per CPU-second (f(x); wᵀx), same run:", ""]
    pairs = [("gwg", "block-gibbs"), ("dmala", "block-gibbs"), ("gibbs", "block-gibbs"), ("gwg", "ebmkit gwg"),
             ("dmala", "ebmkit gwg")]
    for a, b in pairs:
        if a in rates and b in rates:
            lines.append(f"- {a} / {b}: {rates[a][0] / rates[b][0]:.3g}; {rates[a][1] / rates[b][1]:.3g}")
    return lines + ["", "dula is unadjusted: its chains target a biased law (its ESS is of that law). ebmkit's "
                    "time includes one extra f evaluation per step for the trace (ebmlab's state caches f).", ""]


# ------------------------------------------------------------------ log MMD versus steps (Grathwohl et al. 2021)
def hamming_mmd2(x: torch.Tensor, y: torch.Tensor) -> float:
    """MMD² (the biased V-statistic: always > 0, so its log exists; its floor for two sets from one law
    is ~1/n) of bit vectors [n, d], [m, d] with the exponential Hamming kernel k(a, b) = exp(-hamming(a, b) / d),
    the kernel of Grathwohl et al. 2021's RBM sampling experiment."""
    d = x.shape[1]

    def k(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ham = a @ (1 - b).T + (1 - a) @ b.T
        return torch.exp(-ham / d)
    return float(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())


def exact_rbm_samples(model: RBM, n: int, g: torch.Generator) -> torch.Tensor:
    """n exact draws of v [n, D] from an RBM with few hidden units: h from p(h) by enumerating 2^H, then v | h."""
    with torch.no_grad():
        hs = binary_states(model.n_hidden)
        logp = model.hidden_log_density(hs).double()
        h = hs[torch.multinomial(torch.softmax(logp, 0), n, replacement=True, generator=g)]
        return model.sample_visible(h, g)


def mmd_versus_steps(quick: bool, out_png: Path) -> list[str]:
    """The shape of Grathwohl et al. 2021's Fig. 3 (RBM sampling): log MMD between each sampler's chains
    (started from fair coins) and exact samples, against steps and against CPU time, on an RBM fitted to
    the 64-bit binarised digits with 16 hidden units (few enough that exact samples come from
    enumerating the hidden side)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ebmlab.samplers import make_sampler
    from ebmlab.viz.plots import save_figure
    model = frozen_digits_rbm(16)
    n, steps, every = (200, 300, 10) if quick else (500, 2000, 20)
    g = torch.Generator().manual_seed(5)
    ref = exact_rbm_samples(model, n, g)
    floor = hamming_mmd2(exact_rbm_samples(model, n, g), ref)    # two exact sets: the noise level
    curves = {}
    for method in ("gibbs", "gwg", "dmala", "block-gibbs"):
        gen = torch.Generator().manual_seed(6)
        sampler = make_sampler(model, method)
        state = sampler.init((torch.rand(n, 64, generator=gen) < 0.5).float())
        xs, ys, ts, t = [0], [hamming_mmd2(state.x, ref)], [0.0], 0.0
        for k in range(1, steps + 1):
            t0 = cpu()
            state, _ = sampler.step(state, gen)
            t += cpu() - t0
            if k % every == 0:
                xs.append(k), ys.append(hamming_mmd2(state.x, ref)), ts.append(t)
        curves[method] = (np.array(xs), np.array(ys), np.array(ts))
        print(f"  mmd {method}: final {ys[-1]:.2e} ({t:.1f} CPU-s)", file=sys.stderr)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for method, (xs, ys, ts) in curves.items():
        axes[0].plot(xs, np.log(np.clip(ys, 1e-7, None)), label=method)
        axes[1].plot(ts, np.log(np.clip(ys, 1e-7, None)), label=method)
    t_min = min(float(ts[1]) for _, _, ts in curves.values())
    for ax, xl, lin in zip(axes, ("sampler steps (log scale past the first record)", "CPU seconds (one thread, log scale)"),
                           (every, t_min)):
        ax.set_xscale("symlog", linthresh=lin)     # the early steps, where the samplers differ, get room
        ax.axhline(np.log(max(abs(floor), 1e-7)), color="grey", ls=":", label="two exact sets")
        ax.set_xlabel(xl)
        ax.set_ylabel("log MMD² (exp. Hamming kernel)")
    axes[0].legend()
    fig.suptitle(f"RBM (64 visible, 16 hidden) on binarised digits: {n} chains from fair coins vs {n} exact samples")
    fig.tight_layout()
    save_figure(fig, out_png)
    plt.close(fig)
    lines = ["### log MMD versus steps (Grathwohl et al. 2021, RBM sampling)", "",
             f"`docs/img/{out_png.name}`: {n} chains per sampler from fair coins on an RBM of the 64-bit digits "
             f"with 16 hidden units; MMD² (exponential Hamming kernel) against {n} exact samples (hidden side "
             f"enumerated), every {every} steps; the dotted line is the MMD² of two exact sets (noise level).", "",
             "| sampler | log MMD² at step 100 | at step 500 | at the last step | CPU-s for all steps |", "|---|---:|---:|---:|---:|"]
    for method, (xs, ys, ts) in curves.items():
        at = lambda step: f"{np.log(max(ys[np.searchsorted(xs, step)], 1e-7)):.2f}" if step <= xs[-1] else ""  # noqa: E731
        lines.append(f"| {method} | {at(100)} | {at(500)} | {np.log(max(ys[-1], 1e-7)):.2f} | {ts[-1]:.1f} |")
    lines.append(f"| two exact sets | | | {np.log(max(abs(floor), 1e-7)):.2f} | |")
    return lines + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer training steps and a smaller grid (CI smoke run)")
    ap.add_argument("--only", choices=["ising", "rbm", "digits", "speed", "potts", "digits8", "ebmkit"],
                    help="run one section and write results/discrete_<section>.md (sections can run in parallel)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ebm_settings = {"steps": 300} if args.quick else {}
    n_train, n_test = (3000, 2000) if args.quick else (20000, 10000)
    lines = ["# Discrete EBMs: exact test NLL on binary and categorical data (issue 14)", "",
             "Command: `" + " ".join(["PYTHONPATH=src", Path(sys.executable).name, *sys.argv]) + "`", "",
             f"Every NLL is exact where the space can be enumerated (2^d or K^d states <= 2^24). torch threads: 1. "
             f"Quick run: {args.quick}.", ""]
    want = lambda part: args.only in (None, part)   # noqa: E731
    for part, (name, (model, d)) in zip(("ising", "rbm"), targets(args.quick).items()):
        g = torch.Generator().manual_seed(0)           # each target's draws do not depend on the other's
        if not want(part):
            continue
        x, logp = exact_draws(model, d, n_train + n_test, g)
        x_train, x_test = x[:n_train], x[n_train:]
        truth = float(-logp[state_index(x_test)].mean())
        lines += compare(name, x_train, x_test, truth, args.quick, ebm_settings)
    if want("digits"):
        lines += compare("binarised digits pooled to 4x4 (16 bits, no known truth)", digits_binary("train", True),
                         digits_binary("test", True), None, args.quick, ebm_settings)
    if want("digits8"):
        lines += digits8_table(args.quick, ebm_settings)
    if want("ebmkit"):
        lines += ebmkit_table(args.quick, n_train, n_test)
    if want("potts"):
        lines += potts_table(args.quick, n_train, n_test, ebm_settings)
    if want("speed"):
        pic = HERE.parent / "docs" / "img" / ("discrete_rbm_mmd_quick.png" if args.quick else "discrete_rbm_mmd.png")
        lines += sampler_speed(args.quick) + mmd_versus_steps(args.quick, pic) + ising_picture(args.quick)
    stem = "discrete" + (f"_{args.only}" if args.only else "") + ("_quick" if args.quick else "")
    out = HERE / "results" / f"{stem}.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


def ising_picture(quick: bool) -> list[str]:
    from ebmlab.viz.ising import ising_chains, plot_ising_chains
    lat, mag = ising_chains(Ising.lattice(16, coupling=0.5), 16, n_chains=8, n_steps=500 if quick else 4000,
                            generator=torch.Generator().manual_seed(3))
    pic = plot_ising_chains(lat, mag, HERE / "results" / ("discrete_ising_quick.png" if quick else
                                                         "discrete_ising.png"),
                            title="16x16 periodic Ising, J = 0.5 (ordered phase), GWG from fair coins")
    return ["### Ising picture", "", f"`{pic.name}`: 8 GWG chains on a 16x16 periodic lattice at J = 0.5 "
            "(above the critical 0.44), final lattices and magnetisation per step.", ""]


if __name__ == "__main__":
    main()
