"""Training time per step: ebmlab.train vs a hand-written floor vs ebmkit's and torchebm's own losses (2-D).

Every implementation trains on the same 2-D set (moons, 20 000 points as in density2d.py), with the
same batch size, Adam learning rate and cosine schedule as ebmlab's 2-D recipe for that objective,
on one torch thread:

  * ebmlab: ``ebmlab.train("auto", x, objective=...)`` with everything it always does (divergence
    guard, metrics rows, the data order it checkpoints); only its training loop is timed (a callback's
    ``on_train_start`` to ``on_train_end``: the NCE noise fit and the run's setup are left out, as the peers'
    setup is);
  * floor: the same model object ebmlab trains (its standardisation, 3x128 SiLU MLP and support-box mask),
    the same loss and sampler written as a plain loop (no guard, no stats, no metrics): what ebmlab's loop
    would cost with no bookkeeping at all;
  * ebmkit / torchebm: the peer's own loss object on the bare 3x128 MLP in the plain loop of
    ``peers/objective_runners.py`` (what benchmarks/objectives2d.py trains); torchebm has no NCE and no
    peer has this CD recipe (MH with uniform jumps over the box), so cd has the floor alone. For ssm the
    peers take one random direction per point and ebmlab's 2-D recipe two orthogonal ones (twice the
    network passes), so ssm's ratio to the peers is not a like-for-like one; its ratio to the floor is.

Runs take turns inside one invocation (order rotated each round) so machine load hits them alike; a
ratio is the median of the per-round ratios. ebmlab runs in a worker process per source tree: with
``--baseline-src DIR`` a second worker imports ebmlab from DIR (e.g. /work/main/src) and the table gets
the ratio of this tree to that one, and whether both trained bit-identical weights.

Run:  /work/main/.venv-bench/bin/python benchmarks/training_speed.py [--quick] [--baseline-src /work/main/src]
Writes benchmarks/results/training_speed.md (training_speed_quick.md with --quick).
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch.nn import functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ebmlab  # noqa: E402
from ebmlab.training.score_matching import orthogonal_directions  # noqa: E402

from density2d import data  # noqa: E402

SET = "moons"
OBJECTIVES = ("dsm", "ssm", "nce", "cd")
PEERS = {"dsm": ("ebmkit", "torchebm"), "ssm": ("ebmkit", "torchebm"), "nce": ("ebmkit",), "cd": ()}


# ----------------------------------------------------------------------------- ebmlab (in a worker)
class LoopClock:
    """A trainer callback: the wall time of the training loop alone."""

    def on_train_start(self, trainer: Any) -> None:
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def on_train_end(self, trainer: Any, result: Any) -> None:
        self.seconds, self.cpu = time.perf_counter() - self.t0, time.process_time() - self.c0


def state_hash(module: torch.nn.Module) -> str:
    """sha256 of a module's state_dict tensors (names and bytes): equal hashes, bit-identical weights."""
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def run_ebmlab(objective: str, steps: int, seed: int) -> dict:
    """One ebmlab.train run: {"seconds": its loop's wall time, "hash": its final weights' hash}."""
    x = data(SET)[0].numpy()
    clock = LoopClock()
    run = ebmlab.train("auto", x, None, steps=steps, seed=seed, objective=objective, progress=False,
                       threads=None, callbacks=[clock])
    return {"seconds": clock.seconds, "cpu": clock.cpu, "hash": state_hash(run.model)}


def worker() -> None:
    """``--worker``: read one JSON request per line ({"objective", "steps", "seed"}), answer one JSON line."""
    torch.set_num_threads(1)
    print(json.dumps({"ready": True, "ebmlab": ebmlab.__version__, "file": ebmlab.__file__}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        print(json.dumps(run_ebmlab(req["objective"], req["steps"], req["seed"])), flush=True)


class Worker:
    """This script in ``--worker`` mode with ebmlab imported from ``src`` (PYTHONPATH)."""

    def __init__(self, src: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info = json.loads(self.proc.stdout.readline())

    def __call__(self, objective: str, steps: int, seed: int) -> dict:
        self.proc.stdin.write(json.dumps({"objective": objective, "steps": steps, "seed": seed}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the ebmlab worker ({self.info['file']}) died")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


# ----------------------------------------------------------------------------- the floor (in this process)
class Grab:
    """A trainer callback that keeps, at the start of training, what the floor reuses: the model with its
    initial weights, the run's config and the objective (NCE: its fitted noise)."""

    def on_train_start(self, trainer: Any) -> None:
        self.model = copy.deepcopy(trainer.model)
        self.config = trainer.config
        self.objective = trainer.objective


def floor_setup(objective: str, seed: int) -> Grab:
    grab = Grab()
    ebmlab.train("auto", data(SET)[0].numpy(), None, steps=1, seed=seed, objective=objective, progress=False,
                 threads=None, callbacks=[grab])
    return grab


def cosine(c: Any) -> Callable[[int], float]:
    """ebmlab's cosine schedule to lr_min_factor (no warm-up in the 2-D recipes)."""
    return lambda s: c.lr_min_factor + (1 - c.lr_min_factor) * 0.5 * (1 + math.cos(math.pi * min(s, c.steps) / c.steps))


def floor_run(grab: Grab, objective: str, steps: int, seed: int) -> dict:
    """The plain loop on ebmlab's own model: same loss and sampler, nothing else. Returns {"seconds"}."""
    model = copy.deepcopy(grab.model)
    c = grab.config.replace(steps=steps)
    params = list(model.parameters())
    log_z = torch.nn.Parameter(torch.zeros(())) if objective == "nce" else None
    opt = torch.optim.Adam(params + ([log_z] if log_z is not None else []), lr=c.lr,
                           betas=(c.adam_beta1, c.adam_beta2), foreach=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine(c))
    x_train = data(SET)[0]
    n, b = x_train.shape[0], c.batch_size
    g = torch.Generator().manual_seed(seed)
    f = model.log_density
    box = model.bounds
    lo, width = box[:, 0], box[:, 1] - box[:, 0]
    if objective == "cd":
        local = c.step_size * float(width.mean())
        buffer = x_train[torch.randint(n, (c.buffer_size,), generator=g)].clone()
    perm, pos = torch.randperm(n, generator=g), 0
    t0, c0 = time.perf_counter(), time.process_time()
    for step in range(steps):
        if pos + b > n:
            perm, pos = torch.randperm(n, generator=g), 0
        x = x_train[perm[pos:pos + b]]
        pos += b
        if objective == "dsm":
            sigma = c.dsm_sigmas[0]
            eps = torch.randn(x.shape, generator=g)
            if c.dsm_antithetic:               # the 2-D recipe since 0.16: each point's noise as the pair +eps, -eps
                x, eps = torch.cat([x, x]), torch.cat([eps, -eps])
            xt = (x + sigma * eps).requires_grad_(True)
            (s,) = torch.autograd.grad(f(xt).sum(), xt, create_graph=True)
            loss = 0.5 * (sigma * s + eps).pow(2).sum(1).mean()
        elif objective == "ssm":
            x = x + c.data_noise * torch.randn(x.shape, generator=g)
            lam = c.sm_uniform * (sched.get_last_lr()[0] / c.lr if c.sm_uniform_schedule == "lr" else 1.0)
            flat = lo + width * torch.rand(x.shape, generator=g)
            x = torch.where((torch.rand(b, generator=g) < lam)[:, None], flat, x)
            m = c.ssm_projections                  # the 2-D recipe: 2 orthogonal directions per point
            v = (orthogonal_directions(m, x.shape, g) if c.ssm_directions == "orthogonal"
                 else torch.randn((m, *x.shape), generator=g)).reshape(m * b, -1)
            xr = x.repeat(m, 1).requires_grad_(True)
            (s,) = torch.autograd.grad(f(xr).sum(), xr, create_graph=True)
            (hv,) = torch.autograd.grad((s * v).sum(), xr, create_graph=True)
            loss = ((hv * v).sum(1) + 0.5 * s.pow(2).sum(1)).mean()
        elif objective == "nce":
            noise, ratio = grab.objective.noise, c.nce_ratio
            y = noise.sample(ratio * b, g)
            g_data = f(x) - log_z - noise.log_prob(x) - math.log(ratio)
            g_noise = f(y) - log_z - noise.log_prob(y) - math.log(ratio)
            loss = -(F.logsigmoid(g_data).mean() + ratio * F.logsigmoid(-g_noise).mean())
        else:                                   # cd: persistent MH chains with uniform jumps over the box
            idx = torch.randint(c.buffer_size, (b,), generator=g)
            fresh = x_train[torch.randint(n, (b,), generator=g)]
            xc = torch.where((torch.rand(b, generator=g) < c.reinit_prob)[:, None], fresh, buffer[idx])
            for p in params:
                p.requires_grad_(False)
            with torch.no_grad():
                fx = f(xc)
                for _ in range(c.mcmc_steps):
                    jump = torch.rand(b, generator=g) < c.jump_prob
                    u = torch.rand(xc.shape, generator=g)
                    prop = torch.where(jump[:, None], lo + width * u, xc + local * torch.randn(xc.shape, generator=g))
                    fp = f(prop)                       # -inf outside the box: never accepted
                    la = torch.where(torch.isfinite(fp), fp - fx, torch.full_like(fp, -math.inf))
                    acc = (la >= 0) | (torch.rand(b, generator=g) < la.exp())
                    xc, fx = torch.where(acc[:, None], prop, xc), torch.where(acc, fp, fx)
            for p in params:
                p.requires_grad_(True)
            buffer[idx] = xc
            loss = f(xc).mean() - f(x).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0}


# ----------------------------------------------------------------------------- peers (in this process)
def peer_run(peer: str, objective: str, steps: int, seed: int) -> dict:
    """The loop of ``peers/objective_runners.train`` (the peer's loss object on the bare MLP), timed alone."""
    from objectives2d import recipe
    from peers import make_net
    from peers.objective_runners import make_loss
    r = recipe(objective)
    x_train = data(SET)[0]
    net = make_net(seed, r["features"])
    torch.manual_seed(seed)
    loss_fn, extra = make_loss(peer, objective, net, x_train, r["sigma"], r["ratio"])
    opt = torch.optim.Adam([*net.parameters(), *extra], lr=r["lr"])
    m = r["lr_min_factor"]
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: m + (1 - m) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    n = x_train.shape[0]
    g = torch.Generator().manual_seed(seed)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        x = x_train[torch.randint(n, (r["batch_size"],), generator=g)]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(x)
        loss.backward()
        opt.step()
        sched.step()
    return {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0}


# ----------------------------------------------------------------------------- where ebmlab's step goes
def profile(objectives: list[str], steps: int, top: int = 14) -> str:
    """cProfile of ``ebmlab.train`` (this tree) for ``steps`` steps of each objective: the functions with the most
    own time, as markdown. cProfile inflates Python's share; read it for where, not for how much."""
    import cProfile
    import io
    import pstats
    x = data(SET)[0].numpy()
    parts = []
    for obj in objectives:
        ebmlab.train("auto", x, None, steps=5, seed=0, objective=obj, progress=False, threads=None)    # warm-up
        clock = LoopClock()
        pr = cProfile.Profile()
        pr.enable()
        ebmlab.train("auto", x, None, steps=steps, seed=0, objective=obj, progress=False, threads=None,
                     callbacks=[clock])
        pr.disable()
        st = pstats.Stats(pr, stream=io.StringIO())
        rows = sorted(st.stats.items(), key=lambda kv: -kv[1][2])[:top]     # by own (total internal) time
        loop = clock.seconds
        parts += [f"### {obj}: {steps} steps, training loop {loop:.2f} s under the profiler", "",
                  "| function | calls | own s | own % of loop | cumulative s |", "|---|---:|---:|---:|---:|"]
        for (file, line, fn), (cc, nc, tt, ct, _) in rows:
            where = fn if file == "~" else f"{Path(file).name}:{line}({fn})"
            parts.append(f"| `{where}` | {nc} | {tt:.3f} | {100 * tt / loop:.1f} | {ct:.3f} |")
        parts.append("")
    return "\n".join(parts)


# ----------------------------------------------------------------------------- the benchmark
def bench(objective: str, impls: dict[str, Callable[[int, int], dict]], steps: int, rounds: int) -> dict:
    """Interleaved rounds; returns {name: [per-round result dicts]}."""
    for run in impls.values():            # warm-up: allocator, lazy imports, first-call paths
        run(5, 0)
    out: dict[str, list[dict]] = {k: [] for k in impls}
    names = list(impls)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            res = impls[name](steps, r)
            res["ms"], res["wall_ms"] = res["cpu"] / steps * 1e3, res["seconds"] / steps * 1e3
            out[name].append(res)
        print(f"  {objective} round {r + 1}/{rounds} (CPU ms/step): "
              + ", ".join(f"{k} {out[k][-1]['ms']:.2f}" for k in names), flush=True)
    return out


def ratio(a: list[dict], b: list[dict], key: str = "ms") -> float:
    return statistics.median(x[key] / y[key] for x, y in zip(a, b))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="30 steps a run, 2 rounds (a smoke run, ~2 minutes)")
    ap.add_argument("--steps", type=int, default=None, help="optimiser steps per timed run (default 300)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 7)")
    ap.add_argument("--objectives", default=",".join(OBJECTIVES), help=f"comma list of {', '.join(OBJECTIVES)}")
    ap.add_argument("--baseline-src", default=None,
                    help="another ebmlab source tree (its src/ folder, e.g. /work/main/src) to time against this one")
    ap.add_argument("--out", default=None)
    ap.add_argument("--profile", type=int, default=None, metavar="STEPS",
                    help="instead: cProfile ebmlab.train for STEPS steps of each objective (this tree), "
                         "written to results/training_speed_profile.md")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker()
        return 0
    steps = args.steps or (30 if args.quick else 300)
    rounds = args.rounds or (2 if args.quick else 7)
    objectives = [o.strip() for o in args.objectives.split(",") if o.strip()]
    for o in objectives:
        if o not in OBJECTIVES:
            ap.error(f"unknown objective {o!r}; choose from {', '.join(OBJECTIVES)}")
    torch.set_num_threads(1)
    here_src = Path(ebmlab.__file__).resolve().parents[1]
    cmd = " ".join(["python", "benchmarks/training_speed.py", *(shlex.quote(a) for a in
                                                              (argv if argv is not None else sys.argv[1:]))])
    if args.profile:
        from density2d import versions
        text = (f"# Where ebmlab.train's step goes (cProfile, 2-D {SET})\n\nCommand: `{cmd}`\n\n{versions()}; ebmlab "
                f"from `{here_src}`; one torch thread. Top functions by own time; `run_backward` and the `linear` / "
                "`silu` kernels are the model's math, the rest is per-step Python and small tensor ops.\n\n"
                + profile(objectives, args.profile))
        out = Path(args.out) if args.out else HERE / "results" / "training_speed_profile.md"
        out.write_text(text)
        print(text)
        return 0
    workers = {"ebmlab": Worker(here_src)}
    if args.baseline_src:
        workers["ebmlab @baseline"] = Worker(Path(args.baseline_src).resolve())
    results: dict[str, dict] = {}
    t_start = time.perf_counter()
    try:
        for obj in objectives:
            grab = floor_setup(obj, 0)
            impls: dict[str, Callable[[int, int], dict]] = {
                name: (lambda s, sd, w=w, o=obj: w(o, s, sd)) for name, w in workers.items()}
            impls["floor"] = lambda s, sd, o=obj: floor_run(grab, o, s, sd)
            for peer in PEERS[obj]:
                impls[peer] = lambda s, sd, p=peer, o=obj: peer_run(p, o, s, sd)
            results[obj] = bench(obj, impls, steps, rounds)
    finally:
        for w in workers.values():
            w.close()
    minutes = (time.perf_counter() - t_start) / 60

    lines = ["| objective | implementation | CPU ms / step | ebmlab ÷ it, CPU | wall ms / step | ebmlab ÷ it, wall |",
             "|---|---|---:|---:|---:|---:|"]
    same = []
    for obj, res in results.items():
        for name, runs in res.items():
            ms = statistics.median(r["ms"] for r in runs)
            wall = statistics.median(r["wall_ms"] for r in runs)
            cpu_r, wall_r = (("1", "1") if name == "ebmlab" else
                             (f"{ratio(res['ebmlab'], runs):.3f}", f"{ratio(res['ebmlab'], runs, 'wall_ms'):.3f}"))
            lines.append(f"| {obj} | {name} | {ms:.2f} | {cpu_r} | {wall:.2f} | {wall_r} |")
        if "ebmlab @baseline" in res:
            same.append(f"{obj}: " + ("identical" if all(a["hash"] == b["hash"] for a, b in
                                                        zip(res["ebmlab"], res["ebmlab @baseline"])) else "DIFFERENT"))
    table = "\n".join(lines)
    print(table)
    from density2d import versions
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("n/a",)
    head = [f"# Training time per step (2-D {SET}): ebmlab vs a plain-loop floor vs ebmkit / torchebm", "",
            f"Command: `{cmd}`", "",
            f"{versions()}; ebmlab imported from `{here_src}`"
            + (f", baseline ebmlab from `{Path(args.baseline_src).resolve()}`" if args.baseline_src else "")
            + f"; `torch.get_num_threads()` = {torch.get_num_threads()}; {platform.machine()}, "
              f"{os.cpu_count()} CPUs (shared with other jobs), load average at end "
              f"{tuple(round(v, 1) for v in load)}; {minutes:.1f} min in all.", "",
            f"{steps} optimiser steps per timed run, {rounds} interleaved rounds (order rotated each round, one "
            "warm-up run each first); ms / step is the median over rounds of the training loop's process CPU time "
            "(and wall time) / steps, setup not counted; CPU time is the headline, as other jobs share the CPUs and "
            "inflate wall times; a ratio is the median of per-round ratios of ebmlab's time to the row's (above 1: "
            "ebmlab slower). Batch, lr, schedule, σ and noise ratio are ebmlab's 2-D recipe for the objective, for every row."]
    if same:
        head += ["", "Final weights of ebmlab vs the baseline tree, same seed and steps, every round: " + "; ".join(same) + "."]
    text = "\n".join(head) + "\n\n" + table + "\n"
    out = Path(args.out) if args.out else HERE / "results" / ("training_speed_quick.md" if args.quick else "training_speed.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
