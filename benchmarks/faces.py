"""Faces from noise (issue 17): train the default ``--data faces`` run, sample 100, and say how face-like,
diverse and contrasted the samples are, beside a blurred-mean-face baseline and uniform noise.

    .venv-bench/bin/python benchmarks/faces.py                  # trains `ebmlab train --data faces` (no flags)
    .venv-bench/bin/python benchmarks/faces.py --quick          # 600 training steps, results/faces_quick.md
    .venv-bench/bin/python benchmarks/faces.py --run DIR        # reuse a finished faces run

Numbers (benchmarks/faces_metrics.py says how each is computed):
  face fraction   share called "face" by a logistic regression on pixels trained on the 200 lfw_subset images
  distinct NN     how many of the 80 training faces are the nearest neighbour of some sample
  contrast        mean per-image pixel std (pixels in [0, 1])
  roughness       mean |difference of neighbouring pixels| (pixels in [0, 1]): noise left in the image
  NN distance     median RMS distance to the nearest training face ([-1, 1] pixels), beside held-out faces'
Training is timed in CPU seconds of the `ebmlab train` process (user + sys), the machine being shared.
Writes results/faces[_quick].md and, for the full run, docs/img/faces_trajectory.png and
docs/img/faces_nearest.png (quick runs: results/faces_quick_*.png).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from faces_metrics import CLASSIFIER, classifier_accuracy, face_scores, to_unit  # noqa: E402

QUICK_STEPS = 600


def _ebmlab(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "ebmlab", *args], env=env, check=True, capture_output=True, text=True)


def train(run: Path, quick: bool) -> dict[str, float]:
    """``ebmlab train --data faces --out RUN`` (quick: ``--steps 600``); its CPU and wall seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    _ebmlab("train", "--data", "faces", "--out", str(run), "--force", "--quiet",
            *(["--steps", str(QUICK_STEPS)] if quick else []))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"train_cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "train_wall_s": time.time() - t0}


def roughness(x01: torch.Tensor) -> float:
    """Mean absolute difference of horizontally and vertically neighbouring pixels, x01 [N, 1, H, W]."""
    dx = (x01[..., :, 1:] - x01[..., :, :-1]).abs().mean()
    dy = (x01[..., 1:, :] - x01[..., :-1, :]).abs().mean()
    return float((dx + dy) / 2)


def blurred_mean(train01: torch.Tensor, n: int) -> torch.Tensor:
    """The mean training face, Gaussian-blurred (sigma 1 px, scikit-image), repeated n times: [n, 1, 25, 25]."""
    from skimage.filters import gaussian
    m = gaussian(train01.mean(0)[0].numpy(), sigma=1.0)
    return torch.from_numpy(m).reshape(1, 1, *m.shape).repeat(n, 1, 1, 1).double()


def nearest_grid(samples: torch.Tensor, train: torch.Tensor, path: Path, n: int = 32, per_row: int = 8) -> Path:
    """PNG: rows of ``per_row`` samples, each row followed by the same samples' nearest training faces."""
    from ebmlab.metrics.nearest import nearest
    from ebmlab.viz.imageio import save_grid_png
    s = samples[:n]
    _, idx = nearest(s, train)
    rows = []
    for i in range(0, s.shape[0], per_row):
        rows += [s[i:i + per_row], train[idx[i:i + per_row]]]
    return save_grid_png(torch.cat(rows).float(), path, nrow=per_row, upscale=3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help=f"train {QUICK_STEPS} steps only (smoke run)")
    ap.add_argument("--run", type=Path, help="a finished `--data faces` run directory to reuse (no training)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/ebmlab-faces"), help="where the run is trained")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--note", default="", help="a line added under the training line (e.g. how a reused run was timed)")
    args = ap.parse_args()
    command = "python benchmarks/faces.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    torch.set_num_threads(1)
    from ebmlab.data.faces import load_faces_uint8
    from ebmlab.metrics.nearest import memorisation_check
    from ebmlab.tasks.open import open_run
    from ebmlab.tasks.sample import draw_samples

    suffix = "_quick" if args.quick else ""
    timing: dict[str, float] = {}
    run_dir = args.run
    if run_dir is None:
        run_dir = args.work / ("faces" + suffix)
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        timing = train(run_dir, args.quick)
    run = open_run(str(run_dir))
    cfg = run.config
    from ebmlab.rundir.checkpoint import latest_checkpoint
    steps_done = int(latest_checkpoint(run_dir).name.split("-")[-1])     # the checkpoint sampled from
    train01 = load_faces_uint8("train").double() / 255
    held01 = load_faces_uint8("test").double() / 255
    x, _, info = draw_samples(run, 100, seed=args.seed)
    s01 = to_unit(x)
    g = torch.Generator().manual_seed(args.seed)
    rows = {
        f"ebmlab faces samples ({info['n_steps']} Langevin steps from uniform noise)": s01,
        "blurred mean face (baseline)": blurred_mean(train01, 100),
        "uniform noise (baseline)": torch.rand(100, 1, 25, 25, generator=g, dtype=torch.float64),
        "real: 20 held-out faces (reference)": held01,
        "real: 80 training faces (reference)": train01,
    }
    table = []
    for name, imgs in rows.items():
        sc = face_scores(imgs, train01)
        sc["roughness"] = roughness(imgs)
        table.append((name, sc))
    mem = memorisation_check(x, train01 * 2 - 1, held01 * 2 - 1)

    img_dir = ROOT / "docs" / "img" if not args.quick else HERE / "results"
    prefix = "faces" if not args.quick else "faces_quick"
    traj = img_dir / f"{prefix}_samples.png"
    _ebmlab("sample", str(run_dir), "--n", "64", "--out", str(traj), "--trajectory", "2", "--seed", str(args.seed))
    nn_png = nearest_grid(x, train01.float() * 2 - 1, img_dir / f"{prefix}_nearest.png")

    lines = [f"# Faces from noise (lfw_subset, 25x25){' — QUICK run' if args.quick else ''}", "",
             f"Command: `{command}`  ", f"Date: {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}  ",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPUs (shared), torch {torch.__version__}", ""]
    if timing:
        lines += [f"Training: `ebmlab train --data faces --out DIR{' --steps %d' % QUICK_STEPS if args.quick else ''}`"
                  f" — {steps_done} steps, **{timing['train_cpu_s']:.0f} CPU-s** (user + sys of the training "
                  f"process, 1 torch thread), {timing['train_wall_s']:.0f} s wall on this shared machine.", ""]
    else:
        lines += [f"Training: reused run `{run_dir}` (checkpoint at step {steps_done} of {cfg.steps}, preset "
                  f"{cfg.preset}).", ""]
    if args.note:
        lines += [args.note, ""]
    lines += [f"Recipe (preset `{cfg.preset}`): short-run from uniform noise, K = {cfg.mcmc_steps} Langevin steps of "
              f"step {cfg.step_size}, noise {cfg.noise_scale}, data noise {cfg.data_noise}, Adam {cfg.lr} "
              f"(beta1 {cfg.adam_beta1}, {cfg.lr_schedule} lr"
              f"{f' to {cfg.lr * cfg.lr_min_factor:g}' if cfg.lr_schedule == 'cosine' else ''}), L2 {cfg.l2}, batch {min(cfg.batch_size, 80)}, net {cfg.net} width "
              f"{cfg.net_width}. Samples: 100 chains, `ebmlab sample`'s default (the training K), seed {args.seed}.", "",
              f"Face classifier: {CLASSIFIER}, trained on all 200 `skimage.data.lfw_subset()` images; 5-fold "
              f"cross-validated accuracy on real images **{classifier_accuracy():.3f}**.", "",
              "| images | face fraction | distinct nearest training faces (of 80) | contrast (std) | roughness | "
              "median NN distance |", "|---|---:|---:|---:|---:|---:|"]
    for name, sc in table:
        lines.append(f"| {name} | {sc['face_fraction']:.2f} | {sc['distinct_nn']} (of {sc['n']} images) | "
                     f"{sc['contrast']:.3f} | {sc['roughness']:.3f} | {sc['nn_rms_median']:.3f} |")
    lines += ["", "Memorisation check (`ebmlab eval` prints the same keys; RMS pixel distance in [-1, 1] to the "
              "nearest of the 80 training faces):", "",
              f"- samples: mean {mem['nn_samples_mean']:.3f}, median {mem['nn_samples_median']:.3f}",
              f"- held-out real faces: mean {mem['nn_heldout_mean']:.3f}, median {mem['nn_heldout_median']:.3f}",
              f"- ratio of medians {mem['nn_ratio']:.2f} (about 1: samples as far from the training faces as new "
              "real faces are; near 0: copies)", "",
              "Honest caveat: 80 training images. The samples are judged against these few faces; the "
              "nearest-neighbour grid shows each sample beside its closest training face.", "",
              f"Figures: `{traj.relative_to(ROOT)}` (64 samples), "
              f"`{traj.with_name(traj.stem + '-trajectory.png').relative_to(ROOT)}` (8 chains from noise, every 2 "
              f"steps, labelled), `{nn_png.relative_to(ROOT)}` (rows of samples, each followed by the row of their "
              "nearest training faces)."]
    out = HERE / "results" / f"faces{suffix}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
