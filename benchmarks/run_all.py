"""One benchmark command: run every benchmark script in turn, then assemble benchmarks/RESULTS.md.

    .venv-bench/bin/python -m benchmarks run [--quick] [--only density,speed,ais,digits,jem,curse,ais-trained,compose,ood,inpaint,compose-digits]
    .venv-bench/bin/python -m benchmarks assemble        # only rebuild RESULTS.md from results/*.md

Each part is its own script, run as a subprocess from the repository root with this Python; each
writes its own markdown (with the command line that made it) into benchmarks/results/. ``run``
records every part's wall time and exit status in results/run_all_timings.json; ``assemble`` copies
each results file verbatim (headings moved two levels down) under a header that names the date,
the machine and the command, and adds the timings table. Quick runs are labelled as such.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
TIMINGS = "run_all_timings.json"
QUICK_BUDGET_S = 600


@dataclass(frozen=True)
class Part:
    key: str                 # the name --only takes
    title: str               # section title in RESULTS.md
    script: str              # benchmarks/<script>
    quick_args: tuple        # arguments of the quick run
    full_args: tuple         # arguments of the full run
    pattern: str             # glob(s) of its results files in results/, several separated by "|"
    note: str = ""           # one line under the section title


_DIGITS, _DIGITS_QUICK = "/tmp/ebmlab-digits-digits/runs", "/tmp/ebmlab-digits-digits_quick/runs"
_JEM, _JEM_QUICK = "/tmp/ebmlab-jem_digits/runs", "/tmp/ebmlab-jem_digits_quick/runs"

PARTS = (
    Part("density", "2-D density quality (exact test NLL)", "density2d.py", ("--quick",), (), "density2d.md|density2d_quick.md|density2d_part*.md",
         "Issue 2: ebmlab vs ebmkit, torchebm, a hand-written loop, scikit-learn and the true density."),
    Part("speed", "Sampler speed", "sampler_speed.py", ("--quick",), (), "sampler_speed*.md",
         "Issue 2: Langevin time per step against a hand-written `torch.autograd.grad` loop, ebmkit and torchebm."),
    # ais_validation.py has no --quick: at the default budget it takes about half a minute
    Part("ais", "AIS validation on known log Z", "ais_validation.py", (), (), "ais_validation*.md",
         "Issue 4: AIS error and reported stderr on Gaussians (d = 2..100) and a two-mode mixture."),
    Part("digits", "Image quality (digits)", "digits.py", ("--quick",), (), "digits*.md",
         "Image issue: Fréchet distance ratio of samples at an equal CPU budget."),
    Part("jem", "Conditional EBM and JEM (digits)", "jem_digits.py", ("--quick",), (), "jem_digits*.md",
         "Issue 6: test accuracy and FD ratio of conditional and JEM models against the unconditional digits EBM."),
    Part("curse", "Curse of dimensionality", "curse.py", ("--quick",), (), "curse*.md",
         "Issue 4: cost of log Z by quadrature vs AIS, and AIS error, against dimension."),
    Part("ais-trained", "AIS on trained 2-D models vs quadrature", "ais_trained.py", ("--quick",), (),
         "ais_trained*.md", "Issue 4: agreement of AIS with exact quadrature on trained models (target 0.05 nats)."),
    Part("compose", "Composition in 2-D", "compose2d.py", ("--quick",), (), "compose2d*.md",
         "Composition issue: a product of trained 2-D models normalised by quadrature, and samples from it."),
    # the next two use the run directories that the digits and jem parts leave in their work folders
    Part("ood", "Out-of-distribution AUROC (digits)", "ood_digits.py",
         (f"{_DIGITS_QUICK}/ebmlab_digits", f"{_JEM_QUICK}/conditional", f"{_JEM_QUICK}/jem",
          "--out", "benchmarks/results/ood_digits_quick.md"),
         (f"{_DIGITS}/ebmlab_digits", f"{_JEM}/conditional", f"{_JEM}/jem"), "ood_digits*.md",
         "Composition issue: AUROC of f and of the score norm against uniform noise, shuffled pixels and photo "
         "patches, for the digits, conditional and JEM models trained by the digits and jem parts."),
    Part("inpaint", "Inpainting held-out digits", "inpaint_digits.py",
         (f"{_DIGITS_QUICK}/ebmlab_digits", "--out", "benchmarks/results/inpaint_digits_quick.md"),
         (f"{_DIGITS}/ebmlab_digits",), "inpaint_digits*.md",
         "Image issue: fill error of the digits model trained by the digits part against filling with the train mean."),
    Part("compose-digits", "Compositional generation on digits", "compose_digits.py",
         ("--run", f"{_JEM_QUICK}/conditional", "--out-prefix", "benchmarks/results/compose_digits_quick",
          "--note", "quick run: the conditional model of the quick jem part"),
         ("--run", f"{_JEM}/conditional"), "compose_digits*.md",
         "Composition issue: AND / OR / NOT of two classes of the conditional digits model, every panel by the CLI."),
    Part("user-network", "A user's network and data pipeline", "user_network.py", ("--quick",), (), "user_network*.md",
         "Issue 12: a user's nn.Module through ebmlab.train against the built-in network (exact NLL), and the "
         "per-step cost of Dataset / DataLoader feeding."),
    Part("distributed", "Training throughput: processes vs threads", "distributed_speed.py", ("--quick",), (),
         "distributed_speed*.md",
         "Issue 13: steps/s of a short-run image EBM with 2 processes x 1 thread (`--nproc 2`) against 1 process "
         "x 1 and x 2 threads at the same global batch."),
    Part("compile", "Compiled vs eager Langevin", "compile_speed.py", ("--quick",), (), "compile_speed*.md|compile_probes*.md",
         "Issue 13: `--compile` (torch.compile of the density) against eager, time per step and compile time; "
         "compile_probes.md (benchmarks/compile_probes.py, run by hand): the variants tried for the 0.8x target."),
    Part("malloc", "Keeping freed memory in the process", "malloc_speed.py", ("--quick",), (), "malloc_speed*.md",
         "Every `ebmlab` command keeps freed memory (glibc mallopt): eager runs with and without it, paired processes."),
    Part("distributed-quality", "Density quality: 2 processes vs 1", "distributed_quality.py", ("--quick",), (),
         "distributed_quality*.md",
         "Issue 13: exact test NLL of the default 2-D recipe trained with `--nproc 2` against one process."),
    Part("unseen-2d", "The default 2-D recipe on unseen many-mode sets", "density2d_unseen.py", ("--quick",), (),
         "density2d_unseen*.md|density2d_default*.md",
         "Generalisation: exact NLL gap of the default recipe on Gaussian mixtures it was never tuned on."),
    Part("discrete", "Discrete EBMs on binary data (exact NLL)", "discrete.py", ("--quick",), (), "discrete*.md",
         "Issue 14: exact test NLL on 20-bit data of known density and on 4x4 binary digits: ebmlab's default and "
         "RBM against scikit-learn's BernoulliRBM, an EM mixture of Bernoullis and independent bits; a Potts target "
         "(categorical data); the full 8x8 binary digits with AIS brackets; sampler speed and log MMD versus steps."),
    Part("faces", "Faces from noise (lfw_subset)", "faces.py", ("--quick",), (), "faces*.md",
         "Issue 17: `ebmlab train --data faces` (no flags), 100 samples: face fraction, diversity, contrast against "
         "a blurred mean face and uniform noise; the trajectory and nearest-training-face figures."),
    Part("objectives", "Training objectives on 2-D data (exact test NLL)", "objectives2d.py", ("--quick",), (),
         "objectives2d*.md",
         "Issue 15: ebmlab's cd, dsm, ssm and nce against ebmkit's and torchebm's dsm / ssm / nce on the same "
         "network and step count."),
    Part("objectives-digits", "Training objectives on the digits (FD ratio at equal CPU)", "objectives_digits.py",
         ("--quick",), (), "objectives_digits*.md",
         "Issue 15: cd (the digits preset), dsm with annealed Langevin and drl, samples from noise, FD ratio in the "
         "digits-classifier features at an equal CPU budget."),
    Part("objectives-vector", "Training objectives on vector data (test NLL by AIS)", "objectives_vector.py",
         ("--quick",), (), "objectives_vector*.md",
         "Issue 15: ebmlab's cd, dsm, ssm and nce by default on 4-Gaussian mixtures in d = 8 and 16 of known density: "
         "test NLL gap with log Z by AIS, and the model's mode weights by importance sampling."),
    Part("training-speed", "Training time per step (2-D)", "training_speed.py", ("--quick",), (), "training_speed*.md",
         "ebmlab.train's time per optimiser step for dsm, ssm, nce and cd against a plain loop on the same model (the "
         "floor) and ebmkit's / torchebm's own losses, interleaved in one process."),
)
BY_KEY = {p.key: p for p in PARTS}


# ----------------------------------------------------------------------------- machine
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> str:
    from importlib import metadata
    out = [f"Python {platform.python_version()}"]
    for dist in ("torch", "ebmlab", "ebmkit", "torchebm", "scikit-learn"):
        try:
            if dist == "ebmlab":     # a checkout's pyproject.toml: an editable install's metadata keeps its install-time number
                import ebmlab
                out.append(f"ebmlab {ebmlab.__version__}")
                continue
            out.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            out.append(f"{dist} not installed")
    return ", ".join(out)


def machine() -> str:
    try:
        import torch
        threads = f"torch default threads {torch.get_num_threads()}"
    except ImportError:
        threads = "torch not importable"
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (f"{cpu_model()}, nproc {os.cpu_count()}, {platform.system()} {platform.machine()}; {threads} "
            f"(each script sets its own thread count and states it); load average now {load} (the machine is shared)")


# ----------------------------------------------------------------------------- run
def part_command(part: Part, quick: bool) -> list[str]:
    return [sys.executable, str(Path("benchmarks") / part.script), *(part.quick_args if quick else part.full_args)]


def run(keys: list[str], quick: bool, results: Path = RESULTS, dry_run: bool = False, assemble_after: bool = True,
        invocation: str | None = None) -> int:
    timings_path = results / TIMINGS
    record = json.loads(timings_path.read_text()) if timings_path.exists() else {"parts": {}}
    record.update(command=invocation or "python -m benchmarks run", quick=quick,
                  started=_dt.datetime.now().isoformat(timespec="seconds"))
    worst = 0
    t_all = time.perf_counter()
    for key in keys:
        part = BY_KEY[key]
        cmd = part_command(part, quick)
        shown = " ".join(shlex.quote(c) for c in ["python", *cmd[1:]])
        print(f"\n=== [{key}] {shown}", flush=True)
        if dry_run:
            continue
        t0 = time.perf_counter()
        rc = subprocess.call(cmd, cwd=ROOT)
        sec = time.perf_counter() - t0
        worst = worst or rc
        record["parts"][key] = dict(command=shown, seconds=round(sec, 1), rc=rc, quick=quick,
                                    finished=_dt.datetime.now().isoformat(timespec="seconds"))
        print(f"=== [{key}] exit {rc}, {sec:.0f} s", flush=True)
        results.mkdir(parents=True, exist_ok=True)
        timings_path.write_text(json.dumps(record, indent=2))
    if dry_run:
        return 0
    total = time.perf_counter() - t_all
    record["total_seconds"] = round(total, 1)
    record["parts_run"] = keys
    timings_path.write_text(json.dumps(record, indent=2))
    print(f"\n=== all parts: {total / 60:.1f} min" + (f" (quick budget {QUICK_BUDGET_S / 60:.0f} min)" if quick else ""))
    if assemble_after:
        assemble(results, HERE / "RESULTS.md", invocation=record["command"])
    return worst


# ----------------------------------------------------------------------------- assemble
def _quick(path: Path, text: str) -> bool:
    head = text.splitlines()[:8]
    return ("_quick" in path.stem or (bool(head) and "(quick)" in head[0])
            or any("--quick" in line for line in head))


def _demote(text: str) -> str:
    """Move every markdown heading two levels down (outside code fences), so it nests under its section."""
    out, fence = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
        if not fence and re.match(r"#{1,4} ", line):
            line = "##" + line
        out.append(line)
    return "\n".join(out).rstrip() + "\n"


def written_at(path: Path) -> float:
    """When a results file was written (seconds since the epoch): its last commit's time while git holds it
    unchanged — a clone or checkout stamps every file with the moment it was made, which said "written today"
    of runs days old and reordered the newest-first lists — else (new, changed, no git) the file's mtime."""
    try:
        kw = dict(cwd=path.parent, capture_output=True, text=True, timeout=30)
        changed = subprocess.run(["git", "status", "--porcelain", "--", path.name], **kw)
        committed = subprocess.run(["git", "log", "-1", "--format=%ct", "--", path.name], **kw)
        if changed.returncode == 0 and not changed.stdout.strip() and committed.stdout.strip():
            return float(committed.stdout.strip())
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    return path.stat().st_mtime


def ordered_files(part: Part, results: Path) -> list[tuple[Path, bool, float]]:
    """Its results files with their quick flag and time written: full runs first, newest first; then quick runs,
    newest first."""
    files = [p for pattern in part.pattern.split("|") for p in results.glob(pattern) if p.is_file()]
    tagged = [(p, _quick(p, p.read_text(errors="replace")), written_at(p)) for p in files]
    return sorted(tagged, key=lambda t: (t[1], -t[2], t[0].name))


def _timings_table(record: dict) -> list[str]:
    parts = record.get("parts", {})
    if not parts:
        return []
    lines = ["| part | command | wall time | exit status | finished |", "|---|---|---:|---:|---|"]
    for p in PARTS:
        r = parts.get(p.key)
        if r:
            lines.append(f"| {p.key} | `{r['command']}` | {r['seconds'] / 60:.1f} min | {r['rc']} | {r['finished']} |")
    total = record.get("total_seconds")
    tail = []
    if total is not None:
        mode = "quick" if record.get("quick") else "full"
        parts_run = ", ".join(record.get("parts_run", []))
        tail = ["", f"Last `{record.get('command')}` ({mode}; parts {parts_run}) started {record.get('started')} "
                    f"and took {total / 60:.1f} min in all"
                + (f" (the quick budget is {QUICK_BUDGET_S / 60:.0f} min on 2 CPU cores)." if record.get("quick") else ".")]
    return lines + tail


def assemble(results: Path = RESULTS, out: Path = HERE / "RESULTS.md", invocation: str | None = None) -> Path:
    invocation = invocation or "python -m benchmarks assemble"
    now = _dt.datetime.now().isoformat(timespec="seconds")
    timings_path = results / TIMINGS
    record = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    rel = os.path.relpath(results, out.parent)
    lines = [
        "# ebmlab benchmark results",
        "",
        f"- assembled: {now} by `{invocation}` (run from the repository root with `.venv-bench/bin/python`)",
        f"- machine: {machine()}",
        f"- versions: {versions()}",
        "- regenerate everything: `python -m benchmarks run` (full) or `python -m benchmarks run --quick`; "
        "one part: `--only density,speed,ais,digits,curse,ais-trained`; rebuild this page only: "
        "`python -m benchmarks assemble`",
        "- every section below is copied verbatim from its file in `benchmarks/results/` (headings two levels "
        "down) and carries the exact command line and machine of the run that made it; where a part has "
        "several files, full runs come first (newest first), then quick runs, which are labelled.",
        "",
    ]
    timing = _timings_table(record)
    if timing:
        lines += ["## Time each part took (`python -m benchmarks run`)", "", *timing, ""]
    lines += ["## Contents", ""]
    lines += [f"- [{p.title}](#{_anchor(p.title)})" for p in PARTS]
    lines.append("")
    for part in PARTS:
        lines += [f"## {part.title}", "", part.note, ""]
        files = ordered_files(part, results)
        if not files:
            cmd = " ".join(["python", f"benchmarks/{part.script}", *part.full_args])
            lines += [f"_Not run yet_: no `{rel}/{part.pattern}`. Make it with `{cmd}` "
                      f"or `python -m benchmarks run --only {part.key}`.", ""]
            continue
        for path, quick, written in files:
            text = path.read_text(errors="replace")
            label = ("**Quick run** (`--quick`: a reduced budget for a fast check; not the headline numbers)"
                     if quick else "**Full run**")
            stamp = _dt.datetime.fromtimestamp(written).isoformat(timespec="seconds")
            lines += [f"{label} — from `{rel}/{path.name}` (written {stamp})", ""]
            lines.append(_demote(text))
            png = path.with_suffix(".png")
            if png.exists():
                lines += [f"![{png.name}]({rel}/{png.name})", ""]
    out.write_text("\n".join(lines).rstrip() + "\n")
    print(f"written {out}")
    return out


def _anchor(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


# ----------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the benchmark scripts in turn, then assemble RESULTS.md",
                       description="Run each benchmark script as a subprocess (from the repository root), "
                                   "each writing its markdown into benchmarks/results/, then assemble "
                                   "benchmarks/RESULTS.md. Use the benchmark environment's python "
                                   "(.venv-bench: it has the peers).")
    r.add_argument("--quick", action="store_true",
                   help=f"pass --quick to every part (ais_validation has none); aims at {QUICK_BUDGET_S // 60} min on 2 CPU cores")
    r.add_argument("--only", default=",".join(BY_KEY),
                   help=f"comma list of parts, in this order by default: {','.join(BY_KEY)}")
    r.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    r.add_argument("--no-assemble", action="store_true", help="do not rebuild RESULTS.md afterwards")
    a = sub.add_parser("assemble", help="only rebuild RESULTS.md from the existing results files")
    a.add_argument("--results", default=str(RESULTS), help="folder of results/*.md (default benchmarks/results)")
    a.add_argument("--out", default=str(HERE / "RESULTS.md"), help="output (default benchmarks/RESULTS.md)")
    args = ap.parse_args(argv)
    invocation = "python -m benchmarks " + " ".join(shlex.quote(x) for x in argv)
    if args.cmd == "assemble":
        assemble(Path(args.results), Path(args.out), invocation=invocation)
        return 0
    keys = [k.strip() for k in args.only.split(",") if k.strip()]
    bad = [k for k in keys if k not in BY_KEY]
    if bad:
        ap.error(f"unknown part(s) {', '.join(bad)}; choose from {', '.join(BY_KEY)}")
    return run(keys, args.quick, dry_run=args.dry_run, assemble_after=not args.no_assemble, invocation=invocation)


if __name__ == "__main__":
    raise SystemExit(main())
