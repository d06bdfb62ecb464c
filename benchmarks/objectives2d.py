"""Training objectives on the seven 2-D sets: exact test NLL of cd, dsm, ssm and nce (issue 15).

    .venv-bench/bin/python benchmarks/objectives2d.py                  # 3000 steps, seven sets
    .venv-bench/bin/python benchmarks/objectives2d.py --quick          # 300 steps, two sets
    .venv-bench/bin/python benchmarks/objectives2d.py --rows ebmlab:ssm --seeds 0,1,2   # per-seed cells + median
    .venv-bench/bin/python benchmarks/objectives2d.py --seeds 0,1,2 --jobs 2            # cells on 2 worker processes

Data as in ``benchmarks/density2d.py`` (20 000 training points, seed 1; 5 000 test points, seed 2).
ebmlab rows: ``ebmlab.train("auto", train, objective=...)`` with the 2-D preset of that objective
(ebmlab's network: a fixed standardisation, then the 3x128 SiLU MLP). Peer rows (ebmkit's and
torchebm's own loss objects, ``peers/objective_runners.py``): the same 3x128 SiLU MLP with the same
first layer as ebmlab's preset for that objective (``net_features``: linear or hybrid), the same step count, batch, Adam learning rate and cosine schedule as ebmlab's run of that objective, and the
same noise level / noise ratio. NLL: f normalised by midpoint quadrature over the model's support
box (ebmlab) or the shared box (peers: data box +- 1), as in density2d.py. Cells: NLL minus the true
density's NLL, in nats (0 = the truth). For nce the learned log Z is compared with the exact one.
Pictures: docs/images/objectives2d/<set>.png, one panel per objective (ebmlab's models).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import shlex
import sys
import time
import traceback
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ebmlab  # noqa: E402
from ebmlab.data import toy2d  # noqa: E402
from ebmlab.estimate.partition import quadrature_log_z  # noqa: E402
from ebmlab.training.presets import resolve_config  # noqa: E402

from density2d import QUAD_POINTS, data, exact_nll, shared_box, true_nll, versions  # noqa: E402

OBJECTIVES = ("cd", "dsm", "ssm", "nce")
ROWS = (("ebmlab", "cd"), ("ebmlab", "dsm"), ("ebmkit", "dsm"), ("torchebm", "dsm"),
        ("ebmlab", "ssm"), ("ebmkit", "ssm"), ("torchebm", "ssm"), ("ebmlab", "nce"), ("ebmkit", "nce"))
QUICK_SETS = ("eight-gaussians", "moons")
PICTURES = HERE.parent / "docs" / "images" / "objectives2d"


def recipe(objective: str) -> dict:
    """ebmlab's resolved 2-D settings for ``objective`` (what the peers are given too)."""
    c = resolve_config("<array>", {"preset": "2d", "objective": objective})
    return {"batch_size": c.batch_size, "lr": c.lr, "lr_min_factor": c.lr_min_factor,
            "sigma": c.dsm_sigmas[0], "ratio": c.nce_ratio, "features": c.net_features}


def run_ebmlab(objective: str, name: str, steps: int, seed: int) -> tuple[dict, object]:
    train, test = data(name)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    run = ebmlab.train("auto", train.numpy(), None, steps=steps, seed=seed, objective=objective, progress=False,
                       threads=None)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    model = run.model
    box = model.bounds.double()
    res = {"nll": exact_nll(model.log_density, test, box), "seconds": seconds, "cpu": cpu}
    if objective == "nce":
        res["log_z"] = run.metrics.get("log_z", float("nan"))       # the last log row's mean
        res["log_z_exact"] = quadrature_log_z(model.log_density, box.tolist(), QUAD_POINTS).value
    return res, model


def run_peer(peer: str, objective: str, name: str, steps: int, seed: int) -> dict:
    from peers import objective_runners
    train, test = data(name)
    r = recipe(objective)
    cpu0 = time.process_time()
    f, seconds, extra = objective_runners.train(peer, objective, train, steps, seed, **r)
    box = shared_box(train)
    res = {"nll": exact_nll(f, test, box), "seconds": seconds, "cpu": time.process_time() - cpu0}
    if "log_z" in extra:
        res["log_z"] = extra["log_z"]
        res["log_z_exact"] = quadrature_log_z(f, box.tolist(), QUAD_POINTS).value
    return res


def fmt(res: dict | None, true: float) -> str:
    if res is None:
        return "—"
    if "error" in res:
        return f"error: {res['error']}"
    if not math.isfinite(res["nll"]):
        return f"diverged ({res['cpu']:.0f} CPU-s)"
    cell = f"{res['nll'] - true:+.3f}"
    if "log_z" in res:
        cell += f" (log Z {res['log_z']:.2f} vs {res['log_z_exact']:.2f})"
    return cell


def picture_grid(model: object, name: str) -> tuple:
    """(xs, ys, F): the model's log density on the picture's 160x160 grid over the set's shared box."""
    from ebmlab.viz.plots import grid_log_density
    train, _ = data(name)
    return grid_log_density(model.log_density, shared_box(train).tolist(), grid=160)


def picture(name: str, grids: dict[str, tuple]) -> Path:
    """docs/images/objectives2d/<name>.png: the true density, then each objective's (``grids``: objective ->
    ``picture_grid`` of ebmlab's model)."""
    from ebmlab.viz.plots import grid_log_density, new_figure, save_figure
    train, _ = data(name)
    box = shared_box(train)
    objs = [o for o in OBJECTIVES if o in grids]
    fig = new_figure((2.6 * (len(objs) + 1), 2.8))
    axes = fig.subplots(1, len(objs) + 1)
    truth = grid_log_density(lambda x: toy2d.true_log_density(name, x.double()).float(), box.tolist(), grid=160)
    # the set's name in the first panel's title: a figure title overlapped the middle panel's
    panels = [(f"{name}: true density", truth)] + [(f"ebmlab {o}", grids[o]) for o in objs]
    for ax, (title, (xs, ys, F)) in zip(axes, panels):
        dens = torch.as_tensor(F).exp().nan_to_num(0.0).numpy()
        ax.imshow(dens, origin="lower", extent=(xs[0], xs[-1], ys[0], ys[-1]), cmap="viridis", aspect="auto")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    return save_figure(fig, PICTURES / f"{name}.png")


def run_cell(lib: str, obj: str, name: str, steps: int, seed: int, want_grid: bool) -> tuple[dict, tuple | None]:
    """One cell: (result, the picture grid of ebmlab's model when ``want_grid``). A failing run gives
    {"error": ...}: one failing row must not sink the table. Runs in a worker process with ``--jobs``."""
    torch.set_num_threads(1)
    try:
        if lib == "ebmlab":
            res, model = run_ebmlab(obj, name, steps, seed)
            return res, (picture_grid(model, name) if want_grid else None)
        return run_peer(lib, obj, name, steps, seed), None
    except Exception as e:  # noqa: BLE001 - one failing row must not sink the table
        traceback.print_exc()
        return {"error": f"{type(e).__name__}: {e}"[:100]}, None


def median(values: list[float]) -> float:
    """The median of ``values`` (the middle one, or the mean of the two middle ones)."""
    v = sorted(values)
    k = len(v) // 2
    return v[k] if len(v) % 2 else 0.5 * (v[k - 1] + v[k])


def table(results: dict[tuple, dict], rows: list[tuple], sets: list[str], seeds: list[int]) -> list[str]:
    """The markdown table: one row per (library, objective); with several seeds each cell lists the
    per-seed NLL gaps and their median (a failed or diverged run counts as +inf)."""
    true = {s: results[("true", "", s, None)]["nll"] for s in sets}
    lines = ["| library | objective | " + " | ".join(sets) + " |", "|" + "---|" * (len(sets) + 2),
             "| true density | (its NLL) | " + " | ".join(f"{true[s]:.4f}" for s in sets) + " |"]
    for lib, obj in rows:
        cells = []
        for s in sets:
            rs = [results.get((lib, obj, s, sd)) for sd in seeds]
            if len(seeds) == 1:
                cells.append(fmt(rs[0], true[s]))
                continue
            gaps = [r["nll"] - true[s] if r and "nll" in r and math.isfinite(r["nll"]) else math.inf for r in rs]
            cells.append(" / ".join(fmt(r, true[s]) for r in rs) + f" (med **{median(gaps):+.3f}**)")
        lines.append(f"| {lib} | {obj} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--sets", default="all", help=f"comma list of {', '.join(toy2d.NAMES)}, or all")
    ap.add_argument("--rows", default="all", help="comma list of library:objective (e.g. ebmlab:dsm), or all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", default=None,
                    help="comma list of training seeds (e.g. 0,1,2): per-seed cells and their median; overrides --seed")
    ap.add_argument("--quick", action="store_true", help=f"300 steps on {', '.join(QUICK_SETS)}, no pictures")
    ap.add_argument("--no-pictures", action="store_true")
    ap.add_argument("--out", default=None)
    ap.add_argument("--jobs", type=int, default=1,
                    help="worker processes, one torch thread each (cells are independent: the same numbers)")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps = 300
        if args.sets == "all":
            args.sets = ",".join(QUICK_SETS)
    sets = list(toy2d.NAMES) if args.sets == "all" else [s.strip() for s in args.sets.split(",")]
    for name in sets:
        if name not in toy2d.NAMES:
            ap.error(f"unknown set {name!r}; choose from {', '.join(toy2d.NAMES)}")
    try:
        seeds = [args.seed] if args.seeds is None else [int(x) for x in args.seeds.split(",")]
    except ValueError:
        ap.error(f"--seeds wants a comma list of integers, e.g. 0,1,2, not {args.seeds!r}")
    if args.jobs < 1:
        ap.error(f"--jobs wants a positive number of processes, not {args.jobs}")
    if len(set(seeds)) != len(seeds):
        ap.error(f"--seeds has a repeated seed: {args.seeds!r}")
    rows = list(ROWS) if args.rows == "all" else [tuple(r.split(":")) for r in args.rows.split(",")]
    for r in rows:
        if r not in ROWS:
            ap.error(f"unknown row {':'.join(r)!r}; choose from {', '.join(':'.join(x) for x in ROWS)}")
    torch.set_num_threads(1)
    out = Path(args.out) if args.out else HERE / "results" / ("objectives2d_quick.md" if args.quick else "objectives2d.md")
    command = "python benchmarks/objectives2d.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    print(f"# {command}", flush=True)
    results: dict[tuple, dict] = {}      # (lib, obj, set, seed) -> result; ("true", "", set, None) -> NLL
    t_start = time.perf_counter()
    # the docs' pictures are the full run's: a --quick smoke run (300 steps) must not overwrite them
    want_pictures = not args.no_pictures and not args.quick
    for name in sets:
        results[("true", "", name, None)] = {"nll": true_nll(name, data(name)[1])}
    cells = [(lib, obj, name, seed) for name in sets for seed in seeds for lib, obj in rows]
    grids: dict[str, dict[str, tuple]] = {name: {} for name in sets}

    def record(cell: tuple, res: dict, grid: tuple | None) -> None:
        lib, obj, name, seed = cell
        results[cell] = res
        if grid is not None:
            grids[name][obj] = grid
        print(f"{name:16s} {lib:9s} {obj:4s} seed {seed} {fmt(res, results[('true', '', name, None)]['nll'])}  "
              f"({res.get('cpu', float('nan')):.0f} CPU-s)", flush=True)

    def wants_grid(cell: tuple) -> bool:
        return want_pictures and cell[0] == "ebmlab" and cell[3] == seeds[0]

    if args.jobs == 1:
        for cell in cells:
            record(cell, *run_cell(*cell[:2], cell[2], args.steps, cell[3], wants_grid(cell)))
    else:
        # cells are independent and seeded, so a worker process per core gives the same numbers as one
        # process (each worker one torch thread, as here); spawn, not fork: no inherited torch state
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(run_cell, *cell[:2], cell[2], args.steps, cell[3], wants_grid(cell)): cell
                       for cell in cells}
            for fut, cell in futures.items():      # in submission order: the log reads as the serial one
                record(cell, *fut.result())
    for name in sets:
        if grids[name]:
            picture(name, grids[name])
    total = time.perf_counter() - t_start
    lines = table(results, rows, sets, seeds)
    cpu_lines = ["| library | objective | " + " | ".join(sets) + " |", "|" + "---|" * (len(sets) + 2)]
    for lib, obj in rows:
        cells = [" / ".join(f"{results[(lib, obj, s, sd)].get('cpu', float('nan')):.0f}" for sd in seeds)
                 for s in sets]
        cpu_lines.append(f"| {lib} | {obj} | " + " | ".join(cells) + " |")
    ssm_cfg = resolve_config("<array>", {"preset": "2d", "objective": "ssm"})
    recipe_floor, recipe_blur = ssm_cfg.sm_uniform, ssm_cfg.data_noise
    recipes = "; ".join(f"{o}: " + ", ".join(f"{k} {v}" for k, v in recipe(o).items()) for o in OBJECTIVES)
    seeds_note = ("" if len(seeds) == 1 else "\nWith several seeds each cell is the per-seed values (in the order of "
                  "the seeds) and their median, **med**; a failed or diverged seed counts as +inf in the median.")
    md = f"""# Training objectives on 2-D data{' (quick)' if args.quick else ''}

- command: `{command}` (with `.venv-bench/bin/python`, one torch thread)
- date: {_dt.datetime.now().isoformat(timespec='seconds')}; nproc {os.cpu_count()}; {args.jobs} worker process(es); total wall time {total / 60:.1f} min
- versions: {versions()}
- {args.steps} optimiser steps per run, training seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}; ebmlab's resolved 2-D settings per objective
  (the peers get the same batch, Adam lr, cosine schedule, noise level and noise ratio): {recipes}

Cells: **exact test NLL minus the true density's, in nats** (0 = the truth, lower is better), Z by a
{QUAD_POINTS}x{QUAD_POINTS} midpoint grid. nce cells add the learned log Z (for ebmlab: the mean over
the last 25 steps' log row) against the exact log Z of the trained network.{seeds_note}

{chr(10).join(lines)}

CPU seconds of each run (training, this process):

{chr(10).join(cpu_lines)}

Notes
- ebmlab's models carry their support box (data range + 12.5 % per side, f = -inf outside) and Z is
  taken over it; peers' Z over the data box +- 1 (mass outside is not counted, favourable to them).
- ebmlab's network has a fixed standardisation of the data in front of the same MLP; peers get the raw MLP.
- dsm learns the data blurred by N(0, sigma^2): its NLL carries that blur by design. Since 0.12 ebmlab's 2-D dsm
  preset anneals the level (sigma from 3x down to sigma by half the run, dsm_anneal_factor / dsm_anneal_until;
  results/objectives2d_dsm_curriculum_s14.md); the peers keep the fixed sigma (they have no curriculum). Since 0.16
  it also uses each point's noise as an antithetic pair +eps, -eps (dsm_antithetic: two forwards per point, ~1.4x
  the CPU-s; results/objectives2d_dsm_antithetic_s18.md); the peers draw once per point.
- ebmlab's 2-D ssm preset draws {recipe_floor:.0%} of each batch uniformly over its support box (sm_uniform,
  training/objectives.py UniformFloor) and blurs each batch by N(0, {recipe_blur}^2) (data_noise); the peers' ssm
  gets neither (they are ebmlab's, not theirs).
- The three ssm losses differ only in their directions and form, all with 1 projection per point (torchebm's
  default is 5; it gets ebmlab's 1): ebmlab and ebmkit draw v ~ N(0, I) and use the variance-reduced
  vᵀ∇s v + ½‖s‖²; torchebm draws Rademacher v and uses vᵀ∇s v + ½(vᵀs)². The peers' losses do not perturb
  the data.
- ebmkit's nce gets a single Gaussian fitted to the data as noise (its default N(0, I) is meant for
  standardised data); ebmlab's nce fits an 8-component mixture plus 10 % uniform over the box
  (training/nce.py says why). torchebm has no nce.
- Pictures: `docs/images/objectives2d/<set>.png` (true density, then ebmlab's cd, dsm, ssm, nce).
"""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(md)
    print("\n".join(lines))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
