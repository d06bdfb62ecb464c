"""Side-by-side 2-D density benchmark: exact test NLL above the true density's, and wall time.

    .venv-bench/bin/python benchmarks/density2d.py --steps 3000 --sets all --rows all
    .venv-bench/bin/python benchmarks/density2d.py --quick          # 300 steps, two sets

For every built-in set (``ebmlab.data.toy2d``): 20 000 training points (generator seed 1) and a
held-out test set of 5 000 points (seed 2). Every EBM row trains the same 3x128 SiLU MLP from the
same initial weights for the same number of optimiser steps with one shared recipe
(``peers.Recipe``: persistent chains, 20 unadjusted Langevin steps, Adam), each library through its
own API with its knobs set by its own update rule (see ``peers/__init__.py``). The EBM NLL is
measured the same way for all: f normalised by midpoint quadrature over one box (the training
data's bounding box +- 1.0), NLL = -(mean f(x_test) - log Z_box). scikit-learn rows use their
exact ``score_samples``. The table cell is NLL - NLL_true in nats (lower is better, 0 = truth).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import platform
import shlex
import sys
import time
import traceback
from functools import lru_cache
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ebmlab.data import toy2d  # noqa: E402
from ebmlab.estimate.partition import quadrature_log_z  # noqa: E402

import peers  # noqa: E402
from peers import Recipe  # noqa: E402

N_TRAIN, N_TEST = 20_000, 5_000
TRAIN_SEED, TEST_SEED = 1, 2
BOX_MARGIN = 1.0
QUAD_POINTS = 500                    # 500 x 500 midpoint grid over the box
ROWS = ("true", "ebmlab", "handwritten", "ebmkit", "torchebm", "gmm", "kde")
QUICK_SETS = ("eight-gaussians", "moons")
LABELS = {
    "true": "true density (its NLL, nats)",
    "ebmlab": "ebmlab default recipe",
    "handwritten": "hand-written PyTorch loop",
    "ebmkit": "ebmkit (CD + Langevin)",
    "torchebm": "torchebm (CD + Langevin)",
    "gmm": "sklearn GaussianMixture (BIC)",
    "kde": "sklearn KernelDensity (CV)",
}


# ---------------------------------------------------------------- data and measurement
@lru_cache(maxsize=None)
def data(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(train [20000, 2], test [5000, 2]) for set ``name`` from fixed generator seeds."""
    train = toy2d.make(name, N_TRAIN, torch.Generator().manual_seed(TRAIN_SEED))
    test = toy2d.make(name, N_TEST, torch.Generator().manual_seed(TEST_SEED))
    return train, test


def shared_box(train: torch.Tensor) -> torch.Tensor:
    """[[lo_x, hi_x], [lo_y, hi_y]]: the training data's bounding box expanded by BOX_MARGIN."""
    return torch.stack([train.min(0).values - BOX_MARGIN, train.max(0).values + BOX_MARGIN], 1).double()


def true_nll(name: str, test: torch.Tensor) -> float:
    return float(-toy2d.true_log_density(name, test.double()).mean())


@torch.no_grad()
def exact_nll(f, test: torch.Tensor, box: torch.Tensor) -> float:
    """-(mean f(x_test) - log Z_box): f normalised over the box by quadrature."""
    log_z = quadrature_log_z(f, box.tolist(), QUAD_POINTS).value
    mean_f = float(f(test).double().mean())
    return -(mean_f - log_z)


# ---------------------------------------------------------------- ebmlab hook
def run_ebmlab(name: str, steps: int, seed: int) -> dict | None:
    """=== EBMLAB HOOK === ebmlab's default recipe on the same data; None if not importable yet.

    Calls ``ebmlab.training.api.train_2d(train_array, steps, seed, out_dir=None)`` -> a trained
    ``EnergyModel`` with ``.bounds``. Its support is that box (f = -inf outside), so Z is taken
    over ``model.bounds`` — exact for it, neither favourable nor unfavourable; without bounds,
    over the shared box like the peers.
    """
    try:
        from ebmlab.training.api import train_2d
    except ImportError:
        return None
    train, test = data(name)
    t0 = time.perf_counter()
    model = train_2d(train, steps, seed, out_dir=None)
    seconds = time.perf_counter() - t0
    model.eval()
    bounds = getattr(model, "bounds", None)
    box = bounds.double() if bounds is not None else shared_box(train)
    return {"nll": exact_nll(model.log_density, test, box), "seconds": seconds}


# ---------------------------------------------------------------- rows
def run_row(row: str, name: str, steps: int, seed: int, recipe: Recipe) -> dict | None:
    train, test = data(name)
    if row == "true":
        return {"nll": true_nll(name, test), "seconds": 0.0}
    if row == "ebmlab":
        return run_ebmlab(name, steps, seed)
    if row in ("gmm", "kde"):
        from peers import sklearn_baselines as sk
        fn = sk.gmm if row == "gmm" else sk.kde
        return fn(train.double().numpy(), test.double().numpy(), seed)
    module = {"handwritten": "handwritten", "ebmkit": "ebmkit_runner", "torchebm": "torchebm_runner"}[row]
    runner = __import__(f"peers.{module}", fromlist=["train"])
    box = shared_box(train)
    f, seconds = runner.train(train, box, steps, seed, recipe)
    return {"nll": exact_nll(f, test, box), "seconds": seconds}


def fmt_cell(row: str, res: dict | None, true: float | None) -> str:
    if res is None:
        return "not available yet"
    if "error" in res:
        return f"error: {res['error']}"
    if row == "true":
        return f"{res['nll']:.4f}"
    if not math.isfinite(res["nll"]):
        return f"diverged ({res['seconds']:.0f} s)"
    gap = res["nll"] - true if true is not None else float("nan")
    extra = f", {res['detail']}" if "detail" in res else ""
    return f"{gap:+.3f} ({res['seconds']:.0f} s{extra})"


def versions() -> str:
    out = [f"torch {torch.__version__}", f"python {platform.python_version()}"]
    for mod, label in (("ebm", "ebmkit"), ("torchebm", "torchebm"), ("sklearn", "scikit-learn"), ("ebmlab", "ebmlab")):
        try:
            out.append(f"{label} {__import__(mod).__version__}")
        except Exception:  # noqa: BLE001 - a missing peer is reported, not fatal
            out.append(f"{label} missing")
    return ", ".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=3000, help="optimiser steps per EBM run (default 3000)")
    ap.add_argument("--sets", default="all", help=f"comma list of {', '.join(toy2d.NAMES)}, or all")
    ap.add_argument("--rows", default="all", help=f"comma list of {', '.join(ROWS)}, or all")
    ap.add_argument("--seed", type=int, default=0, help="seed of network init, chains and batches")
    ap.add_argument("--quick", action="store_true", help=f"300 steps on {', '.join(QUICK_SETS)}")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: on 2 shared busy cores, 2 threads ran 30x slower per step)")
    ap.add_argument("--out", default=None, help="markdown output (default results/density2d.md, "
                                                "results/density2d_quick.md with --quick)")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps = 300
        if args.sets == "all":
            args.sets = ",".join(QUICK_SETS)
    sets = list(toy2d.NAMES) if args.sets == "all" else [s.strip() for s in args.sets.split(",")]
    rows = list(ROWS) if args.rows == "all" else [r.strip() for r in args.rows.split(",")]
    for s in sets:
        if s not in toy2d.NAMES:
            ap.error(f"unknown set {s!r}; choose from {', '.join(toy2d.NAMES)}")
    for r in rows:
        if r not in ROWS:
            ap.error(f"unknown row {r!r}; choose from {', '.join(ROWS)}")
    if "true" not in rows:
        rows.insert(0, "true")  # the gaps need it
    torch.set_num_threads(args.threads)
    out = Path(args.out) if args.out else HERE / "results" / ("density2d_quick.md" if args.quick else "density2d.md")
    recipe = Recipe()
    command = "python benchmarks/density2d.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    print(f"# {command}\n# steps={args.steps} sets={sets} rows={rows} threads={torch.get_num_threads()}", flush=True)

    results: dict[tuple[str, str], dict | None] = {}
    t_start = time.perf_counter()
    for name in sets:
        for row in rows:
            try:
                res = run_row(row, name, args.steps, args.seed, recipe)
            except Exception as e:  # noqa: BLE001 - one failing peer must not sink the table
                traceback.print_exc()
                res = {"error": f"{type(e).__name__}: {e}"[:120]}
            results[(row, name)] = res
            if row == "ebmlab" and res is None:
                print("ebmlab: not available yet", flush=True)
                continue
            true = results[("true", name)]["nll"]
            print(f"{name:16s} {row:12s} {fmt_cell(row, res, true)}", flush=True)
    total = time.perf_counter() - t_start

    head = "| method | " + " | ".join(sets) + " |"
    lines = [head, "|" + "---|" * (len(sets) + 1)]
    for row in rows:
        cells = [fmt_cell(row, results[(row, s)], results[("true", s)]["nll"]) for s in sets]
        lines.append(f"| {LABELS[row]} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    r = recipe
    md = f"""# 2-D density benchmark{' (quick)' if args.quick else ''}

- command: `{command}` (with `.venv-bench/bin/python`)
- date: {_dt.datetime.now().isoformat(timespec='seconds')}; nproc {os.cpu_count()}; torch threads {torch.get_num_threads()}; total wall time {total / 60:.1f} min
- versions: {versions()}
- data: {N_TRAIN} training points (generator seed {TRAIN_SEED}), {N_TEST} held-out test points (seed {TEST_SEED}) per set; training seed {args.seed}
- EBM recipe (shared, {args.steps} optimiser steps): 3x128 SiLU MLP (`ebmlab.nets.mlp.MLP(2, 128, 3)`, identical initial weights), batch {r.batch_size}, Adam lr {r.lr}, persistent chains: buffer {r.buffer_size} initialised uniformly over the box, restart probability {r.reinit_prob}, {r.langevin_steps} unadjusted Langevin steps x' = x + eps grad f + sqrt(2 eps) z with eps = {r.step_size}, energy L2 {r.energy_reg} (mean f(x+)^2 + mean f(x-)^2)

Cells: **test NLL minus the true density's test NLL, in nats** (0 = the truth; lower is better), then training wall time. The first row is the true density's own NLL.

{table}

Notes
- EBM NLL = -(mean f(x_test) - log Z_box), Z by a {QUAD_POINTS}x{QUAD_POINTS} midpoint grid over the box = training data's bounding box +- {BOX_MARGIN}. Mass a model puts *outside* that box is not counted in Z, which is favourable to that model (its NLL can only come out lower than over R^2); peers' densities have no support box. ebmlab's model carries its own support box (`.bounds`, f = -inf outside), and Z is taken over exactly that box.
- scikit-learn NLLs are their exact normalised `score_samples` over R^2 (no box). GMM: full covariances, n_components by BIC over {list(__import__('peers.sklearn_baselines', fromlist=['x']).GMM_COMPONENTS)}; KDE: Gaussian kernel, bandwidth by 3-fold CV over {list(__import__('peers.sklearn_baselines', fromlist=['x']).KDE_BANDWIDTHS)} on a subsample, rescaled by n^(-1/6) to the full train split. Their time is model selection + fit.
- Peer knobs, each by its own update rule: ebmkit `LangevinDynamics(step_size={r.step_size}, steps={r.langevin_steps}, noise_scale=sqrt(2*{r.step_size})={r.noise_std:.4f})` (its noise_scale is the noise std), `ReplayBuffer({r.buffer_size}, reinit_prob={r.reinit_prob}, init_fn=uniform box)`, `ContrastiveDivergence(energy_reg={r.energy_reg})`, `Trainer(lr={r.lr}).fit(batch_size={r.batch_size})`; torchebm `LangevinDynamics(step_size={r.step_size}, noise_scale=1.0)` (its noise is noise_scale*sqrt(2 eps)*z), `ContrastiveDivergence(k_steps={r.langevin_steps}, persistent=True, buffer_size={r.buffer_size}, init_steps=0, new_sample_ratio=0.0, energy_reg_weight={r.energy_reg})` in a plain Adam loop. Both peers get E = -f.
- What torchebm's API cannot match: no restart of chains from noise (its `new_sample_ratio` jitters starts by 0.01; left at 0), stratified draws from the buffer with FIFO write-back, and an N(0, I) buffer initialisation that we overwrite with the recipe's uniform draw.
- "not available yet": `ebmlab.training.api.train_2d` was not importable when this ran.
"""
    print()
    print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
