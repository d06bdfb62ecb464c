"""Out-of-distribution detection on digits: AUROC of f and of the score norm, per run directory.

    .venv/bin/python benchmarks/ood_digits.py RUN [RUN ...] [--seed 0] [--out results/ood_digits.md]

For each run directory (unconditional digits runs, and conditional / JEM runs, whose f(x) is
logsumexp_y of the class logits): inliers are the run's own held-out test set (360 digits), and
three outlier sets of the same size are made at the run's image shape in the model's scale
[-1, 1] (``ebmlab.metrics.outliers.builtin_outliers``, the same sets ``ebmlab eval --ood`` makes):

- ``uniform``: uniform noise in [-1, 1];
- ``shuffled``: each test digit with its pixels permuted (same intensity histogram, no strokes);
- ``photo-patches``: grey patches of scikit-learn's two shipped photos, area-averaged to 8x8.

Two scores, each oriented "higher = in-distribution": f(x) itself, and -||grad_x f(x)|| (JEM's
"approximate mass", Grathwohl et al. 2019: data sit near modes, where f is flat). AUROC =
P(inlier scores above outlier); 1 = separated, 0.5 = chance, below 0.5 = the score ranks the
outliers as more typical than the test digits.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
SETS = ("uniform", "shuffled", "photo-patches")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "n/a"
    return (f"{cpu}, nproc {os.cpu_count()} (shared; load average {load} at start), torch {torch.__version__}, "
            f"{torch.get_num_threads()} thread(s), Python {platform.python_version()}")


def run_step(run_dir: Path) -> str:
    try:
        return (run_dir / "checkpoints" / "LATEST").read_text().strip().removeprefix("step-").lstrip("0") or "0"
    except OSError:
        return "?"


def measure(run_dir: Path, seed: int) -> list[dict]:
    from ebmlab.metrics.ood import ood_table
    from ebmlab.tasks.evaluate import run_outlier_sets
    from ebmlab.tasks.open import open_run, test_data
    run = open_run(run_dir)
    model = run.model.eval()
    x_test = test_data(run)
    t0 = time.perf_counter()
    rows = ood_table(model, x_test, run_outlier_sets(run, list(SETS), x_test, seed))
    sec = time.perf_counter() - t0
    kind = getattr(run.config, "objective", "cd")
    for r in rows:
        r.update(run=str(run_dir), objective=kind, data=run.config.data, step=run_step(run_dir), seconds=sec)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| run | objective | steps | outlier set | n test | n outliers | AUROC f | AUROC -\\|grad f\\| |",
             "|---|---|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['run']} | | {r.get('step', '?')} | error: {r['error']} | | | | |")
            continue
        lines.append(f"| {r['run']} | {r['objective']} | {r['step']} | {r['outlier']} | {r['n_in']} | {r['n_out']} | "
                     f"{r['auroc_log_density']:.3f} | {r['auroc_score_norm']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", metavar="RUN", help="run directories trained on digits")
    ap.add_argument("--seed", type=int, default=0, help="seed of the outlier sets (default 0)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    ap.add_argument("--out", default=None, help="markdown output (default benchmarks/results/ood_digits.md)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out) if args.out else HERE / "results" / "ood_digits.md"
    command = ("python benchmarks/ood_digits.py "
               + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))).rstrip()
    started, mach = _dt.datetime.now().strftime("%Y-%m-%d %H:%M"), machine()
    t_start = time.perf_counter()
    rows: list[dict] = []
    for r in args.runs:
        try:
            rows += measure(Path(r), args.seed)
        except Exception as e:  # noqa: BLE001 - one broken run must not sink the table
            rows.append({"run": r, "step": run_step(Path(r)), "error": f"{type(e).__name__}: {e}"[:160]})
            print(f"{r}: {rows[-1]['error']}", file=sys.stderr, flush=True)
    total = time.perf_counter() - t_start
    md = f"""# Out-of-distribution detection on digits (AUROC)

Command: `{command}`  
Date: {started}  
Machine: {mach}; total wall time {total:.0f} s

Inliers: each run's held-out test digits. Outliers (as many as test digits, seed {args.seed}, made by
`ebmlab.metrics.outliers.builtin_outliers`, the sets of `ebmlab eval --ood`): **uniform** noise in [-1, 1];
**shuffled**: each test digit with its pixels permuted; **photo-patches**: grey patches of scikit-learn's
two photos, area-averaged to 8x8. Scores, both "higher = in-distribution": **f** = log unnormalised
density, and **-\\|grad f\\|** (smaller gradient norm = in-distribution, JEM's "approximate mass",
Grathwohl et al. 2019). AUROC 1 = separated, 0.5 = chance, < 0.5 = outliers ranked as more typical.
Objective: `cd` = unconditional EBM; `conditional` / `jem` = f(x) = logsumexp over the class logits.

{table(rows)}
"""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    print(table(rows))
    print(f"\nwritten {out} ({total:.0f} s)")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
