"""Density quality with 2 processes vs 1 (issue 13): the same 2-D recipe, exact test NLL.

For each built-in 2-D set and seed, the default recipe (no flags) trains once as one process and
once as two (``--nproc 2``: global batch 256 = 2 x 128, each rank its own chains on half the
replay buffer) and ``ebmlab train --json`` reports the exact held-out NLL (quadrature over the
support box). Two processes do not take the one-process run's steps (their chains are different
random streams), so the comparison is statistical: the table shows each run, the mean gap
(2 processes - 1 process) over sets and seeds, and the spread of the one-process NLL between seeds
as the yardstick of what "the same quality" can mean.

Run:  /work/main/.venv/bin/python benchmarks/distributed_quality.py [--quick]
Writes benchmarks/results/distributed_quality.md (or distributed_quality_quick.md).
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

ROOT = Path(__file__).resolve().parent.parent
ALL_SETS = ("eight-gaussians", "checkerboard", "two-spirals", "rings", "moons", "pinwheel", "swiss-roll")
QUICK_SETS = ("eight-gaussians", "moons")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}


def train_nll(data: str, out: Path, seed: int, nproc: int, steps: int | None) -> float:
    """The exact test NLL (nats) of one default-recipe run."""
    cmd = [sys.executable, "-m", "ebmlab", "train", "--data", data, "--out", str(out), "--force", "--quiet",
           "--json", "--seed", str(seed), "--threads", "1", "--plot-every", str(10**6)]
    if steps is not None:
        cmd += ["--steps", str(steps)]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    r = subprocess.run(cmd, env=_env(), cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"distributed_quality: {' '.join(cmd)} failed: {r.stderr.strip()}")
    return float(json.loads(r.stdout)["exact_test_nll"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"sets {', '.join(QUICK_SETS)} only")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the recipe's 3000)")
    args = ap.parse_args()
    sets = QUICK_SETS if args.quick else ALL_SETS
    rows, gaps, spreads = [], [], []
    with tempfile.TemporaryDirectory(prefix="ebmlab-ddp-quality-") as tmp:
        for name in sets:
            one, two = [], []
            for seed in range(args.seeds):
                one.append(train_nll(name, Path(tmp) / "one", seed, 1, args.steps))
                two.append(train_nll(name, Path(tmp) / "two", seed, 2, args.steps))
                print(f"{name} seed {seed}: 1 process {one[-1]:.4f}, 2 processes {two[-1]:.4f}", flush=True)
            gap = statistics.mean(two) - statistics.mean(one)
            spread = max(one) - min(one)
            gaps.append(gap)
            spreads.append(spread)
            rows.append(f"| {name} | {', '.join(f'{v:.4f}' for v in one)} | {', '.join(f'{v:.4f}' for v in two)} | "
                        f"{gap:+.4f} | {spread:.4f} |")
    cmd = " ".join([Path(sys.executable).as_posix(), "benchmarks/distributed_quality.py", *sys.argv[1:]])
    mean_gap = statistics.mean(gaps)
    text = (
        f"# Density quality: 2 processes vs 1{' (quick run)' if args.quick else ''}\n\n"
        f"Command: `{cmd}`\n\n"
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared).\n\n"
        f"Each run: `ebmlab train --data SET --seed S --threads 1 [--nproc 2]`, the default 2-D recipe "
        f"({args.steps or 3000} steps, global batch 256), exact test NLL on the built-in held-out set.\n\n"
        "| set | 1 process: NLL per seed | 2 processes: NLL per seed | mean(2p) - mean(1p) | 1p spread between seeds |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"- mean difference over sets (2 processes - 1 process): **{mean_gap:+.4f} nats**; the one-process runs "
        f"differ between seeds by {statistics.mean(spreads):.4f} nats on average (the noise floor of this check)\n"
    )
    out = ROOT / "benchmarks" / "results" / f"distributed_quality{'_quick' if args.quick else ''}.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
