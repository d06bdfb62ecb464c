"""Conditional EBM and JEM vs the unconditional digits EBM at an equal CPU budget.

    .venv/bin/python benchmarks/jem_digits.py                       # 600 s of process CPU per row
    .venv/bin/python benchmarks/jem_digits.py --quick               # 60 s per row, results/jem_digits_quick.*
    .venv/bin/python benchmarks/jem_digits.py --report-only         # rebuild table/PNG from finished rows

Rows, each trained through ``ebmlab.training.api.start_run`` exactly as ``ebmlab train`` would:
  digits        the unconditional ``digits`` preset (SmallConvNet, short-run CD);
  conditional   ``--preset conditional --labels builtin``: f(x, y) = logits[y] of a DigitsClassifier,
                CD per class with negatives from class-conditional short-run chains;
  jem           ``--preset jem --labels builtin``: cross-entropy + CD on f(x) = logsumexp logits,
                negatives from a replay buffer (JEM_PRESET numbers).

Measures (on the 360 held-out test digits; train/test split as ``load_digits_images``):
  test accuracy   argmax_y logits(x) — for the conditional model that is argmax_y f(x, y), for JEM its
                  classifier p(y|x);
  FD ratio        ``ebmlab.metrics.frechet.fd_ratio(samples, x_train, x_test)["ratio"]`` (1.0 = real
                  data) of 1437 samples (= train size) drawn from FRESH uniform noise with the run's own
                  sampling default (``ebmlab sample``: the training kernel, K steps for short-run models, 100 for persistent ones). For labelled
                  rows the model itself is the marginal f(x) = logsumexp_y logits; they also report
                  "per class": chain i samples p(x | y_i) with y_i the i-th training label, so the
                  classes come in the data's proportions.
Budget: ``time.process_time`` of each row's own process spent in ``train_step`` (1 torch thread;
evaluation excluded); rows run in parallel subprocesses, as in ``benchmarks/digits.py`` (whose
``CpuClock`` and data loader this reuses). Checkpoints at 1/4, 1/2 and all of the budget (``--quick``:
only at the end, since evaluating a labelled row costs ~20 CPU-s).
Also writes a PNG with one row of 8 samples per class (``sample --class k``) for the labelled rows.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import sys
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
if str(ROOT.parent) not in sys.path:            # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(ROOT.parent))

from benchmarks.digits import FRACTIONS, CpuClock, digits, run_rows, tile_digits  # noqa: E402

ROWS = ("digits", "conditional", "jem")
LABELLED = ("conditional", "jem")
SAMPLE_SEED = 1000


# ----------------------------------------------------------------------------- one row (worker process)
def _run_view(trainer):
    from ebmlab.tasks.open import Run
    return Run(Path("."), trainer.model, trainer.config, trainer.data_desc)


def sample_noise(trainer, n: int, seed: int, klass: int | None = None) -> torch.Tensor:
    """``ebmlab sample``'s default: fresh uniform noise, the training kernel (K steps for short-run, else 100)."""
    from ebmlab.tasks.sample import draw_samples
    was = trainer.model.training
    x, _, _ = draw_samples(_run_view(trainer), n, seed=seed, klass=klass)
    trainer.model.train(was)
    return x


def sample_per_class(trainer, labels: torch.Tensor, seed: int) -> torch.Tensor:
    """Chain i samples p(x | labels[i]) from uniform noise: the same kernel and steps as ``sample``."""
    from ebmlab.models.conditional import ChainClasses
    from ebmlab.tasks.sample import default_sample_steps
    n_steps = default_sample_steps(trainer.config, is_vector=False)
    from ebmlab.samplers.run import run_chains
    from ebmlab.training.negatives import make_init_fn, sampler_from_config
    view = ChainClasses(trainer.model)
    view.labels = labels
    g = torch.Generator().manual_seed(seed)
    x0 = make_init_fn(trainer.data_desc, "uniform", torch.empty(0), torch.device("cpu"))(labels.shape[0], g)
    x, _ = run_chains(sampler_from_config(trainer.config, view, trainer.data_desc), x0, n_steps, g)
    return x


def run_worker(row: str, budget: float, seed: int, workdir: Path, fractions: tuple = FRACTIONS) -> None:
    torch.set_num_threads(1)
    from ebmlab.metrics.frechet import fd_ratio
    from ebmlab.training.api import start_run
    x_train, x_test = digits()
    n = len(x_train)
    fd_ratio(x_train[:64], x_train, x_test)           # train the feature net now, outside the budget
    labels = {"labels": "builtin"} if row in LABELLED else {}
    # a real run directory (checkpointed at every evaluation) so the trained models can be reused by
    # `ebmlab sample/eval/compose`, benchmarks/ood_digits.py and benchmarks/compose_digits.py
    trainer, model = start_run("digits", workdir / "runs" / row, force=True, preset=row, steps=10 ** 8,
                               seed=seed, **labels)
    cfg = trainer.config
    out = {"row": row, "budget_cpu_s": budget, "checkpoints": [], "status": "running",
           "recipe": (f"{cfg.objective} objective, {type(model.net).__name__}, {cfg.negatives} "
                      f"({cfg.mcmc_steps} steps, step {cfg.step_size:g}, noise {cfg.noise_scale}), lr {cfg.lr:g} "
                      f"warm-up {cfg.warmup_steps}, batch {cfg.batch_size}, data noise {cfg.data_noise:g}"
                      + (f", alpha_cd {cfg.alpha_cd:g}" if cfg.objective == "jem" else ""))}
    if row in LABELLED:
        ds = trainer.dataset
        y_train, y_test = ds.y_train, ds.y_test
    clock, wall0 = CpuClock(), time.time()
    tag = row
    try:
        for target in [f * budget for f in fractions]:
            clock.start()
            while clock.now() < target:
                trainer.train_step()
                trainer.step += 1
            clock.stop()
            ck = {"cpu_s": round(clock.used, 1), "steps": trainer.step, "wall_s": round(time.time() - wall0, 1)}
            trainer.save()
            t_eval = time.process_time()
            x = sample_noise(trainer, n, SAMPLE_SEED)
            ck["fd_noise"] = fd_ratio(x, x_train, x_test)["ratio"]
            saved = {"noise": x[:64].clone()}
            if row in LABELLED:
                with torch.no_grad():
                    pred = model.predict(x_test)
                ck["test_accuracy"] = float((pred == y_test).double().mean())
                ck["fd_per_class"] = fd_ratio(sample_per_class(trainer, y_train, SAMPLE_SEED), x_train, x_test)["ratio"]
                saved["per_class"] = torch.cat([sample_noise(trainer, 8, SAMPLE_SEED + k, klass=k)
                                                for k in range(model.n_classes)])
            ck["eval_cpu_s"] = round(time.process_time() - t_eval, 1)
            out["checkpoints"].append(ck)
            torch.save(saved, workdir / f"{tag}.pt")
            _write_json(workdir / f"{tag}.json", out)
            print(f"[{row}] {ck}", flush=True)
        out["status"] = "finished"
    except Exception as e:            # a diverged or crashed row is a result too
        out["status"] = f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        traceback.print_exc()
    _write_json(workdir / f"{tag}.json", out)


def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- the report
def machine() -> str:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
               platform.processor())
    return (f"{cpu}, {os.cpu_count()} cores (shared; load average {os.getloadavg()[0]:.1f} at start), "
            f"torch {torch.__version__}, 1 thread per row, Python {platform.python_version()}")


def report(workdir: Path, rows: list[str], prefix: Path, meta: dict) -> None:
    results = []
    for row in rows:
        p = workdir / f"{row}.json"
        results.append(json.loads(p.read_text()) if p.exists() else {"row": row, "status": "not run", "checkpoints": []})
    budget = max((r.get("budget_cpu_s", 0) for r in results), default=0)
    fmt = lambda v, d=2: "—" if v is None else f"{v:.{d}f}"
    lines = [f"# Conditional EBM and JEM on digits at equal CPU budget ({budget:.0f} s of process CPU time per row)",
             "", f"Command: `{meta['command']}`  ", f"Date: {meta['started']}  ", f"Machine: {meta['machine']}", "",
             "**Test accuracy**: argmax_y logits(x) on the 360 held-out digits (conditional: argmax_y f(x, y); "
             "JEM: its classifier p(y|x)). **FD ratio** = FD(samples, test) / FD(train, test) in the digits-"
             "classifier features (1.0 = real data, lower is better) of 1437 samples from fresh uniform noise "
             "with `ebmlab sample`'s default (the training kernel for K steps on short-run models — 60 for `conditional` — and 100 steps on persistent ones — `jem`): **marginal** samples the model "
             "itself (for labelled rows f(x) = logsumexp_y logits), **per class** runs chain i on p(x | y_i) with "
             "y_i the training labels. Budget = `time.process_time()` of the row's process spent training "
             "(evaluation excluded), 1 torch thread.", "",
             "| row | status | steps done | test accuracy | FD ratio marginal | FD ratio per class | "
             f"accuracy / FD marginal at {FRACTIONS[0]:g}, {FRACTIONS[1]:g} budget | wall s |",
             "|---|---|---:|---:|---:|---:|---|---:|"]
    for r in results:
        cks = r["checkpoints"]
        last = cks[-1] if cks else {}
        prog = "; ".join(f"{fmt(c.get('test_accuracy'), 3)} / {fmt(c.get('fd_noise'))} ({c['steps']} steps)"
                         for c in cks[:-1]) or "—"
        status = r["status"] if r["status"] in ("finished", "not run") else (
            f"at {last.get('cpu_s', 0):.0f} s" if r["status"] == "running" else r["status"])
        lines.append(f"| {r['row']} | {status} | {last.get('steps', '—')} | {fmt(last.get('test_accuracy'), 3)} | "
                     f"{fmt(last.get('fd_noise'))} | {fmt(last.get('fd_per_class'))} | {prog} | "
                     f"{last.get('wall_s', '—')} |")
    if any(r["status"] != "finished" for r in results):
        lines += ["", "**PARTIAL**: some rows had not finished; their numbers are from the last checkpoint reached."]
    lines += ["", "Recipes:", ""] + [f"- `{r['row']}`: {r.get('recipe', '')}" for r in results]
    lines += ["", f"Samples: `{prefix.name}.png` — for each labelled row one line of 8 samples per class "
              "(`ebmlab sample --class k`, classes 0-9 top to bottom).", ""]
    prefix.parent.mkdir(parents=True, exist_ok=True)
    prefix.with_suffix(".md").write_text("\n".join(lines))
    _grid(workdir, results, prefix.with_suffix(".png"))
    print("\n".join(lines))


def _grid(workdir: Path, results: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = []
    for r in results:
        p = workdir / f"{r['row']}.pt"
        if r["row"] in LABELLED and p.exists():
            d = torch.load(p)
            last = r["checkpoints"][-1] if r["checkpoints"] else {}
            panels.append((f"{r['row']} (acc {last.get('test_accuracy', float('nan')):.3f})", d["per_class"]))
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 4.2), squeeze=False)
    for ax, (title, x) in zip(axes.flat, panels):
        k = x.shape[0] // 8
        img = tile_digits(x, k)
        ax.imshow(img.numpy(), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_yticks([10 * i + 4.5 for i in range(k)], [str(i) for i in range(k)])
        ax.set_xticks([])
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-seconds", type=float, default=600.0, help="process CPU seconds of training per row")
    ap.add_argument("--quick", action="store_true", help="60 s per row (unless --budget-seconds), "
                                                         "written to results/jem_digits_quick.*")
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--jobs", type=int, default=0, help="rows run at once (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="results prefix (default results/jem_digits[_quick])")
    ap.add_argument("--workdir", default=None, help="where rows write JSON/samples (default /tmp/ebmlab-<prefix>)")
    ap.add_argument("--report-only", action="store_true", help="only rebuild the table/PNG from --workdir")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    budget = 60.0 if args.quick and args.budget_seconds == 600.0 else args.budget_seconds
    prefix = Path(args.out) if args.out else ROOT / "results" / ("jem_digits_quick" if args.quick else "jem_digits")
    workdir = Path(args.workdir or f"/tmp/ebmlab-{prefix.name}")
    workdir.mkdir(parents=True, exist_ok=True)
    if args.worker:
        run_worker(args.worker, budget, args.seed, workdir, (1.0,) if args.quick else FRACTIONS)
        return
    rows = [r for r in args.rows.split(",") if r]
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        ap.error(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")
    meta_p = workdir / "meta.json"
    if args.report_only and meta_p.exists():
        meta = json.loads(meta_p.read_text())
    else:
        meta = {"command": "python benchmarks/jem_digits.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
                "started": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "machine": machine()}
        _write_json(meta_p, meta)
    if not args.report_only:
        run_rows(__file__, rows, workdir, budget, args.seed, args.jobs, ("--quick",) if args.quick else ())
    report(workdir, rows, prefix, meta)


if __name__ == "__main__":
    main()
