"""Compiled vs eager Langevin: time per step and compile time (issue 13, ``--compile``).

The sampler-speed workloads (benchmarks/sampler_speed.py): the conv net on 256 chains of 1x8x8
images, and the 3x256 MLP on 4096 chains of 2-D points. All paths are ebmlab's own Langevin
(``make_sampler(net, "langevin", 0.01)`` run by ``run_chains``); the compiled ones go through
``ebmlab.samplers.compiled.compile_sampler``. Parameters require grad, as in a model mid-training
(run_chains freezes them while sampling, on every path).

Two compiled paths: ebmlab 0.6's (``fused_score=False``: f compiled, the score from its AOTAutograd
backward) and 0.7's default (``fused_score=True``: f and its score from one graph, see
samplers/compiled.py). Compile time: ``CompiledDensity.compile_seconds`` of the first call (one
evaluation included). Per-step time: process CPU seconds (the machine is shared), interleaved
rounds (order rotated each round), median of the per-round times; ratio = median of per-round
compiled/eager ratios. Break-even: compile time /
(eager - compiled) per step, in Langevin steps.

Run:  /work/main/.venv/bin/python benchmarks/compile_speed.py [--quick] [--rounds R]
Writes benchmarks/results/compile_speed.md (or compile_speed_quick.md).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from ebmlab.nets.mlp import MLP
from ebmlab.samplers.compiled import compile_sampler, compile_seconds, compile_unavailable_reason
from ebmlab.samplers.registry import make_sampler
from ebmlab.samplers.run import run_chains

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:            # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(ROOT))
from benchmarks.sampler_speed import EPS, conv_net  # noqa: E402


VARIANTS = {"compiled: f + backward (0.6)": False, "compiled: fused score (0.7)": True}   # -> fused_score


def bench(label: str, net: torch.nn.Module, x0: torch.Tensor, n_steps: int, rounds: int) -> list[dict]:
    for p in net.parameters():
        p.requires_grad_(True)
    kernels = {"eager": make_sampler(net, "langevin", EPS)}
    g = torch.Generator()
    run_chains(kernels["eager"], x0, 1, g.manual_seed(0))           # warm-up (allocator, lazy init)
    a = run_chains(kernels["eager"], x0, 5, torch.Generator().manual_seed(1))[0]
    c_s, diff = {}, {}
    for name, fused in VARIANTS.items():
        kernels[name] = compile_sampler(make_sampler(net, "langevin", EPS), fused_score=fused)
        run_chains(kernels[name], x0, 1, g.manual_seed(0))           # compiles here
        c_s[name] = compile_seconds(kernels[name])
        # same draws, same math: the compiled chains end where the eager ones do (float tolerance)
        b = run_chains(kernels[name], x0, 5, torch.Generator().manual_seed(1))[0]
        diff[name] = (a - b).abs().max().item()
    times: dict[str, list[float]] = {k: [] for k in kernels}
    order = list(kernels)
    for r in range(rounds):
        for name in order[r % len(order):] + order[:r % len(order)]:     # rotated each round
            t = time.process_time()
            run_chains(kernels[name], x0, n_steps, torch.Generator().manual_seed(r))
            times[name].append((time.process_time() - t) / n_steps)
    e = statistics.median(times["eager"])
    share = extern_kernel_share(kernels["eager"], x0, n_steps)
    rows = []
    for name in VARIANTS:
        c = statistics.median(times[name])
        ratio = statistics.median(y / x for x, y in zip(times["eager"], times[name]))
        rows.append(dict(label=label, variant=name, eager_ms=e * 1e3, compiled_ms=c * 1e3, ratio=ratio,
                         compile_s=c_s[name], break_even=(c_s[name] / (e - c)) if e > c else float("inf"),
                         max_diff=diff[name], recompiled=compile_seconds(kernels[name]) - c_s[name],
                         extern_share=share))
    return rows


# Operators that TorchInductor does not generate code for on the CPU but calls as they are (oneDNN /
# BLAS "extern kernels"): a compiled step runs the very same kernels for them, so their share of the
# eager step is time that compiling cannot remove, and 1 - share is the most it can save.
EXTERN_OPS = ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::mm", "aten::addmm", "aten::bmm")


def extern_kernel_share(sampler, x0: torch.Tensor, n_steps: int) -> float:
    """Fraction of the eager sampler's operator self-CPU time spent in EXTERN_OPS (torch.profiler)."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run_chains(sampler, x0, n_steps, torch.Generator().manual_seed(0))
    events = [ev for ev in prof.key_averages() if ev.key.startswith("aten::")]
    total = sum(ev.self_cpu_time_total for ev in events)
    return sum(ev.self_cpu_time_total for ev in events if ev.key in EXTERN_OPS) / total if total else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="the conv workload only, few rounds")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as the ebmlab CLI)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 40; --quick 6)")
    args = ap.parse_args()
    reason = compile_unavailable_reason()
    if reason is not None:
        raise SystemExit(f"compile_speed: {reason}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n_steps, rounds = (5, 6) if args.quick else (10, 40)
    rounds = args.rounds or rounds
    rows = bench("Conv net, 256 images 1x8x8", conv_net(), torch.rand(256, 1, 8, 8) * 2 - 1, n_steps, rounds)
    if not args.quick:
        rows += bench("MLP 3x256, 4096 chains x 2-D", MLP(2, 256, 3), torch.randn(4096, 2), n_steps, rounds)
    lines = ["| workload | compiled path | eager ms/step | compiled ms/step | compiled / eager | compile time (s) | "
             "break-even (steps) | max abs diff after 5 steps | eager time in conv/matmul kernels |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        be = "never" if r["break_even"] == float("inf") else f"{r['break_even']:.0f}"
        lines.append(f"| {r['label']} | {r['variant']} | {r['eager_ms']:.2f} | {r['compiled_ms']:.2f} | "
                     f"{r['ratio']:.3f} | {r['compile_s']:.1f} | {be} | {r['max_diff']:.1e} | {r['extern_share']:.0%} |")
    table = "\n".join(lines)
    cmd = " ".join([Path(sys.executable).as_posix(), "benchmarks/compile_speed.py", *sys.argv[1:]])
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("n/a",)
    conv = next(r for r in rows if r["label"].startswith("Conv") and r["variant"] == "compiled: fused score (0.7)")
    old = next(r for r in rows if r["label"].startswith("Conv") and r["variant"] == "compiled: f + backward (0.6)")
    verdict = (f"Conv workload, the `--compile` path (fused score): compiled / eager = **{conv['ratio']:.2f}** per step "
               f"(issue target <= 0.8: {'met' if conv['ratio'] <= 0.8 else 'not met'}; ebmlab 0.6's path: "
               f"{old['ratio']:.2f}); the {conv['compile_s']:.0f} s of compilation "
               + (f"pay back after about {conv['break_even']:.0f} Langevin steps"
                  if conv["break_even"] != float("inf") else "never pay back") + ". "
               f"{conv['extern_share']:.0%} of the eager step's operator time is in the convolution and matmul "
               "kernels (oneDNN / BLAS) that TorchInductor calls unchanged on the CPU, except the one-input-channel "
               "first convolution's, which the fused path replaces with generated code (samplers/compile_decomp.py; "
               "every variant tried, with its numbers, is in compile_probes.md).")
    text = (f"# Compiled vs eager Langevin{' (quick run)' if args.quick else ''}\n\nCommand: `{cmd}`\n\n"
            f"torch {torch.__version__}, `torch.get_num_threads()` = {torch.get_num_threads()}, "
            f"{platform.machine()}, {os.cpu_count()} cores (shared), load average at end "
            f"{tuple(round(v, 1) for v in load)}; {n_steps} steps per call, {rounds} interleaved rounds. "
            "Time: process CPU seconds, rounds rotated. Compiled, via `ebmlab.samplers.compiled.compile_sampler`: "
            "*f + backward (0.6)* = `torch.compile(f, dynamic=False)` of the density, its backward by AOTAutograd "
            "(`fused_score=False`); *fused score (0.7)* = the default: f and `torch.func.grad` of f in one "
            "inference graph, Inductor's channels_last layout conversion off, one-input-channel convolutions "
            f"decomposed.\n\n{table}\n\n{verdict}\n")
    out = ROOT / "benchmarks" / "results" / ("compile_speed_quick.md" if args.quick else "compile_speed.md")
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
