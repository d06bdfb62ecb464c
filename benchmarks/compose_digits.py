"""Compositional generation on digits from the command line: class a, class b, a AND b, a OR b, a AND NOT b.

    .venv/bin/python benchmarks/compose_digits.py --run runs/cond                 # a conditional digits run
    .venv/bin/python benchmarks/compose_digits.py --run runs/cond --pairs 3,8 1,7 --n 16 --alpha 0.5 --and-weights 0.5,0.5

Given a conditional (or JEM) run trained on digits (``ebmlab train --data digits --labels builtin
--preset conditional --out runs/cond``), every panel is made by the command line alone, run as a
subprocess: ``ebmlab sample R --class a`` for a class on its own, and for the others
``ebmlab compose R:a R:b --op and|or|not ... --out C`` followed by ``ebmlab sample C --out x.npy``.
All panels use the same seed and the sampler defaults of ``ebmlab sample`` (the run's own kernel and
chain length); each draws ``--n-check`` samples (200) and shows the first ``--n`` (16). Writes ONE
figure ``<prefix>.png`` (a row of labelled panels per pair) and ``<prefix>.md`` with every command
and, per panel (over all ``--n-check`` samples):

- the fraction of samples that the project's digits classifier (``ebmlab.metrics.digits_features``,
  the network behind the digits FD ratio, trained on the train split only) assigns to class a, to
  class b, and to any other class, and its mean probability of a and of b. Expected: a alone -> a;
  AND -> mass on both (samples that look like a and b at once, so often ambiguous); OR -> about half
  each; a AND NOT b -> mostly a.
- the mean f under each component, f_a = logits[a] and f_b = logits[b] of the run's model.
- the same numbers for the real test digits of class a and of class b, as a reference.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} cores (shared; load average {os.getloadavg()[0]:.1f} at start), "
            f"torch {torch.__version__}, 1 thread, Python {platform.python_version()}")


def run_step(run_dir: Path) -> str:
    try:
        return (run_dir / "checkpoints" / "LATEST").read_text().strip().removeprefix("step-").lstrip("0") or "0"
    except OSError:
        return "?"


def ebmlab_exe() -> list[str]:
    """The `ebmlab` of this interpreter's environment (falls back to the module itself)."""
    exe = Path(sys.executable).with_name("ebmlab")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from ebmlab.cli import main; sys.exit(main(sys.argv[1:]))"]


class Cli:
    """Runs `ebmlab ...` as subprocesses and records each command line as the user would type it."""

    def __init__(self) -> None:
        self.exe = ebmlab_exe()
        self.log: list[str] = []

    def __call__(self, *args: str) -> None:
        self.log.append("ebmlab " + " ".join(shlex.quote(a) for a in args))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        res = subprocess.run([*self.exe, *args], capture_output=True, text=True, env=env)
        if res.returncode != 0:
            raise SystemExit(f"command failed ({res.returncode}): {self.log[-1]}\n{res.stderr.strip()}")


def panels_for_pair(cli: Cli, run: Path, a: int, b: int, work: Path, n: int, seed: int, alpha: float,
                    n_steps: int | None, and_weights: str | None = None) -> list[tuple[str, Path]]:
    """The five panels of one pair: (title, samples.npy), each made by CLI commands only."""
    extra = ["--n", str(n), "--seed", str(seed)] + (["--n-steps", str(n_steps)] if n_steps is not None else [])
    out = []
    for k in (a, b):
        x = work / f"class{k}.npy"
        if not x.exists():
            cli("sample", str(run), "--class", str(k), *extra, "--out", str(x))
        out.append((f"{k}", x))
    and_title = f"{a} AND {b}" + (f" (w {and_weights})" if and_weights else "")
    for op, title, weights in (("and", and_title, and_weights), ("or", f"{a} OR {b}", None),
                               ("not", f"{a} AND NOT {b} (alpha {alpha:g})", f"1,{alpha:g}")):
        c = work / f"{a}-{op}-{b}"
        cli("compose", f"{run}:{a}", f"{run}:{b}", "--op", op, *(["--weights", weights] if weights else []),
            "--out", str(c), "--force")
        x = work / f"{a}-{op}-{b}.npy"
        cli("sample", str(c), *extra, "--out", str(x))
        out.append((title, x))
    return out


@torch.no_grad()
def measure(x_model: torch.Tensor, a: int, b: int, logits_fn) -> dict[str, float]:
    """Classifier verdicts and mean f_a, f_b for images [N, 1, 8, 8] in the model scale [-1, 1]."""
    from ebmlab.metrics.digits_features import get_digits_classifier
    p = torch.softmax(get_digits_classifier()(x_model), 1)
    pred = p.argmax(1)
    L = logits_fn(x_model)
    return {"n": int(x_model.shape[0]), "frac_a": float((pred == a).float().mean()),
            "frac_b": float((pred == b).float().mean()), "frac_other": float(((pred != a) & (pred != b)).float().mean()),
            "both": float(((p[:, a] >= 0.1) & (p[:, b] >= 0.1)).float().mean()),
            "p_a": float(p[:, a].mean()), "p_b": float(p[:, b].mean()),
            "f_a": float(L[:, a].mean()), "f_b": float(L[:, b].mean())}


def figure(rows: list[list[tuple[str, torch.Tensor]]], path: Path, title: str) -> Path:
    """One row of panels per pair; each panel a grid of digits (model scale), titled."""
    from ebmlab.viz.plots import new_figure, save_figure
    n_cols = max(len(r) for r in rows)
    fig = new_figure((2.3 * n_cols, 2.5 * len(rows) + 0.5))
    fig.set_layout_engine("constrained")                 # room for the titles and the suptitle
    for i, row in enumerate(rows):
        for j, (name, x) in enumerate(row):
            ax = fig.add_subplot(len(rows), n_cols, i * n_cols + j + 1)
            ax.imshow(mosaic(x), cmap="gray_r", vmin=-1, vmax=1, interpolation="nearest")
            ax.set_title(name, fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, path, dpi=110)


def mosaic(x: torch.Tensor, pad: int = 1) -> np.ndarray:
    """[N, 1, H, W] -> one 2-D array, ~sqrt(N) images per row, separated by background."""
    a = x[:, 0].clamp(-1, 1).numpy()
    n, h, w = a.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), -0.6)     # light grey lines between digits
    for k in range(n):
        r, c = divmod(k, cols)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = a[k]
    return out


def table(results: list[dict], a: int, b: int) -> str:
    lines = [f"| panel | n | frac → {a} | frac → {b} | frac → other | both ≥ 0.1 | mean p({a}) | mean p({b}) "
             f"| mean f_{a} | mean f_{b} |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['panel']} | {r['n']} | {r['frac_a']:.2f} | {r['frac_b']:.2f} | {r['frac_other']:.2f} | {r['both']:.2f} | "
                     f"{r['p_a']:.2f} | {r['p_b']:.2f} | {r['f_a']:.2f} | {r['f_b']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a conditional or JEM run trained on digits")
    ap.add_argument("--pairs", nargs="+", default=["3,8", "0,6"], metavar="A,B", help="class pairs (default 3,8 0,6)")
    ap.add_argument("--n", type=int, default=16, help="samples shown per panel (default 16)")
    ap.add_argument("--n-check", type=int, default=200,
                    help="samples drawn per panel for the numbers (default 200; the panel shows the first --n)")
    ap.add_argument("--alpha", type=float, default=0.25, help="strength of NOT: f_a - alpha f_b (default 0.25; 0.5 left speckled backgrounds on a 1250-step run)")
    ap.add_argument("--and-weights", default=None, metavar="W_A,W_B",
                    help="--weights of the AND panel (default: none, the plain product f_a + f_b)")
    ap.add_argument("--seed", type=int, default=0, help="sampling seed, the same for every panel")
    ap.add_argument("--n-steps", type=int, default=None, help="chain length (default: ebmlab sample's default)")
    ap.add_argument("--out-prefix", default=str(HERE / "results" / "compose_digits"),
                    help="writes PREFIX.png and PREFIX.md (default benchmarks/results/compose_digits)")
    ap.add_argument("--work", default=None, help="folder for the composite runs and .npy samples (default: a new "
                                                 "temporary folder, removed at the end)")
    ap.add_argument("--note", default="", help="a line put at the top of the markdown (e.g. 'short dev run')")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    run = Path(args.run).resolve()
    pairs = []
    for p in args.pairs:
        try:
            a, b = (int(v) for v in p.split(","))
        except ValueError:
            ap.error(f"--pairs takes A,B with two class numbers, got {p!r}")
        pairs.append((a, b))

    import ebmlab
    from ebmlab.models.conditional import ConditionalEnergyModel
    from ebmlab.data.images import load_digits_images, load_digits_labels
    from ebmlab.tasks.open import open_run
    r = open_run(run)
    if not isinstance(r.model, ConditionalEnergyModel) or list(r.data["event_shape"]) != [1, 8, 8]:
        raise SystemExit(f"{run} is not a conditional digits run (train one with: ebmlab train --data digits "
                         "--labels builtin --preset conditional --out DIR)")
    model = ebmlab.load(run)
    to_model = r.scaling.to_model
    x_test, y_test = load_digits_images("test", model_scale=True), load_digits_labels("test")

    started, mach = _dt.datetime.now().strftime("%Y-%m-%d %H:%M"), machine()
    t0 = time.perf_counter()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="compose_digits-"))
    work.mkdir(parents=True, exist_ok=True)
    cli = Cli()
    rows, sections = [], []
    for a, b in pairs:
        panels = panels_for_pair(cli, run, a, b, work, max(args.n, args.n_check), args.seed, args.alpha, args.n_steps, args.and_weights)
        row, results = [], []
        for name, path in panels:
            x = to_model(torch.from_numpy(np.load(path)))
            row.append((name, x[:args.n]))
            results.append({"panel": name, **measure(x, a, b, model.logits)})
        for k in (a, b):
            results.append({"panel": f"real test digits of class {k}", **measure(x_test[y_test == k], a, b, model.logits)})
        rows.append(row)
        sections.append((a, b, results))
        print(f"\npair {a},{b}\n" + table(results, a, b), flush=True)
    seconds = time.perf_counter() - t0
    prefix = Path(args.out_prefix)
    title = (f"{run.name} (step {run_step(run)}): the first {args.n} of {max(args.n, args.n_check)} samples "
             f"per panel, seed {args.seed}") + (f"\n{args.note[:110]}" if args.note else "")
    png = figure(rows, prefix.with_suffix(".png"), title)
    command = ("python benchmarks/compose_digits.py "
               + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))).rstrip()
    cmds = "\n".join(cli.log).replace(str(work), "$WORK")
    body = "\n\n".join(f"### {a} and {b}\n\n{table(res, a, b)}" for a, b, res in sections)
    note = f"> **{args.note}**\n\n" if args.note else ""
    w_and = [float(v) for v in args.and_weights.split(",")] if args.and_weights else [1.0, 1.0]
    and_f = " + ".join(name if w == 1 else f"{w:g} {name}" for w, name in zip(w_and, ("f_a", "f_b")))
    md = f"""# Compositional generation on digits (class AND / OR / NOT from the command line)

{note}Command: `{command}`  
Run: `{run}` ({r.config.objective}, trained {run_step(run)} of {r.config.steps} steps)  
Date: {started}  
Machine: {mach}; wall time {seconds:.0f} s

![{', '.join(f'{a} and {b}' for a, b in pairs)}: class a, class b, AND, OR, AND NOT]({png.name})

Each panel is `ebmlab sample` run on a class (`--class a`) or on a composite made by `ebmlab compose`
from two classes of the run (`R:a` = f(x, a) = logits[a]): AND f = {and_f} (product), OR
f = log(½ e^f_a + ½ e^f_b) (mixture; the classes of one run share the joint's normaliser, so no log Z is
needed), AND NOT f = f_a − {args.alpha:g} f_b (contrast). Same seed, same kernel and chain length for
every panel (`ebmlab sample`'s defaults: the run's training chain).

Checks: "frac → k" = fraction of the panel's samples that the project's digits classifier
(`ebmlab.metrics.digits_features`, ~97 % test accuracy, trained on the train split only) assigns to
class k; "both ≥ 0.1" the fraction to which it gives p(a) ≥ 0.1 and p(b) ≥ 0.1 at once (a blend);
"mean p(k)" its mean probability of k; "mean f_k" = mean logits[k] of the run's model
(higher = more likely under class k). Expected: AND puts mass on both (ambiguous), OR about half each,
AND NOT mostly a. The last two rows are real test digits, for reference.

{body}

Commands, in order (`$WORK` is the script's scratch folder, `--work`; `--force` only replaces the
script's own composite folders there):

```bash
{cmds}
```
"""
    md_path = prefix.with_suffix(".md")
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(md)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nwritten {png} and {md_path} ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
