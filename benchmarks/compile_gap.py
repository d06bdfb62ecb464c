"""Where the sampler's --compile path lost against compile_probes.md's best variant (issue 13).

On the sampler-speed conv workload (256 chains of 1x8x8, 1 thread), the same compiled score graph is
timed inside ebmlab's Langevin (``run_chains``) and in the pieces around it: the graph call alone
(``CompiledDensity.value_and_score``), a score-only graph, the probe's whole step with the noise drawn
beforehand (as compile_probes.py times it) and drawn in the loop, and loops without run_chains'
bookkeeping. Next to CPU time per step: minor page faults and kernel (system) CPU time per step
(getrusage), which is where the gap turned out to be: glibc's default malloc. ``--malloc keep`` runs
the same with ``ebmlab.samplers.malloc.keep_freed_memory()`` set first.

Run:  OMP_NUM_THREADS=1 /work/main/.venv/bin/python benchmarks/compile_gap.py --malloc default|keep [--rounds R]
Writes benchmarks/results/compile_gap_<malloc>.md.
"""
from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="ebmlab-compile-gap-"))

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from benchmarks.compile_probes import inductor_with  # noqa: E402
from benchmarks.sampler_speed import EPS, conv_net  # noqa: E402
from ebmlab.samplers.base import log_density_and_score, randn_like  # noqa: E402
from ebmlab.samplers.compile_decomp import DECOMPOSITIONS  # noqa: E402
from ebmlab.samplers.compiled import compile_sampler  # noqa: E402
from ebmlab.samplers.malloc import keep_freed_memory  # noqa: E402
from ebmlab.samplers.registry import make_sampler  # noqa: E402
from ebmlab.samplers.run import run_chains  # noqa: E402

NOISE = math.sqrt(2 * EPS)
N = 10          # steps (or calls) per timed piece


def pieces(keep: bool) -> dict:
    """name -> (description, callable running N steps or calls)."""
    torch.manual_seed(0)
    net = conv_net()
    x0 = torch.rand(256, 1, 8, 8) * 2 - 1
    eager = make_sampler(net, "langevin", EPS)
    comp = compile_sampler(make_sampler(net, "langevin", EPS), keep_memory=keep)
    run_chains(comp, x0, 2, torch.Generator().manual_seed(0))            # compiles the sampler's graph
    for p in net.parameters():
        p.requires_grad_(False)                # as run_chains has them while sampling
    backend = inductor_with(DECOMPOSITIONS, layout_optimization=False)    # the sampler's backend, rebuilt
    score_only = torch.compile(torch.func.grad(lambda x: net(x).sum()), dynamic=False, backend=backend)
    whole = torch.compile(lambda x, z: x + EPS * torch.func.grad(lambda y: net(y).sum())(x) + NOISE * z,
                          dynamic=False, backend=backend)
    zs = [torch.randn(x0.shape, generator=torch.Generator().manual_seed(i)) for i in range(N)]
    with torch.no_grad():
        score_only(x0)
        whole(x0, zs[0])

    def run_eager():
        run_chains(eager, x0, N, torch.Generator().manual_seed(1))

    def run_comp():
        run_chains(comp, x0, N, torch.Generator().manual_seed(1))

    def graph_value_and_score():
        with torch.no_grad():
            for _ in range(N):
                comp.f.value_and_score(x0)

    def graph_score_only():
        with torch.no_grad():
            for _ in range(N):
                score_only(x0)

    def eager_score():
        for _ in range(N):
            log_density_and_score(net, x0)

    def whole_pre_z():
        x = x0
        with torch.no_grad():
            for z in zs:
                x = whole(x, z)

    def whole_draw_z():
        x, g = x0, torch.Generator().manual_seed(1)
        with torch.no_grad():
            for _ in range(N):
                x = whole(x, randn_like(x, g))

    def loop_score_only():
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            s, x = score_only(x0), x0
            for _ in range(N - 1):
                x = x + EPS * s + NOISE * randn_like(x, g)
                s = score_only(x)

    def noise_only():
        g = torch.Generator().manual_seed(1)
        for _ in range(N):
            randn_like(x0, g)
    return {
        "eager Langevin (run_chains)": run_eager,
        "--compile Langevin (run_chains)": run_comp,
        "eager f + score alone (autograd), fixed x": eager_score,
        "compiled f + score graph alone (value_and_score), fixed x": graph_value_and_score,
        "compiled score-only graph alone, fixed x": graph_score_only,
        "score-only graph + eager update, own loop": loop_score_only,
        "probe: whole step compiled, noise drawn beforehand": whole_pre_z,
        "probe: whole step compiled, noise drawn in the loop": whole_draw_z,
        "noise draw alone (randn 256x1x8x8)": noise_only,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--malloc", choices=("default", "keep"), required=True)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.malloc == "keep" and not keep_freed_memory():
        raise SystemExit("compile_gap: --malloc keep needs glibc's mallopt (Linux)")
    fns = pieces(args.malloc == "keep")
    for fn in fns.values():
        fn()
    t: dict[str, list[float]] = {k: [] for k in fns}
    flt: dict[str, list[float]] = {k: [] for k in fns}
    sys_t: dict[str, list[float]] = {k: [] for k in fns}
    order = list(fns)
    for r in range(args.rounds):
        for k in order[r % len(order):] + order[:r % len(order)]:
            u, c = resource.getrusage(resource.RUSAGE_SELF), time.process_time()
            fns[k]()
            t[k].append((time.process_time() - c) / N * 1e3)
            v = resource.getrusage(resource.RUSAGE_SELF)
            flt[k].append((v.ru_minflt - u.ru_minflt) / N)
            sys_t[k].append((v.ru_stime - u.ru_stime) / N * 1e3)
    base = order[0]
    lines = ["| piece (per step or call) | CPU ms (median) | min | / eager Langevin (median of round ratios) | "
             "minor page faults | kernel CPU ms |", "|---|---:|---:|---:|---:|---:|"]
    for k in order:
        ratio = statistics.median(a / b for a, b in zip(t[k], t[base]))
        lines.append(f"| {k} | {statistics.median(t[k]):.2f} | {min(t[k]):.2f} | {ratio:.3f} | "
                     f"{statistics.median(flt[k]):.0f} | {statistics.median(sys_t[k]):.2f} |")
    cmd = " ".join(["OMP_NUM_THREADS=1", Path(sys.executable).as_posix(), "benchmarks/compile_gap.py", *sys.argv[1:]])
    text = (f"# Compiled Langevin: the sampler against the probe, malloc {args.malloc}\n\nCommand: `{cmd}`\n\n"
            f"Date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; torch {torch.__version__}, 1 thread, "
            f"{os.cpu_count()} cores shared, load average at end {tuple(round(v, 1) for v in os.getloadavg())}; "
            f"{args.rounds} interleaved rounds of {N} steps/calls, order rotated; conv net of the sampler-speed "
            "table, 256 chains of 1x8x8.\n\n" + "\n".join(lines) + "\n")
    out = ROOT / "benchmarks" / "results" / f"compile_gap_{args.malloc}.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
