"""Inpainting the held-out digits with trained models, against filling the hole with the train mean.

    .venv/bin/python benchmarks/inpaint_digits.py RUN [RUN ...] [--out benchmarks/results/inpaint_digits.md]

For each run directory (trained on ``--data digits``) and each mask of ``ebmlab.tasks.inpaint.make_mask``
(box: the centre quarter; left-half; random: half the pixels), the 360 test digits are filled by
``ebmlab.tasks.inpaint.inpaint`` with the run's own Langevin numbers and chain length (what
``ebmlab inpaint`` does), and the mean squared error over the missing pixels is reported in the
data's scale (0..16), next to the error of filling them with the per-pixel mean of the train set.
Seeded; one torch thread.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import shlex
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def measure(run_dir: str, seed: int, n_fills: int = 8) -> list[dict]:
    from ebmlab.data.images import load_digits_images
    from ebmlab.tasks.inpaint import MASK_KINDS, inpaint, make_mask
    from ebmlab.tasks.open import open_run
    from ebmlab.tasks.sample import default_sample_steps
    run = open_run(run_dir)
    cfg = run.config
    x_train = load_digits_images("train", model_scale=True)
    x_test = load_digits_images("test", model_scale=True)
    mean = x_train.mean(0, keepdim=True).expand_as(x_test)
    to16 = lambda t: (t + 1.0) * 8.0          # model scale [-1, 1] -> the digits' 0..16
    n_steps = default_sample_steps(cfg, is_vector=False)
    rows = []
    for kind in MASK_KINDS:
        g = torch.Generator().manual_seed(seed)
        mask = make_mask(kind, tuple(x_test.shape), g).expand_as(x_test)
        filled = inpaint(run.model, x_test, mask, n_steps=n_steps, step_size=cfg.step_size,
                         noise_scale=cfg.noise_scale, grad_clip=cfg.grad_clip, generator=g)
        # the average of M fills estimates the posterior mean, the fill that minimises expected squared error
        # (one fill is a sample: its error is about twice the posterior variance)
        many = inpaint(run.model, x_test.repeat(n_fills, 1, 1, 1), mask.repeat(n_fills, 1, 1, 1), n_steps=n_steps,
                       step_size=cfg.step_size, noise_scale=cfg.noise_scale, grad_clip=cfg.grad_clip, generator=g)
        avg = many.reshape(n_fills, *x_test.shape).mean(0)
        err = lambda y: float(((to16(y) - to16(x_test))[mask] ** 2).mean())
        rows.append({"run": run_dir, "mask": kind, "n_steps": n_steps, "mse_ebm": err(filled), "mse_avg": err(avg),
                     "mse_mean": err(mean)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", metavar="RUN")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "results" / "inpaint_digits.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [r for run in args.runs for r in measure(run, args.seed)]
    cmd = "python benchmarks/inpaint_digits.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines = ["# Inpainting held-out digits: trained EBM vs the train-set mean", "",
             f"Command: `{cmd}`  ", f"Date: {_dt.datetime.now():%Y-%m-%d %H:%M}  ",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared), "
             f"torch {torch.__version__}, 1 thread", "",
             "Mean squared error over the missing pixels of the 360 test digits, in the data's scale 0..16 "
             "(lower is better). EBM: `ebmlab.tasks.inpaint.inpaint` with the run's Langevin numbers for the run's "
             "sampling length, missing pixels started from uniform noise; one fill is one sample of "
             "p(missing | observed), and the mean of 8 independent fills estimates the posterior mean (the fill "
             "with the least expected squared error). Train mean: each missing pixel set to its train-set mean.", "",
             "| run | mask | Langevin steps | MSE one EBM fill | MSE mean of 8 EBM fills | MSE train-mean fill | "
             "ratio (8 fills / train mean) |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| `{r['run']}` | {r['mask']} | {r['n_steps']} | {r['mse_ebm']:.2f} | {r['mse_avg']:.2f} | "
                     f"{r['mse_mean']:.2f} | {r['mse_avg'] / r['mse_mean']:.2f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
