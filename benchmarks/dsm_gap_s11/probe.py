"""Session 11 probe for issue 15's dsm gap: one plain training loop whose pieces are either ebmlab's or the
peers', so the gap between ``ebmlab.train(objective="dsm")`` and ebmkit's / torchebm's dsm can be walked one
piece at a time. Results and commands: benchmarks/results/objectives2d_dsm_gap_s11.md.

    python benchmarks/dsm_gap_s11/probe.py SETS SEEDS VARIANT [VARIANT ...]

A VARIANT is ``ebmlab.train[:OBJ]`` (the benchmark's own call, objectives2d.py run_ebmlab; OBJ defaults to
dsm), ``ebmlab.raw[:OBJ]`` (the same call with the peers' raw MLP as the user's network), ``peer`` (ebmkit's loss in
peers/objective_runners.py's loop) or a comma list of pieces applied to the plain loop, which by itself is the
peers' loop (all 20 000 points, raw MLP, draws with replacement, ebmkit's loss 1/2 |s + eps / sigma|^2, noise
from the global RNG, seeded like the runner):

- ``split``: train on ebmlab's split of the array (test_fraction 0.1: a seeded permutation holds out 2 000)
- ``std``: ebmlab's fixed standardisation (training mean / std) in front of the MLP
- ``box``: ebmlab's support box during training (data range + 12.5 % per side, f = -inf outside)
- ``epoch``: ebmlab's batching (epoch permutations from a generator seeded with the seed, drop the tail)
- ``s2``: ebmlab's sigma^2-weighted loss 1/2 |sigma s + eps|^2 (the same minimiser, 1/sigma^2 smaller)
- ``gen``: the noise from ebmlab's generator (seed + 1) instead of the global RNG
- ``foreach``: Adam(foreach=True) as ebmlab's trainer on the CPU
- ``eps=E``: Adam's eps (default 1e-8); ``scale=K``: multiply the loss by K

``all`` = split,std,box,epoch,s2,gen,foreach (ebmlab's trainer re-written: it must reproduce ``ebmlab.train``).
Every model is scored on both boxes: the shared box (data box +- 1, the peers') and ebmlab's support box.
Prints one line per (set, seed, variant) and a median line per (set, variant).
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

from density2d import data, exact_nll, shared_box, true_nll  # noqa: E402
from peers import make_net  # noqa: E402

STEPS, BATCH, LR, LR_MIN, SIGMA, MARGIN, TEST_FRACTION = 3000, 256, 0.005, 0.02, 0.1, 0.125, 0.1


def ebmlab_box(train: torch.Tensor) -> torch.Tensor:
    """ebmlab's support box of ``train`` [N, 2] -> [2, 2] float64 (rundir.build.describe_vector_data)."""
    return torch.tensor(describe_vector_data(train, MARGIN)["bounds"], dtype=torch.float64)


def plain(x_all: torch.Tensor, seed: int, pieces: dict) -> tuple[torch.nn.Module, torch.Tensor]:
    """The plain loop with ``pieces``; returns (f: [B, 2] -> [B], the training points it used)."""
    x = x_all
    if "split" in pieces:       # training/api.py dataset_from: the array's seeded permutation, 10 % held out
        n_test = max(1, int(round(x.shape[0] * TEST_FRACTION)))
        perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
        x = x[perm[n_test:]]
    net = make_net(seed)
    if "std" in pieces:
        d = describe_vector_data(x, MARGIN)
        net = torch.nn.Sequential(Standardize(torch.tensor(d["mean"]), torch.tensor(d["std"])), net)
    model = EnergyModel(net, bounds=describe_vector_data(x, MARGIN)["bounds"] if "box" in pieces else None)
    torch.manual_seed(seed)
    gen_noise = torch.Generator().manual_seed(seed + 1) if "gen" in pieces else None
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=LR, eps=float(pieces.get("eps", 1e-8)),
                           foreach=True if "foreach" in pieces else None)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: LR_MIN + (1 - LR_MIN) * 0.5 * (1 + math.cos(math.pi * min(s, STEPS) / STEPS)))
    scale = float(pieces.get("scale", 1.0))
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
        if gen_noise is not None:
            torch.randint(0, 1, (BATCH,), generator=gen_noise)      # ebmlab's DSM draws each example's level first
            eps = torch.randn(xb.shape, generator=gen_noise)
        else:
            eps = torch.randn_like(xb)
        xt = (xb + SIGMA * eps).requires_grad_(True)
        (s,) = torch.autograd.grad(model.log_density(xt).sum(), xt, create_graph=True)
        if "s2" in pieces:
            loss = 0.5 * (SIGMA * s + eps).pow(2).sum(1).mean()
        else:
            loss = 0.5 * (s + eps / SIGMA).pow(2).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        (scale * loss).backward()
        opt.step()
        sched.step()
    return model.eval(), x


def parse(variant: str) -> dict:
    if variant == "all":
        variant = "split,std,box,epoch,s2,gen,foreach"
    pieces = {}
    for p in filter(None, variant.split(",")):
        k, _, v = p.partition("=")
        pieces[k] = v or True
    return pieces


def run(name: str, seed: int, variant: str) -> tuple[float, float, float]:
    """(NLL gap on the shared box, on ebmlab's box of the points it trained on, CPU seconds)."""
    train, test = data(name)
    cpu0 = time.process_time()
    if variant.startswith(("ebmlab.train", "ebmlab.raw")):
        # ebmlab.train[:OBJ] is the benchmark's call; ebmlab.raw[:OBJ] the same call with the peers' raw MLP
        # (make_net(seed), no standardisation) passed as the user's network: ebmlab's trainer, data split and
        # preset for OBJ (default dsm), only the network's input differs
        kind, _, objective = variant.partition(":")
        net = "auto" if kind == "ebmlab.train" else make_net(seed)
        r = ebmlab.train(net, train.numpy(), None, steps=STEPS, seed=seed, objective=objective or "dsm",
                         progress=False, threads=None)
        f = r.model.log_density
        own = r.model.bounds.double() if r.model.bounds is not None else ebmlab_box(train)
        # ebmlab's f is -inf outside its box: on the (larger) shared box that mass is simply absent
    elif variant == "peer":
        from peers import objective_runners
        f, _, _ = objective_runners.train("ebmkit", "dsm", train, STEPS, seed, BATCH, LR, LR_MIN, SIGMA, 1)
        own = ebmlab_box(train)
    else:
        f, used = plain(train, seed, parse(variant))
        own = ebmlab_box(used)
    cpu = time.process_time() - cpu0
    true = true_nll(name, test)
    return exact_nll(f, test, shared_box(train)) - true, exact_nll(f, test, own) - true, cpu


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
                a, b, cpu = run(name, seed, variant)
                shared.append(a)
                own.append(b)
                print(f"{name:16s} {variant:40s} seed {seed}  shared-box {a:+.6f}  ebmlab-box {b:+.6f}  "
                      f"({cpu:.0f} CPU-s)", flush=True)
            print(f"{name:16s} {variant:40s} MEDIAN shared-box {median(shared):+.4f}  ebmlab-box {median(own):+.4f}  "
                  f"[{' '.join(f'{v:.3f}' for v in shared)} | {' '.join(f'{v:.3f}' for v in own)}]", flush=True)


if __name__ == "__main__":
    main()
