"""Does keeping freed memory in the process (glibc mallopt) speed up ordinary eager runs?

``ebmlab.samplers.malloc.keep_freed_memory()`` raises glibc's trim and mmap thresholds so that memory
a step frees stays in the heap instead of going back to the kernel and faulting in again next step.
Session 9 turned it on for the compiled path only. This benchmark asks whether the command line should
turn it on for every run: each workload is run by two processes started together, one with glibc's
default malloc and one keeping freed memory, for several rounds (the pair shares whatever else the
machine is doing, so the ratio inside a round is what counts). Per arm: process CPU ms per step,
minor page faults per step and kernel CPU ms per step, over a timed call after a warm-up call.

Workloads (1 torch thread each):
  2d       ``ebmlab.train("auto", "eight-gaussians")`` — the 2-D default (MLP, persistent chains)
  digits   ``ebmlab.train("auto", "digits")`` — the digits preset (conv net, short-run chains)
  blobs16  ``ebmlab.train(..., preset="short-run", mcmc_steps=15, batch_size=256)`` on 2000 generated
           16x16 images — the training workload of distributed_speed.py
  sample   eager Langevin on the sampler-speed conv net, 256 chains of 1x8x8 (compile_speed.py's eager arm)

Run:  /work/main/.venv/bin/python benchmarks/malloc_speed.py [--quick] [--rounds 3] [--workloads 2d,digits,blobs16,sample]
Writes benchmarks/results/malloc_speed.md (``--quick``: one round, a tenth of the steps, malloc_speed_quick.md).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:            # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(ROOT))

WORKLOADS = {"2d": (600, "2-D default, eight-gaussians"), "digits": (150, "digits preset"),
             "blobs16": (40, "short-run, 16x16 images, batch 256, K = 15"),
             "sample": (200, "eager Langevin, conv net, 256 chains x 1x8x8")}


def _usage() -> tuple[float, float, float]:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return time.process_time(), u.ru_minflt, u.ru_stime


def arm(workload: str, keep: bool, steps: int) -> dict:
    """One process's measurement (run in a child: the malloc setting is process-wide)."""
    if keep:
        from ebmlab.samplers.malloc import keep_freed_memory
        if not keep_freed_memory():
            raise SystemExit("malloc_speed: keeping freed memory needs glibc (Linux)")
    import torch
    torch.set_num_threads(1)
    if workload == "sample":
        from benchmarks.sampler_speed import EPS, conv_net
        from ebmlab.samplers.registry import make_sampler
        from ebmlab.samplers.run import run_chains
        torch.manual_seed(0)
        sampler, x0 = make_sampler(conv_net(), "langevin", EPS), torch.rand(256, 1, 8, 8) * 2 - 1

        def go(n: int) -> None:
            run_chains(sampler, x0, n, torch.Generator().manual_seed(0))
    else:
        import ebmlab
        data, settings = {"2d": ("eight-gaussians", {}), "digits": ("digits", {})}.get(workload, (None, {}))
        if workload == "blobs16":
            from benchmarks.distributed_speed import make_blobs
            data = Path(os.environ.get("TMPDIR", "/tmp")) / f"malloc_speed_blobs16_{os.getpid()}.npy"
            make_blobs(data)
            settings = dict(preset="short-run", mcmc_steps=15, batch_size=256)

        def go(n: int) -> None:
            ebmlab.train("auto", str(data), steps=n, seed=0, progress=False, threads=1, **settings)
    go(max(steps // 10, 5))                        # warm-up: imports, lazy init, the allocator's first growth
    t0, f0, s0 = _usage()
    go(steps)
    t1, f1, s1 = _usage()
    if workload == "blobs16":
        data.unlink()
    return dict(ms=1e3 * (t1 - t0) / steps, faults=(f1 - f0) / steps, sys_ms=1e3 * (s1 - s0) / steps)


def steps(workload: str, quick: bool) -> int:
    return max(WORKLOADS[workload][0] // 10, 5) if quick else WORKLOADS[workload][0]


def run_pair(workload: str, steps: int) -> dict[str, dict]:
    """Both arms started together; their JSON lines back."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = {name: subprocess.Popen([sys.executable, __file__, "--arm", workload, "--steps", str(steps)]
                                    + (["--keep"] if name == "keep" else []),
                                    stdout=subprocess.PIPE, text=True, env=env)
             for name in ("default", "keep")}
    out = {}
    for name, p in procs.items():
        stdout, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"malloc_speed: the {name} arm of {workload} failed (exit {p.returncode})")
        out[name] = json.loads(stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one round of a tenth of the steps (a smoke run)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--arm", choices=list(WORKLOADS), help=argparse.SUPPRESS)
    ap.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.arm:
        print(json.dumps(arm(args.arm, args.keep, args.steps or WORKLOADS[args.arm][0])))
        return
    if args.quick:
        args.rounds = 1
    names = args.workloads.split(",")
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise SystemExit(f"malloc_speed: unknown workload {unknown[0]!r}; choose from {', '.join(WORKLOADS)}")
    rows, loads = [], []
    for name in names:
        rounds = []
        for _ in range(args.rounds):
            loads.append(os.getloadavg()[0])
            rounds.append(run_pair(name, steps(name, args.quick)))
            print(name, json.dumps(rounds[-1]), flush=True)
        rows.append((name, rounds))
    write(rows, args, loads)


def write(rows: list, args: argparse.Namespace, loads: list[float]) -> None:
    import torch
    lines = ["# Keeping freed memory in the process: eager runs, glibc's default malloc vs kept", "",
             f"Command: `{Path(sys.executable).as_posix()} benchmarks/malloc_speed.py "
             f"{'--quick' if args.quick else f'--rounds {args.rounds}'}"
             f"{'' if args.workloads == ','.join(WORKLOADS) else ' --workloads ' + args.workloads}`", "",
             f"Date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; torch {torch.__version__}, "
             f"{platform.machine()}, {os.cpu_count()} cores (shared); 1-minute load average before each pair "
             f"{min(loads):.1f} to {max(loads):.1f}. Each round starts both arms together (so they share the "
             "machine's load); CPU ms per step = process time of a timed call after a warm-up call, divided "
             "by its steps; faults = minor page faults per step; sys = kernel CPU ms per step.", "",
             "| workload | steps timed | default: ms / faults / sys ms per step | kept: ms / faults / sys ms per step "
             "| kept / default (median of round ratios) | per-round ratios |",
             "|---|---:|---|---|---:|---|"]
    for name, rounds in rows:
        ratios = [r["keep"]["ms"] / r["default"]["ms"] for r in rounds]

        def cell(arm_name: str) -> str:
            return " / ".join(f"{statistics.median(r[arm_name][k] for r in rounds):.{d}f}"
                              for k, d in (("ms", 1), ("faults", 0), ("sys_ms", 2)))
        lines.append(f"| {WORKLOADS[name][1]} | {steps(name, args.quick)} | {cell('default')} | {cell('keep')} | "
                     f"**{statistics.median(ratios):.2f}** | {', '.join(f'{x:.2f}' for x in ratios)} |")
    out = ROOT / "benchmarks" / "results" / f"malloc_speed{'_quick' if args.quick else ''}.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
