"""Langevin time per step: ebmlab vs a hand-written autograd loop vs ebmkit vs torchebm.

All implementations do the same math on the same network, from the same start:
    x <- x + ε ∇f(x) + sqrt(2ε) z           (f = log density; the peers take E = -f)
Peer knobs are set by each peer's OWN update rule (read from their source):
  * ebmkit  LangevinDynamics: x - ε ∇E + σ z, σ = ``noise_scale`` itself  -> noise_scale = sqrt(2ε)
  * torchebm LangevinDynamics (Euler–Maruyama): x - ε ∇E + sqrt(2 noise_scale²) sqrt(ε) z
                                                                         -> noise_scale = 1.0
Implementations take turns inside one process (interleaved rounds, order rotated each round) so
machine load hits them alike; the ratio to the hand loop is the median of per-round ratios.

Run:  /work/main/.venv-bench/bin/python benchmarks/sampler_speed.py [--quick]
Writes benchmarks/results/sampler_speed.md.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

import ebmlab
from ebmlab.nets.mlp import MLP

EPS = 0.01
NOISE = math.sqrt(2 * EPS)


def conv_net() -> nn.Module:
    """[B, 1, 8, 8] -> [B]: Conv(1,32,3)-SiLU-Conv(32,64,3)-SiLU-flatten-Linear."""
    class Conv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(1, 32, 3), nn.SiLU(), nn.Conv2d(32, 64, 3), nn.SiLU(),
                                      nn.Flatten(), nn.Linear(64 * 4 * 4, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x).squeeze(-1)
    return Conv()


# ---- the implementations: each maps (x0, n_steps, seed) -> x after n_steps ----

def hand_loop(f: Callable) -> Callable:
    def run(x0: torch.Tensor, n: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        x = x0
        for _ in range(n):
            xg = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(f(xg).sum(), xg)
            x = x.detach() + EPS * grad + NOISE * torch.randn(x.shape, generator=g)
        return x
    return run


def ebmlab_eager(f: Callable) -> Callable:
    def run(x0: torch.Tensor, n: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return ebmlab.sample(f, x0, method="langevin", n_steps=n, step_size=EPS, generator=g)
    return run


def ebmkit_impl(f: Callable) -> Callable | None:
    try:
        from ebm.samplers.langevin import LangevinDynamics
    except ImportError:
        return None
    energy = lambda x: -f(x)                                   # ebmkit: p ∝ exp(-E)
    sampler = LangevinDynamics(step_size=EPS, steps=1, noise_scale=NOISE)

    def run(x0: torch.Tensor, n: int, seed: int) -> torch.Tensor:
        torch.manual_seed(seed)                                 # ebmkit draws from the global RNG
        return sampler.sample(energy, x0, steps=n)
    return run


def torchebm_impl(net: nn.Module) -> Callable | None:
    try:
        from torchebm.core import BaseModel
        from torchebm.samplers import LangevinDynamics
    except ImportError:
        return None

    class Energy(BaseModel):                                    # torchebm: p ∝ exp(-E)
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return -self.inner(x)

    sampler = LangevinDynamics(Energy(net), step_size=EPS, noise_scale=1.0)

    def run(x0: torch.Tensor, n: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return sampler.sample(x=x0, n_steps=n, generator=g)
    return run


class Quadratic(nn.Module):
    """f(x) = -‖x - 3‖² / 2: a target whose Langevin moments are easy to compare."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -0.5 * ((x - 3.0) ** 2).sum(1)


def make_impls(net: nn.Module) -> dict[str, Callable]:
    f = lambda x: net(x)
    impls = {"hand loop": hand_loop(f), "ebmlab eager": ebmlab_eager(f)}
    for name, run in (("ebmkit", ebmkit_impl(f)), ("torchebm", torchebm_impl(net))):
        if run is not None:
            impls[name] = run
    return impls


def check_same_math() -> None:
    """Every implementation must give the hand loop's law on a known target (mean and variance
    after 20 steps, within 5 standard errors); a wrong sign or noise knob fails loudly."""
    x0 = torch.zeros(20000, 2)
    outs = {name: run(x0, 20, 1) for name, run in make_impls(Quadratic()).items()}
    ref = outs["hand loop"]
    n = x0.shape[0]
    for name, out in outs.items():
        se_mean = math.sqrt(2 * ref.var(0).max().item() / n)
        se_var = ref.var(0).max().item() * math.sqrt(2 * 2 / n)
        if (out.mean(0) - ref.mean(0)).abs().max() > 5 * se_mean or (out.var(0) - ref.var(0)).abs().max() > 5 * se_var:
            raise SystemExit(f"{name} does not do the same math as the hand loop: "
                             f"mean {out.mean(0).tolist()} var {out.var(0).tolist()} vs "
                             f"{ref.mean(0).tolist()} {ref.var(0).tolist()}")


def bench(label: str, net: nn.Module, x0: torch.Tensor, n_steps: int, rounds: int) -> list[tuple]:
    for p in net.parameters():
        p.requires_grad_(True)       # like a model mid-training: parameters require grad
    impls = make_impls(net)
    for run in impls.values():       # warm-up (allocator, lazy init)
        run(x0, 1, 0)
    times: dict[str, list[float]] = {k: [] for k in impls}
    names = list(impls)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]   # rotate who goes first
        for name in order:
            t = time.perf_counter()
            impls[name](x0, n_steps, r)
            times[name].append((time.perf_counter() - t) / n_steps)
    rows = []
    for name in names:
        ratios = [a / b for a, b in zip(times[name], times["hand loop"])]
        rows.append((label, name, statistics.median(times[name]) * 1e3, statistics.median(ratios)))
    for p in net.parameters():
        assert p.grad is None, f"{label}: a sampler left .grad on the parameters"
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="few steps and rounds (< 2 minutes)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1, as the ebmlab CLI; 2 threads on a shared 2-core box is noisy)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    # many short rounds: on a shared machine the median of paired per-round ratios is what holds up
    n_steps, rounds = (3, 5) if args.quick else (10, 15)
    probe_steps = 20 if args.quick else 50
    torch.manual_seed(0)
    check_same_math()
    rows = []
    rows += bench("MLP 3x256, 4096 chains x 2-D", MLP(2, 256, 3), torch.randn(4096, 2), n_steps, rounds)
    rows += bench("Conv net, 256 images 1x8x8", conv_net(), torch.rand(256, 1, 8, 8) * 2 - 1, n_steps, rounds)
    # a tiny net exposes the per-step Python overhead that the big ones hide
    rows += bench("tiny MLP 2x32, 64 chains (overhead probe)", MLP(2, 32, 2), torch.randn(64, 2), probe_steps, rounds)

    lines = ["| workload | implementation | median ms / step | ratio to hand loop |",
             "|---|---|---:|---:|"]
    lines += [f"| {w} | {n} | {ms:.2f} | {r:.3f} |" for w, n, ms, r in rows]
    table = "\n".join(lines)
    print(table)
    cmd = " ".join([Path(sys.executable).as_posix(), "benchmarks/sampler_speed.py", *sys.argv[1:]])
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("n/a",)
    text = (f"# Langevin sampler speed\n\nCommand: `{cmd}`\n\n"
            f"torch {torch.__version__}, `torch.get_num_threads()` = {torch.get_num_threads()}, "
            f"{platform.machine()}, load average at end {tuple(round(v, 1) for v in load)}; "
            f"{n_steps} steps per call ({probe_steps} for the probe), {rounds} interleaved rounds; ratio = median of per-round ratios.\n"
            f"Same math everywhere: x <- x + {EPS} ∇f + sqrt({2 * EPS}) z (ebmkit noise_scale = sqrt(2ε), "
            f"torchebm noise_scale = 1.0).\n\n{table}\n")
    # a quick run must not overwrite the full run's table
    out = Path(__file__).resolve().parent / "results" / ("sampler_speed_quick.md" if args.quick else "sampler_speed.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
