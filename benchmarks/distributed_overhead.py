"""Where a 2-process training step's time goes (issue 13's DDP overhead probe).

The throughput table (benchmarks/distributed_speed.py) compares whole runs; this probe times the
phases of each training step inside each process, for

    ddp      2 processes x 1 thread at global batch B (the real ``--nproc 2`` path: torch's elastic
             launcher, gloo, DistributedDataParallel, the per-step agreement all-reduce)
    control  2 independent single processes x 1 thread at batch B/2, side by side (no group, nothing
             shared): the same arithmetic per process with communication free

so that the DDP overhead is ``ddp ms/step - control ms/step``, split into phases. Each configuration
runs in interleaved rounds; a phase's number is the per-step median over the timed steps (the mean
hides nothing here: it is given too in the JSON), and "slower rank" takes the larger of the two
processes per phase. Wall and CPU (this thread's CPU time) are both kept: wall minus CPU in a phase
is time the process was waiting (for the other rank, or for a core the machine gave to someone else).

Phases (the trainer's own methods, wrapped by name by this script — a profiler of the trainer's
internals, the one benchmark that must touch them; no code of the trainer changes):
  data       ``Trainer._next_batch`` (the permutation slice, gather, uint8 -> float)
  sampling   ``Trainer._negatives`` (the K Langevin steps of the chains)
  forward    the loss pass: ``DistributedDataParallel.forward`` with several processes (its
             pre-forward work, e.g. buffer broadcast, included), ``objective.loss`` otherwise
  backward   ``loss.backward()``: DDP's bucketed gradient all-reduce runs inside it and is waited
             for at its end
  optimizer  ``Adam.step``
  agree      ``Trainer._agree``: the per-step all-reduce of (diverged, Ctrl-C) flags
  other      the rest of the step (grad norm, guard quantities, metric sums, loop)

Run:  /work/main/.venv/bin/python benchmarks/distributed_overhead.py [--batch 128] [--rounds 3]
      [--variant NAME ...]   (variants: env settings applied to the ddp runs, see VARIANTS)
Writes JSON per run under --keep DIR if given; prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PHASES = ("data", "sampling", "forward", "backward", "optimizer", "agree", "other", "step")
# probe-only settings (env for the workers), to test a hypothesis without changing the trainer
VARIANTS: dict[str, dict[str, str]] = {
    "as-is": {},
    "spin": {"PROBE_SPIN": "1"},                     # wait for the collectives by polling, not sleeping
    "pinned": {"EBMLAB_PIN_CORES": "1"},             # rank r bound to core r (training.distributed.pin_to_core)
    "unpinned": {"EBMLAB_PIN_CORES": "0"},           # ranks free to move between cores (the default)
    "no-agree": {"PROBE_NO_AGREE": "1"},             # skip the per-step agreement (measurement only)
    "no-ddp": {"PROBE_NO_DDP": "1"},                 # no gradient all-reduce (ranks train apart; measurement only)
    "no-sync": {"PROBE_NO_DDP": "1", "PROBE_NO_AGREE": "1"},   # launched as a group, never synchronised
}


# ---------------------------------------------------------------------------- worker side
class _Clock:
    """Per-step phase times (wall and this thread's CPU), filled by the wrappers below."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []
        self.cur: dict[str, float] = {}

    def wrap(self, owner: object, name: str, phase: str) -> None:
        original = getattr(owner, name)
        clock = self

        def timed(*args, **kwargs):
            w, c = time.perf_counter(), time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                clock.cur[phase] = clock.cur.get(phase, 0.0) + time.perf_counter() - w
                clock.cur[phase + "_cpu"] = clock.cur.get(phase + "_cpu", 0.0) + time.thread_time() - c

        setattr(owner, name, timed)


def _wait_polling(work) -> None:
    """Wait for an async collective by polling it (yielding the core to this rank's gloo threads
    between polls) instead of sleeping on it: the thread never leaves its core idle."""
    while not work.is_completed():
        os.sched_yield()
    work.wait()                       # re-raises a failed collective's error


def _spin_waits(trainer) -> None:
    """Probe-only: the gradient all-reduce (a DDP comm hook doing what DDP's default does: divide
    by the world size, sum) and the agreement all-reduce both waited for by polling."""
    import torch
    import torch.distributed as dist
    from ebmlab.training import distributed

    def hook(state, bucket):
        t = bucket.buffer()
        t.div_(dist.get_world_size())
        _wait_polling(dist.all_reduce(t, async_op=True))
        fut = torch.futures.Future()
        fut.set_result(t)
        return fut

    trainer._ddp.register_comm_hook(None, hook)

    def any_polling(self, flags, device):
        t = torch.tensor([float(f) for f in flags])
        _wait_polling(dist.all_reduce(t, op=dist.ReduceOp.MAX, async_op=True))
        return [bool(v) for v in t.tolist()]

    setattr(distributed.Group, "any", any_polling)


def worker(args: argparse.Namespace) -> None:
    import torch
    torch.set_num_threads(1)                          # what ``ebmlab train --threads 1`` does
    rank = int(os.environ.get("RANK", "0"))
    from torch.nn.parallel import DistributedDataParallel as DDP

    from ebmlab.training import objectives, trainer as trainer_mod
    from ebmlab.training.api import release_run, start_run
    from ebmlab.training import distributed

    clock = _Clock()
    clock.wrap(trainer_mod.Trainer, "_next_batch", "data")
    clock.wrap(trainer_mod.Trainer, "_negatives", "sampling")
    clock.wrap(DDP, "forward", "forward")
    for cls in vars(objectives).values():
        if isinstance(cls, type) and "loss" in vars(cls):
            clock.wrap(cls, "loss", "loss")
    clock.wrap(torch.Tensor, "backward", "backward")
    clock.wrap(torch.optim.Adam, "step", "optimizer")
    if os.environ.get("PROBE_NO_AGREE"):
        setattr(trainer_mod.Trainer, "_agree", lambda self, err: err)
    clock.wrap(trainer_mod.Trainer, "_agree", "agree")
    clock.wrap(trainer_mod.Trainer, "train_step", "train_step")

    settings = dict(preset="short-run", mcmc_steps=args.mcmc_steps, batch_size=args.batch,
                    steps=args.warm + args.timed, log_every=10**6, checkpoint_every=10**6, plot_every=10**6,
                    seed=args.seed)
    trainer, _ = start_run(args.data, args.out, True, [], **settings)
    if os.environ.get("PROBE_NO_DDP"):
        trainer._ddp = None
    if os.environ.get("PROBE_SPIN") and trainer._ddp is not None:
        _spin_waits(trainer)
    # step boundaries: wrap train_step's caller loop by timing between successive train_step starts
    marks: list[float] = []
    cpu_marks: list[float] = []
    proc_marks: list[float] = []      # the whole process: gloo's and DDP's threads included
    sched_marks: list[tuple[float, float]] = []
    inner = trainer_mod.Trainer.train_step

    stat = Path(f"/proc/self/task/{threading.get_native_id()}/schedstat")

    def sched() -> tuple[float, float]:
        """(seconds on a core, seconds runnable but waiting for a core) of this thread, from the kernel."""
        try:
            on, wait = stat.read_text().split()[:2]
            return int(on) / 1e9, int(wait) / 1e9
        except (OSError, ValueError):
            return float("nan"), float("nan")

    def marked(self):
        sched_marks.append(sched())
        marks.append(time.perf_counter())
        cpu_marks.append(time.thread_time())
        proc_marks.append(time.process_time())
        if clock.cur:
            clock.rows.append(clock.cur)
        clock.cur = {}
        return inner(self)

    trainer_mod.Trainer.train_step = marked
    c0, w0 = time.process_time(), time.perf_counter()
    try:
        trainer.fit()
    finally:
        release_run(trainer)
    sched_marks.append(sched())
    marks.append(time.perf_counter())
    cpu_marks.append(time.thread_time())
    proc_marks.append(time.process_time())
    clock.rows.append(clock.cur)
    rows = []
    for i, r in enumerate(clock.rows):
        r = dict(r)
        r["step"] = marks[i + 1] - marks[i]
        r["step_cpu"] = cpu_marks[i + 1] - cpu_marks[i]
        r["process_cpu"] = proc_marks[i + 1] - proc_marks[i]
        # wall = on a core + waiting for a core (the machine's other load) + blocked (waiting for the peer)
        r["runqueue"] = sched_marks[i + 1][1] - sched_marks[i][1]
        r["blocked"] = r["step"] - (sched_marks[i + 1][0] - sched_marks[i][0]) - r["runqueue"]
        r["t_end"] = marks[i + 1]
        if "forward" not in r:                        # a single process: the loss pass is objective.loss
            r["forward"], r["forward_cpu"] = r.get("loss", 0.0), r.get("loss_cpu", 0.0)
        known = sum(r.get(p, 0.0) for p in PHASES[:-2])
        known_cpu = sum(r.get(p + "_cpu", 0.0) for p in PHASES[:-2])
        r["other"], r["other_cpu"] = r["step"] - known, r["step_cpu"] - known_cpu
        rows.append(r)
    rows = rows[args.warm:]
    out = Path(args.json_out) / f"rank{rank}.json"
    out.write_text(json.dumps({"rows": rows, "synchronised": "WORLD_SIZE" in os.environ, "process_cpu": time.process_time() - c0,
                               "wall": time.perf_counter() - w0}))
    distributed.shutdown()


# ---------------------------------------------------------------------------- launcher side
def _worker_cmd(args: argparse.Namespace, data: Path, out: Path, json_out: Path, batch: int, seed: int) -> list[str]:
    return [str(Path(__file__).resolve()), "--worker", "--data", str(data), "--out", str(out), "--json-out",
            str(json_out), "--batch", str(batch), "--mcmc-steps", str(args.mcmc_steps), "--warm", str(args.warm),
            "--timed", str(args.timed), "--seed", str(seed)]


def _env(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **extra, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}


def run_ddp(args: argparse.Namespace, data: Path, work: Path, variant: str) -> list[dict]:
    """2 processes through torch's elastic launcher, as ``ebmlab train --nproc 2`` starts them."""
    json_out = work / f"json-{variant}"
    json_out.mkdir(exist_ok=True)
    launcher = ("import sys, uuid\n"
                "from torch.distributed.launcher.api import LaunchConfig, elastic_launch\n"
                "c = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=2, run_id=str(uuid.uuid4()),\n"
                "    rdzv_backend='c10d', rdzv_endpoint='localhost:0', max_restarts=0, monitor_interval=0.1)\n"
                "elastic_launch(c, sys.executable)(*sys.argv[1:])\n")
    cmd = [sys.executable, "-c", launcher, *_worker_cmd(args, data, work / "ddp", json_out, args.batch, 0)]
    subprocess.run(cmd, check=True, env=_env(VARIANTS[variant]), cwd=ROOT, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return [json.loads((json_out / f"rank{r}.json").read_text()) for r in range(2)]


def run_control(args: argparse.Namespace, data: Path, work: Path) -> list[dict]:
    """2 independent single processes at batch B/2, started together.

    Each in a session of its own, as torch's launcher starts its workers: Linux's autogroup
    scheduling shares the cores between sessions first, so a shared session would give the two
    control processes one share between them on a loaded machine and the ddp workers two."""
    outs = []
    procs = []
    for i in range(2):
        j = work / f"json-control{i}"
        j.mkdir(exist_ok=True)
        outs.append(j)
        procs.append(subprocess.Popen([sys.executable, *_worker_cmd(args, data, work / f"c{i}", j, args.batch // 2, i)],
                                      env=_env({}), cwd=ROOT, stdout=subprocess.DEVNULL,
                                      start_new_session=True))
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("distributed_overhead: a control run failed")
    return [json.loads((j / "rank0.json").read_text()) for j in outs]


def lockstep(runs: list[list[dict]]) -> dict[str, float]:
    """The kernel's view of each step (ms, mean over steps, median over rounds).

    work: the thread's time on a core (the slower process per step); runqueue: runnable but
    waiting for a core (the machine's other load); blocked: neither — waiting for the peer. For a
    synchronised pair the LATER process of a step still blocks for the collective itself, so the
    per-step minimum of the two blocked times is the synchronisation's own cost, free of
    imbalance and of the machine's load; ``quiet`` = work + that minimum estimates the step on an
    otherwise idle machine (for the control, whose processes never block: work)."""
    out: dict[str, list[float]] = {k: [] for k in ("wall", "work", "runqueue", "blocked_max", "blocked_min", "quiet")}
    for ranks in runs:
        rows = [rk["rows"] for rk in ranks]
        n = min(len(r) for r in rows)
        def mean(f):
            return 1000 * statistics.fmean(f(i) for i in range(n))
        work = lambda i: max(r[i]["step"] - r[i]["runqueue"] - r[i]["blocked"] for r in rows)
        out["wall"].append(mean(lambda i: max(r[i]["step"] for r in rows)))
        if ranks[0].get("synchronised", True):
            out["work"].append(mean(work))
        else:      # independent processes: their steps do not line up; the slower one's mean
            out["work"].append(1000 * max(statistics.fmean(x["step"] - x["runqueue"] - x["blocked"] for x in r[:n])
                                          for r in rows))
        out["runqueue"].append(mean(lambda i: max(r[i]["runqueue"] for r in rows)))
        out["blocked_max"].append(mean(lambda i: max(r[i]["blocked"] for r in rows)))
        out["blocked_min"].append(mean(lambda i: min(r[i]["blocked"] for r in rows)))
        out["quiet"].append(out["work"][-1] + out["blocked_min"][-1])
    return {k: statistics.median(v) for k, v in out.items()}


def summarise(runs: list[list[dict]]) -> dict[str, float]:
    """Per phase: per round, the slower process's median ms/step; then the median over rounds."""
    keys = [*PHASES, "loss", "process_cpu", *(p + "_cpu" for p in (*PHASES, "loss"))]
    per_round = {k: [] for k in keys}
    for ranks in runs:
        for k in keys:
            per_round[k].append(max(statistics.median(r.get(k, 0.0) for r in rank["rows"]) for rank in ranks))
    out = {k: 1000 * statistics.median(v) for k, v in per_round.items()}
    # ms/step of the whole run: the slower process's mean step (what throughput sees)
    out["mean_step"] = 1000 * statistics.median(
        max(statistics.fmean(r["step"] for r in rank["rows"]) for rank in ranks) for ranks in runs)
    out.update({"ls_" + k: v for k, v in lockstep(runs).items()})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data"), ap.add_argument("--out"), ap.add_argument("--json-out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--mcmc-steps", type=int, default=15)
    ap.add_argument("--warm", type=int, default=10)
    ap.add_argument("--timed", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--variant", nargs="*", default=["as-is"], choices=sorted(VARIANTS))
    ap.add_argument("--keep", default=None, help="a folder to keep the per-run JSON in")
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    from benchmarks.distributed_speed import make_blobs
    labels = ["control", *args.variant]
    results: dict[str, list] = {k: [] for k in labels}
    with tempfile.TemporaryDirectory(prefix="ebmlab-ddp-overhead-") as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        data = work / "blobs.npy"
        make_blobs(data)
        for r in range(args.rounds):
            order = labels[r % len(labels):] + labels[:r % len(labels)]
            for label in order:
                runs = run_control(args, data, work) if label == "control" else run_ddp(args, data, work, label)
                results[label].append(runs)
                s = max(statistics.fmean(x["step"] for x in rk["rows"]) for rk in runs)
                print(f"round {r + 1} {label}: {1000 * s:.1f} ms/step (load {os.getloadavg()[0]:.2f})", flush=True)
    summ = {k: summarise(v) for k, v in results.items()}
    head = "| configuration | " + " | ".join(PHASES) + " | of forward: the loss | process CPU | mean step |"
    lines = [head, "|" + "---|" * (len(PHASES) + 4)]
    for k, s in summ.items():
        cells = " | ".join(f"{s[p]:.1f} ({s[p + '_cpu']:.1f})" for p in (*PHASES, "loss"))
        lines.append(f"| {k} | {cells} | {s['process_cpu']:.1f} | {s['mean_step']:.1f} |")
    lines += ["", "| configuration | wall | work (on a core) | waiting for a core | blocked, later rank "
              "(the collective itself) | blocked, earlier rank | quiet-machine estimate: work + the collective |",
              "|---|---|---|---|---|---|---|"]
    for k, s in summ.items():
        lines.append(f"| {k} | {s['ls_wall']:.1f} | {s['ls_work']:.1f} | {s['ls_runqueue']:.1f} | "
                     f"{s['ls_blocked_min']:.1f} | {s['ls_blocked_max']:.1f} | {s['ls_quiet']:.1f} |")
    print(f"batch {args.batch}, K = {args.mcmc_steps}, {args.timed} timed steps after {args.warm}, "
          f"{args.rounds} round(s); ms/step median of the slower process: wall (this thread's CPU)")
    print("\n".join(lines))
    if args.keep:
        (Path(args.keep) / "summary.json").write_text(json.dumps(summ, indent=1))


if __name__ == "__main__":
    main()
