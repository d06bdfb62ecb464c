"""Training throughput: 1 process x 1 thread, 1 process x 2 threads, 2 processes x 1 thread (issue 13).

One short-run image EBM (Nijkamp et al. 2019's recipe, ``--preset short-run``, cut to K = 15
Langevin steps) on 2000 generated 16x16 single-channel images (Gaussian blobs of random centre and
width, from a seeded generator), at the SAME global batch in every configuration — 384 (a step of
~0.35 s on one core), 256 and 128 (where each rank's per-step fixed costs weigh more):

    ebmlab train --threads 1              (1 process x 1 thread)
    ebmlab train --threads 2              (1 process x 2 threads)
    ebmlab train --nproc 2 --threads 1    (2 processes x 1 thread each: every worker runs
                                           ``python -m ebmlab train ... --threads 1``, so each calls
                                           torch.set_num_threads(1))
    EBMLAB_PIN_CORES=1 ebmlab train --nproc 2 --threads 1   (the same, each rank bound to its own
                                           core: training.distributed.pin_to_core; off by default
                                           until this row shows it pays on an idle machine)
    EBMLAB_POLL_WAITS=0 ebmlab train --nproc 2 --threads 1  (the same, each rank waiting for the
                                           collectives asleep instead of polling, the default since
                                           0.10 when a machine's processes are no more than its cores:
                                           training.distributed.poll_waits_setting)

Only steady-state steps are timed: the ``seconds`` column of metrics.jsonl (wall time since the
trainer started, logged by rank 0 after the step's all-reduces) at the first logged step (the
warm-up) and at the last, so interpreter start, process launch, rendezvous, data loading and the
final plots are all outside the window. Checkpoints and plots are pushed past the end of the run.
The configurations take turns (interleaved rounds, order rotated each round) so machine load hits
them alike; the table gives per-configuration medians and the ratios of the medians.

Run:  /work/main/.venv/bin/python benchmarks/distributed_speed.py [--quick]
Writes benchmarks/results/distributed_speed.md (or distributed_speed_quick.md).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PINNED = "2 processes x 1 thread, pinned"
SLEEPING = "2 processes x 1 thread, sleeping waits"
CONFIGS = {                        # label -> extra train flags
    "1 process x 1 thread": ("--threads", "1"),
    "1 process x 2 threads": ("--threads", "2"),
    "2 processes x 1 thread": ("--nproc", "2", "--threads", "1"),
    # the same with each rank bound to its own core (EBMLAB_PIN_CORES=1, training.distributed.pin_to_core)
    PINNED: ("--nproc", "2", "--threads", "1"),
    # the same waiting for the collectives asleep (EBMLAB_POLL_WAITS=0; the default polls: training.distributed.wait)
    SLEEPING: ("--nproc", "2", "--threads", "1"),
}
ENV = {PINNED: {"EBMLAB_PIN_CORES": "1"}, SLEEPING: {"EBMLAB_POLL_WAITS": "0"}}     # label -> extra environment
# the control: two independent single-thread runs at batch B/2 side by side (no DDP, nothing shared):
# the best that 2 processes can do on this machine, with communication and synchronisation free
CEILING = "control: 2 independent runs x 1 thread at B/2"
BATCH, MCMC_STEPS, N_IMAGES, SIZE = 128, 15, 2000, 16


def make_blobs(path: Path, n: int = N_IMAGES, size: int = SIZE, seed: int = 0, channels: int = 1) -> None:
    """n smooth images [n, channels, size, size] uint8: one Gaussian blob each, a random colour per
    channel when channels > 1 (benchmarks/gpu_check.sh uses 64x64x3)."""
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    cx, cy = g.uniform(0.2 * size, 0.8 * size, (2, n, 1, 1))
    r = g.uniform(size / 8, size / 3, (n, 1, 1))
    img = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r ** 2))[:, None]        # [n, 1, size, size]
    colour = np.ones((n, 1, 1, 1)) if channels == 1 else g.uniform(0.2, 1.0, (n, channels, 1, 1))
    np.save(path, (img * colour * 255).round().astype(np.uint8))


def _train_cmd(data: Path, out: Path, flags: tuple, steps: int, log_every: int, batch: int,
               mcmc_steps: int) -> list[str]:
    return [sys.executable, "-m", "ebmlab", "train", "--data", str(data), "--out", str(out), "--force", "--quiet",
            "--preset", "short-run", "--mcmc-steps", str(mcmc_steps), "--batch-size", str(batch),
            "--steps", str(steps), "--log-every", str(log_every), "--checkpoint-every", str(10**6),
            "--plot-every", str(10**6), *flags]


def _window(out: Path, warm: int, timed: int) -> float:
    rows = {r["step"]: r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())}
    return rows[warm + timed]["seconds"] - rows[warm]["seconds"]


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, **(extra or {}),
            "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}


def one_run(data: Path, out: Path, flags: tuple, warm: int, timed: int, batch: int = BATCH,
            mcmc_steps: int = MCMC_STEPS, env: dict[str, str] | None = None) -> float:
    """Seconds of ``timed`` steady-state training steps (after ``warm`` steps), from metrics.jsonl.

    Every process starts in a session of its own, as torch's launcher starts its workers: Linux
    shares the cores between sessions first (autogroup scheduling), so on a loaded machine a
    process in this script's session would get less of them than a launched worker."""
    cmd = _train_cmd(data, out, flags, warm + timed, warm, batch, mcmc_steps)
    subprocess.run(cmd, check=True, env=_env(env), cwd=ROOT, stdout=subprocess.DEVNULL, start_new_session=True)
    return _window(out, warm, timed)


def side_by_side(data: Path, work: Path, warm: int, timed: int, batch: int) -> float:
    """The control: two independent 1-thread runs at batch/2 started together; the slower one's
    seconds for ``timed`` steps (the time two processes need for the global batch's work)."""
    outs = [work / "side0", work / "side1"]
    procs = [subprocess.Popen(_train_cmd(data, o, ("--threads", "1", "--seed", str(i)), warm + timed, warm,
                                         batch // 2, MCMC_STEPS), env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL,
                              start_new_session=True)
             for i, o in enumerate(outs)]
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("distributed_speed: a side-by-side control run failed")
    return max(_window(o, warm, timed) for o in outs)


def measure(data: Path, work: Path, batch: int, rounds: int, warm: int, timed: int) -> tuple[dict, list]:
    """{configuration: [seconds per step, one per round]} at global ``batch``, and the load averages."""
    labels = [*CONFIGS, CEILING]
    per_step: dict[str, list[float]] = {k: [] for k in labels}
    loads: list[float] = []
    for r in range(rounds):
        order = labels[r % len(labels):] + labels[:r % len(labels)]
        for label in order:
            loads.append(os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"))
            if label == CEILING:
                s = side_by_side(data, work, warm, timed, batch) / timed
            else:
                s = one_run(data, work / "run", CONFIGS[label], warm, timed, batch=batch, env=ENV.get(label)) / timed
            per_step[label].append(s)
            print(f"batch {batch} round {r + 1}/{rounds} {label}: {s * 1000:.1f} ms/step", flush=True)
    return per_step, loads


def table(batch: int, per_step: dict[str, list[float]]) -> tuple[str, float, float, float, float, dict[str, float]]:
    """The markdown table at one batch; the ratios of medians of 2 processes vs 1p x 1t and vs
    1p x 2t, the control's vs 1p x 1t, 2 processes' ms/step minus the control's (DDP's cost), and
    each variant's (pinned, sleeping waits) ratio vs 1p x 1t."""
    labels = [*CONFIGS, CEILING]
    med = {k: statistics.median(v) for k, v in per_step.items()}
    base, two_threads, ddp = med[labels[0]], med[labels[1]], med[labels[2]]
    rows = []
    for k in labels:
        runs = ", ".join(f"{1 / s:.2f}" for s in per_step[k])
        rows.append(f"| {batch} | {k} | {1 / med[k]:.2f} | {batch / med[k]:.0f} | {med[k] * 1000:.0f} | "
                    f"{base / med[k]:.2f}x | {runs} |")
    variants = {k: base / med[k] for k in (PINNED, SLEEPING)}
    return "\n".join(rows), base / ddp, two_threads / ddp, base / med[CEILING], ddp - med[CEILING], variants


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="batch 384 only, 1 round of 15 timed steps (a smoke run)")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--batches", default="384,256,128", help="comma list of global batches (default 384,256,128)")
    ap.add_argument("--out", default=None, help="the results file (default benchmarks/results/distributed_speed.md)")
    args = ap.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    warm, timed = (5, 15) if args.quick else (10, 40)
    batches = (384,) if args.quick else tuple(int(b) for b in args.batches.split(","))
    results, loads = {}, []
    with tempfile.TemporaryDirectory(prefix="ebmlab-ddp-speed-") as tmp:
        data = Path(tmp) / "blobs.npy"
        make_blobs(data)
        for b in batches:
            results[b], more = measure(data, Path(tmp), b, rounds, warm, timed)
            loads += more
    cmd = " ".join([Path(sys.executable).as_posix(), "benchmarks/distributed_speed.py", *sys.argv[1:]])
    body, verdicts = [], []
    for b in batches:
        rows, speedup, vs_threads, ceiling, cost, variants = table(b, results[b])
        body.append(rows)
        verdicts.append(f"- global batch {b}: 2 processes x 1 thread vs 1 process x 1 thread **{speedup:.2f}x** "
                        f"(target >= 1.7x: {'met' if speedup >= 1.7 else 'not met'}); vs 1 process x 2 threads "
                        f"**{vs_threads:.2f}x** (target > 1: {'met' if vs_threads > 1 else 'not met'}); the "
                        f"control (two independent runs at B/2, no DDP, nothing shared) reached {ceiling:.2f}x: what two "
                        f"processes gave on this machine in this run, with communication free; 2 processes' ms/step "
                        f"minus the control's: {cost * 1000:+.1f} ms; variants vs 1 process x 1 thread: "
                        + ", ".join(f"{k.split(', ')[1]} **{v:.2f}x**" for k, v in variants.items()))
    text = (
        f"# Training throughput: processes vs threads{' (quick run)' if args.quick else ''}\n\n"
        f"Command: `{cmd}`\n\n"
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, shared: 1-minute load "
        f"average before each run {min(loads):.1f} to {max(loads):.1f} (median {statistics.median(loads):.1f}; "
        f"it includes this benchmark's own previous run).\n\n"
        f"Workload: `ebmlab train --preset short-run --mcmc-steps {MCMC_STEPS} --batch-size B` (B = the global "
        f"batch; each of 2 processes takes B/2) on {N_IMAGES} generated {SIZE}x{SIZE}x1 images (seeded Gaussian "
        f"blobs), the default conv net. Timed: steps {warm}..{warm + timed} from metrics.jsonl's `seconds` "
        f"(start-up, launch and warm-up excluded); {rounds} interleaved round(s), medians; ratios are ratios of "
        f"the medians.\n\n"
        "| global batch | configuration | steps/s (median) | images/s | ms/step | vs 1p x 1t | steps/s per round |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(body) + "\n\n" + "\n".join(verdicts) + "\n"
    )
    out = (Path(args.out) if args.out
           else ROOT / "benchmarks" / "results" / f"distributed_speed{'_quick' if args.quick else ''}.md")
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
