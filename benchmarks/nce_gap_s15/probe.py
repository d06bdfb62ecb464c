"""Session 15 probe for issue 15's nce gap: one plain training loop whose pieces are either ebmlab's or ebmkit's, so
the gap between ``ebmlab.train(objective="nce")`` and ebmkit's nce (benchmarks/peers/objective_runners.py) can be
walked one piece at a time, in the style of benchmarks/dsm_gap_s11/probe.py. Results and commands:
benchmarks/results/objectives2d_nce_gap_s15.md.

    python benchmarks/nce_gap_s15/probe.py SETS SEEDS VARIANT [VARIANT ...]

A VARIANT is ``ebmlab.train`` (objectives2d.py's own call), ``ebmlab.raw`` (the same call with the peers' raw MLP
``make_net(seed)`` as the user's network: ebmlab's trainer, split, box, noise and preset, no standardisation),
``peer`` (objective_runners.train("ebmkit", "nce", ...), the benchmark's ebmkit row) or a comma list of pieces
applied to the plain loop, which by itself is ebmkit's loop (all 20 000 points, raw MLP, draws with replacement,
noise one full-covariance Gaussian fitted to the training points, drawn from the global RNG; batch 1024, 4 noise
points each, Adam 0.005 cosine to 0.02x, 3000 steps):

- ``split``: train on ebmlab's split of the array (test_fraction 0.1: a seeded permutation holds out 2 000)
- ``std``: ebmlab's fixed standardisation (training mean / std) in front of the MLP
- ``box``: ebmlab's support box during training (data range + 12.5 % per side, f = -inf outside)
- ``epoch``: ebmlab's batching (epoch permutations from a generator seeded with the seed, drop the tail)
- ``gen``: the noise from ebmlab's generator (seed + 1, ``NCENoise.sample``) instead of the global RNG
- ``foreach``: Adam(foreach=True) as ebmlab's trainer on the CPU
- ``k=K``: the noise is ebmlab's ``NCENoise.fit`` with K components (EM on the training points, seed's
  random_state) instead of the peer's Gaussian (k=1 is a Gaussian fitted by EM: the same moments up to reg_covar)
- ``u=U``: a share U of the noise uniform over ebmlab's support box (NCENoise's uniform part; needs ``k``)

``all`` = split,std,box,epoch,gen,foreach,k=8,u=0.1 (ebmlab's trainer re-written: it must reproduce
``ebmlab.train``). Every model is scored on both boxes: the shared box (data box +- 1, the peers') and ebmlab's
support box of the points it trained on. Prints one line per (set, seed, variant) with the learned log Z, and a
median line per (set, variant).
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import ebmlab  # noqa: E402
from ebmlab.models.energy import EnergyModel  # noqa: E402
from ebmlab.nets.mlp import Standardize  # noqa: E402
from ebmlab.rundir.build import describe_vector_data  # noqa: E402
from ebmlab.training.nce import NCENoise, nce_loss  # noqa: E402

from density2d import data, exact_nll, shared_box, true_nll  # noqa: E402
from ebmlab.data import toy2d  # noqa: E402
from peers import make_net  # noqa: E402

STEPS, BATCH, RATIO, LR, LR_MIN, MARGIN, TEST_FRACTION = 3000, 1024, 4, 0.005, 0.02, 0.125, 0.1
ALL = "split,std,box,epoch,gen,foreach,k=8,u=0.1"


def ebmlab_box(train: torch.Tensor) -> torch.Tensor:
    """ebmlab's support box of ``train`` [N, 2] -> [2, 2] float64 (rundir.build.describe_vector_data)."""
    return torch.tensor(describe_vector_data(train, MARGIN)["bounds"], dtype=torch.float64)


def peer_noise(x: torch.Tensor) -> torch.distributions.MultivariateNormal:
    """objective_runners.make_loss's noise for ebmkit: one Gaussian with the points' mean and covariance."""
    x64 = x.double()
    return torch.distributions.MultivariateNormal(x64.mean(0).float(), torch.cov(x64.T).float())


def plain(x_all: torch.Tensor, seed: int, pieces: dict) -> tuple[EnergyModel, torch.Tensor, float]:
    """The plain loop with ``pieces``; returns (model, the training points it used, learned log Z)."""
    x = x_all
    if "split" in pieces:       # training/api.py dataset_from: the array's seeded permutation, 10 % held out
        n_test = max(1, int(round(x.shape[0] * TEST_FRACTION)))
        perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
        x = x[perm[n_test:]]
    net = make_net(seed)
    desc = describe_vector_data(x, MARGIN)
    if "std" in pieces:
        net = torch.nn.Sequential(Standardize(torch.tensor(desc["mean"]), torch.tensor(desc["std"])), net)
    model = EnergyModel(net, bounds=desc["bounds"] if "box" in pieces else None)
    torch.manual_seed(seed)
    if "k" in pieces:           # ebmlab's noise (NCE.setup): EM fit, optional uniform share over the support box
        box = torch.tensor(desc["bounds"], dtype=torch.float32)
        q = NCENoise.fit(x.detach().cpu(), int(pieces["k"]), seed, torch.device("cpu"), box=box,
                         uniform=float(pieces.get("u", 0.0)))
    else:
        mvn = peer_noise(x)
        q = NCENoise(torch.ones(1), mvn.loc[None], mvn.scale_tril[None], (2,))   # for ``gen`` draws only
    gen = torch.Generator().manual_seed(seed + 1) if "gen" in pieces else None
    log_z = torch.nn.Parameter(torch.zeros(()))
    params = [*model.parameters(), log_z]
    opt = torch.optim.Adam(params, lr=LR, foreach=True if "foreach" in pieces else None)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: LR_MIN + (1 - LR_MIN) * 0.5 * (1 + math.cos(math.pi * min(s, STEPS) / STEPS)))
    n = x.shape[0]
    g = torch.Generator().manual_seed(seed)
    perm, pos = (torch.randperm(n, generator=g), 0) if "epoch" in pieces else (None, 0)
    for _ in range(STEPS):
        if perm is not None:
            if pos + BATCH > n:
                perm, pos = torch.randperm(n, generator=g), 0
            xb = x[perm[pos:pos + BATCH]]
            pos += BATCH
        else:
            xb = x[torch.randint(n, (BATCH,), generator=g)]
        if "k" in pieces or gen is not None:
            y = q.sample(RATIO * xb.shape[0], gen if gen is not None else torch.default_generator)
            lq_x, lq_y = q.log_prob(xb), q.log_prob(y)
        else:                   # ebmkit's NoiseContrastiveEstimation.forward, exactly
            y = mvn.sample((RATIO * xb.shape[0],))
            lq_x, lq_y = mvn.log_prob(xb), mvn.log_prob(y)
        loss, _ = nce_loss(model.log_density(xb), model.log_density(y), lq_x, lq_y, log_z, RATIO)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval(), x, float(log_z.detach())


def parse(variant: str) -> dict:
    variant = variant.replace("all", ALL)
    pieces = {}
    for p in filter(None, variant.split(",")):
        k, _, v = p.partition("=")
        pieces[k] = v or True
    return pieces


def run(name: str, seed: int, variant: str) -> tuple[float, float, float, float]:
    """(NLL gap on the shared box, on ebmlab's box of the points it trained on, learned log Z, CPU seconds)."""
    train, test = data(name)
    cpu0 = time.process_time()
    if variant in ("ebmlab.train", "ebmlab.raw"):
        net = "auto" if variant == "ebmlab.train" else make_net(seed)
        r = ebmlab.train(net, train.numpy(), None, steps=STEPS, seed=seed, objective="nce", progress=False,
                         threads=None)
        f, own, lz = r.model.log_density, r.model.bounds.double(), float(r.metrics.get("log_z", float("nan")))
        # ebmlab's f is -inf outside its box: on the (larger) shared box that mass is simply absent
    elif variant == "peer":
        from peers import objective_runners
        f, _, extra = objective_runners.train("ebmkit", "nce", train, STEPS, seed, BATCH, LR, LR_MIN, 0.1, RATIO)
        own, lz = ebmlab_box(train), extra["log_z"]
    else:
        model, used, lz = plain(train, seed, parse(variant))
        f, own = model.log_density, ebmlab_box(used)
    cpu = time.process_time() - cpu0
    true = true_nll(name, test)
    lk = leak(name, f, own)
    print(f"{name:16s} {variant:44s} seed {seed}  model mass outside the truth's 99 % / 99.9 % region (own box): "
          f"{lk[0]:.4f} / {lk[1]:.4f}", flush=True)
    return exact_nll(f, test, shared_box(train)) - true, exact_nll(f, test, own) - true, lz, cpu


@torch.no_grad()
def leak(name: str, f, box: torch.Tensor, n: int = 400) -> tuple[float, float]:
    """The model's mass (normalised over ``box`` [2, 2] on an n x n midpoint grid) outside the smallest set of
    cells that holds 99 % / 99.9 % of the true density's mass there: where a model puts mass the data never
    visits (added from run 5 of the session on; diagnostic only)."""
    lo, hi = box[:, 0], box[:, 1]
    cx = [lo[i] + (hi[i] - lo[i]) * (torch.arange(n, dtype=torch.float64) + 0.5) / n for i in range(2)]
    X = torch.stack(torch.meshgrid(cx[0], cx[1], indexing="ij"), -1).reshape(-1, 2)
    fm = torch.cat([f(c.float()).double() for c in X.split(40000)])
    pm = torch.softmax(fm.nan_to_num(float("-inf")), 0)
    pt = torch.softmax(toy2d.true_log_density(name, X), 0)
    order = pt.argsort(descending=True)
    cum = pt[order].cumsum(0)
    out = []
    for level in (0.99, 0.999):
        inside = order[: int((cum < level).sum()) + 1]
        out.append(float(1 - pm[inside].sum()))
    return out[0], out[1]


def median(v: list[float]) -> float:
    v = sorted(v)
    k = len(v) // 2
    return v[k] if len(v) % 2 else 0.5 * (v[k - 1] + v[k])


def main() -> None:
    sets, seeds, variants = sys.argv[1].split(","), [int(s) for s in sys.argv[2].split(",")], sys.argv[3:]
    torch.set_num_threads(1)
    for name in sets:
        for variant in variants:
            shared, own = [], []
            for seed in seeds:
                a, b, lz, cpu = run(name, seed, variant)
                shared.append(a)
                own.append(b)
                print(f"{name:16s} {variant:44s} seed {seed}  shared-box {a:+.6f}  ebmlab-box {b:+.6f}  "
                      f"log Z {lz:.3f}  ({cpu:.0f} CPU-s)", flush=True)
            print(f"{name:16s} {variant:44s} MEDIAN shared-box {median(shared):+.4f}  ebmlab-box {median(own):+.4f}  "
                  f"[{' '.join(f'{v:.4f}' for v in shared)} | {' '.join(f'{v:.4f}' for v in own)}]", flush=True)


if __name__ == "__main__":
    main()
