"""Probes for a faster compiled Langevin step on the conv workload (issue 13's <= 0.8x target).

Every variant runs the same unadjusted Langevin loop, x <- x + eps * grad f(x) + sqrt(2 eps) * z, on
the sampler-speed conv net (256 chains of 1x8x8 images), with z drawn eagerly from one seeded
generator, so all variants see the same noise and must end at the same x (max abs diff reported).
Time: process CPU seconds (time.process_time; the machine is shared) per step, interleaved rounds
with the order rotated, medians; ratio = median over rounds of variant / eager.

Run:  OMP_NUM_THREADS=1 /work/main/.venv/bin/python benchmarks/compile_probes.py [--variants a,b] [--rounds R]
Writes benchmarks/results/compile_probes.md.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

# a cold compile cache (kernels of earlier sessions not reused); the graph caches are off in main()
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="ebmlab-compile-probes-"))

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from benchmarks.sampler_speed import EPS, conv_net  # noqa: E402
# the decompositions --compile ships (the probe's rows measured this same code before it moved there)
from ebmlab.samplers.compile_decomp import one_channel_conv, one_channel_input_grad  # noqa: E402

NOISE = math.sqrt(2 * EPS)
Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]     # (x, z) -> x'


def autograd_score(net: Callable) -> Callable[[torch.Tensor], torch.Tensor]:
    def score(x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            (s,) = torch.autograd.grad(net(xg).sum(), xg)
        return s
    return score


def func_score(net: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    # torch.func.grad: one functional graph (forward + input gradient) Dynamo traces whole
    return torch.func.grad(lambda x: net(x).sum())


def frozen(fn: Callable, **opts) -> Callable:
    """torch.compile(fn) with Inductor's freezing: the config must be set globally while Dynamo traces
    (options={"freezing": True} reaches Inductor but not Dynamo, which then lifts the weights as inputs
    and nothing is frozen), so every compiling call runs under config.patch."""
    import torch._inductor.config as ic
    compiled = torch.compile(fn, dynamic=False, options=opts or None)

    def call(*a):
        with ic.patch(freezing=True):
            return compiled(*a)
    return call


def conv_input_grad(grad_output, input, weight, bias_sizes, stride, padding, dilation, transposed,
                    output_padding, groups, output_mask):
    """aten.convolution_backward when only the input gradient is wanted: the transposed convolution
    of grad_output with the same weight (what the backward computes), as a forward op that Inductor's
    oneDNN weight prepacking can take when the weight is a frozen constant."""
    if output_mask[1] or output_mask[2] or transposed:
        return NotImplemented
    k = weight.shape[2:]
    out_pad = [input.shape[2 + i] - ((grad_output.shape[2 + i] - 1) * stride[i] - 2 * padding[i]
                                     + dilation[i] * (k[i] - 1) + 1) for i in range(len(k))]
    gi = torch.ops.aten.convolution.default(grad_output, weight, None, stride, padding, dilation, True,
                                            out_pad, groups)
    return gi, None, None


def conv_input_grad_fwd(grad_output, input, weight, bias_sizes, stride, padding, dilation, transposed,
                        output_padding, groups, output_mask):
    """As conv_input_grad, for stride 1 and groups 1: a plain forward convolution of grad_output with
    the flipped, in/out-swapped weight and padding dilation*(k-1) - padding."""
    if (output_mask[1] or output_mask[2] or transposed or groups != 1 or any(s != 1 for s in stride)
            or any(dilation[i] * (weight.shape[2 + i] - 1) - padding[i] < 0 for i in range(len(stride)))):
        return NotImplemented
    nd = len(stride)
    w = weight.flip(list(range(2, 2 + nd))).transpose(0, 1)
    pad = [dilation[i] * (weight.shape[2 + i] - 1) - padding[i] for i in range(nd)]
    gi = torch.ops.aten.convolution.default(grad_output, w, None, [1] * nd, pad, dilation, False, [0] * nd, 1)
    return gi, None, None


def inductor_with(decomp: dict, **opts) -> Callable:
    """The Inductor backend with extra decompositions (applied while AOTAutograd traces, so also to the
    backward ops the score's torch.func.grad produces) and config patches."""
    import functools
    from torch._inductor.compile_fx import compile_fx
    from torch._inductor.decomposition import select_decomp_table
    return functools.partial(compile_fx, decompositions={**select_decomp_table(), **decomp}, config_patches=opts)


def small_cin_input_grad(grad_output, input, weight, *args):
    return conv_input_grad_fwd(grad_output, input, weight, *args) if weight.shape[1] <= 4 else NotImplemented


def frozen_backend(module: torch.nn.Module, decomp: dict | None = None, **opts) -> Callable:
    """A torch.compile backend: Dynamo's graph (guards kept) with the module's parameters and buffers
    turned into constants, then Inductor with freezing (oneDNN weight prepacking, constant folding)."""
    import torch._inductor.config as ic
    from torch._inductor.compile_fx import compile_fx
    from torch.fx.experimental.proxy_tensor import make_fx
    weights = [*module.parameters(), *module.buffers()]

    def backend(gm: torch.fx.GraphModule, example_inputs: list) -> Callable:
        real = [n.meta["grapharg"].example if "grapharg" in n.meta else t
                for n, t in zip(gm.graph.find_nodes(op="placeholder"), example_inputs)]
        const = {i: t for i, t in enumerate(real) if any(t is w for w in weights)}
        keep = [i for i in range(len(real)) if i not in const]

        def with_consts(*kept):
            it = iter(kept)
            return gm(*[const[i] if i in const else next(it) for i in range(len(real))])
        kept_ex = [real[i] for i in keep]
        with torch.no_grad():
            traced = make_fx(with_consts, decomposition_table=decomp or {})(*kept_ex)
            with ic.patch(freezing=True, **opts):
                compiled = compile_fx(traced, kept_ex)

        def call(*args):
            return compiled(*[args[i] for i in keep])
        return call
    return backend


def step_of(score: Callable[[torch.Tensor], torch.Tensor]) -> Step:
    def step(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return x + EPS * score(x) + NOISE * z
    return step


class Im2colNet(torch.nn.Module):
    """The conv net with its 3x3 valid convolutions as unfold (im2col) + matmul: same weights."""

    def __init__(self, net: torch.nn.Module, first_only: bool = False) -> None:
        super().__init__()
        self.net, self.first_only = net, first_only

    @staticmethod
    def conv(x: torch.Tensor, conv: torch.nn.Conv2d) -> torch.Tensor:
        b, c, h, w = x.shape
        k = conv.kernel_size[0]
        cols = torch.nn.functional.unfold(x, k)                     # [B, C*k*k, L]
        out = conv.weight.reshape(conv.out_channels, -1) @ cols + conv.bias[:, None]
        return out.reshape(b, conv.out_channels, h - k + 1, w - k + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        body = self.net.body
        h = torch.nn.functional.silu(self.conv(x, body[0]))
        h = body[2](h) if self.first_only else self.conv(h, body[2])
        h = torch.nn.functional.silu(h)
        return body[5](h.flatten(1)).squeeze(-1)


class ShiftNet(torch.nn.Module):
    """The conv net with its first convolution (1 input channel) as a sum of 9 shifted, scaled slices."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        body = self.net.body
        conv = body[0]
        k = conv.kernel_size[0]
        h, w = x.shape[2] - k + 1, x.shape[3] - k + 1
        wt = conv.weight                                             # [Cout, 1, k, k]
        out = conv.bias[None, :, None, None]
        for i in range(k):
            for j in range(k):
                out = out + wt[None, :, 0, i, j, None, None] * x[:, :, i:i + h, j:j + w]
        return body[5](torch.nn.functional.silu(body[2](torch.nn.functional.silu(out))).flatten(1)).squeeze(-1)


def make_variants(net: torch.nn.Module) -> dict[str, Callable[[], tuple[Step, str]]]:
    """name -> builder of (step, memory format of x); built lazily so a failing probe is a table row."""
    import copy
    net_cl = copy.deepcopy(net).to(memory_format=torch.channels_last)
    lay = {"layout_optimization": False}     # Inductor's channels_last conversion of conv graphs, off
    conv_fwd = {torch.ops.aten.convolution_backward.default: conv_input_grad_fwd}
    conv_t = {torch.ops.aten.convolution_backward.default: conv_input_grad}

    def comp(fn: Callable, **opts) -> Callable:
        return torch.compile(fn, dynamic=False, options=opts or None)

    def whole(m: torch.nn.Module) -> Step:
        return step_of(func_score(m))
    return {
        "eager autograd (ebmlab's Langevin)": lambda: (step_of(autograd_score(net)), "contig"),
        "eager autograd, channels_last": lambda: (step_of(autograd_score(net_cl)), "cl"),
        "eager torch.func.grad": lambda: (whole(net), "contig"),
        "A compile density (current --compile)": lambda: (step_of(autograd_score(comp(net))), "contig"),
        "A' compile density, no layout opt": lambda: (step_of(autograd_score(comp(net, **lay))), "contig"),
        "B compile func.grad score": lambda: (step_of(comp(func_score(net))), "contig"),
        "B' compile func.grad score, no layout opt": lambda: (step_of(comp(func_score(net), **lay)), "contig"),
        "C compile whole step": lambda: (comp(whole(net)), "contig"),
        "C' compile whole step, no layout opt": lambda: (comp(whole(net), **lay), "contig"),
        "C channels_last net": lambda: (comp(whole(net_cl)), "cl"),
        "C max-autotune": lambda: (comp(whole(net), max_autotune=True), "contig"),
        "C cpp_wrapper": lambda: (comp(whole(net), cpp_wrapper=True), "contig"),
        "C config.freezing patched (weights stay inputs)": lambda: (frozen(whole(net)), "contig"),
        "D frozen weights (own backend), oneDNN prepack": lambda: (
            torch.compile(whole(net), dynamic=False, backend=frozen_backend(net)), "contig"),
        "D' frozen weights, no layout opt": lambda: (
            torch.compile(whole(net), dynamic=False, backend=frozen_backend(net, **lay)), "contig"),
        "D' + conv input-grad as forward conv (prepacked)": lambda: (
            torch.compile(whole(net), dynamic=False, backend=frozen_backend(net, conv_fwd, **lay)), "contig"),
        "D' + conv input-grad as forward conv, Cin<=4 only": lambda: (
            torch.compile(whole(net), dynamic=False, backend=frozen_backend(
                net, {torch.ops.aten.convolution_backward.default: small_cin_input_grad}, **lay)), "contig"),
        "D' + conv input-grad as transposed conv (prepacked)": lambda: (
            torch.compile(whole(net), dynamic=False, backend=frozen_backend(net, conv_t, **lay)), "contig"),
        "C' + 1-input-channel conv input grad as matmul + shifted adds": lambda: (torch.compile(
            whole(net), dynamic=False, backend=inductor_with(
                {torch.ops.aten.convolution_backward.default: one_channel_input_grad}, **lay)), "contig"),
        "C' + 1-input-channel conv forward and input grad as matmul + shifts": lambda: (torch.compile(
            whole(net), dynamic=False, backend=inductor_with(
                {torch.ops.aten.convolution_backward.default: one_channel_input_grad,
                 torch.ops.aten.convolution.default: one_channel_conv}, **lay)), "contig"),
        "C' + conv1 as im2col+matmul (model rewrite)": lambda: (comp(whole(Im2colNet(net, True)), **lay), "contig"),
        "C' + both convs im2col+matmul (model rewrite)": lambda: (comp(whole(Im2colNet(net)), **lay), "contig"),
        "C' + conv1 as 9 shifted slices (model rewrite)": lambda: (comp(whole(ShiftNet(net)), **lay), "contig"),
    }


def run(step: Step, x0: torch.Tensor, zs: list[torch.Tensor]) -> torch.Tensor:
    x = x0
    with torch.no_grad():
        for z in zs:
            x = step(x, z)
    return x


def kernel_micro(rounds: int) -> dict[str, float]:
    """ms per call of the conv kernels of one step, as oneDNN runs them unpacked vs with prepacked weights,
    and of the alternatives for the input gradients (the score's backward)."""
    F = torch.nn.functional
    conv_bwd = torch.ops.aten.convolution_backward.default
    cpw = torch.ops.mkldnn._convolution_pointwise
    b = 256
    w1, b1, w2, b2 = torch.randn(32, 1, 3, 3), torch.randn(32), torch.randn(64, 32, 3, 3), torch.randn(64)
    x1, x2 = torch.randn(b, 1, 8, 8), torch.randn(b, 32, 6, 6)
    g1, g2 = torch.randn(b, 32, 6, 6), torch.randn(b, 64, 4, 4)
    p1 = torch.ops.mkldnn._reorder_convolution_weight(w1, [0, 0], [1, 1], [1, 1], 1, list(x1.shape))
    p2 = torch.ops.mkldnn._reorder_convolution_weight(w2, [0, 0], [1, 1], [1, 1], 1, list(x2.shape))
    f1, f2 = w1.flip(2, 3).transpose(0, 1).contiguous(), w2.flip(2, 3).transpose(0, 1).contiguous()
    pf1 = torch.ops.mkldnn._reorder_convolution_weight(f1, [2, 2], [1, 1], [1, 1], 1, list(g1.shape))
    pf2 = torch.ops.mkldnn._reorder_convolution_weight(f2, [2, 2], [1, 1], [1, 1], 1, list(g2.shape))
    mask = [True, False, False]
    cases = {
        "conv1 forward (1->32, 8x8), aten / oneDNN": lambda: F.conv2d(x1, w1, b1),
        "conv1 forward, prepacked weight": lambda: cpw(x1, p1, b1, [0, 0], [1, 1], [1, 1], 1, "none", [], ""),
        "conv1 forward, im2col + matmul": lambda: (w1.view(32, 9) @ F.unfold(x1, 3)).view(b, 32, 6, 6),
        "conv2 forward (32->64, 6x6), aten / oneDNN": lambda: F.conv2d(x2, w2, b2),
        "conv2 forward, prepacked weight": lambda: cpw(x2, p2, b2, [0, 0], [1, 1], [1, 1], 1, "none", [], ""),
        "conv1 input grad, aten convolution_backward": lambda: conv_bwd(g1, x1, w1, [32], [1, 1], [0, 0], [1, 1],
                                                                         False, [0, 0], 1, mask),
        "conv1 input grad, forward conv of flipped weight (prepacked)": lambda: cpw(
            g1, pf1, None, [2, 2], [1, 1], [1, 1], 1, "none", [], ""),
        "conv1 input grad, matmul + fold": lambda: F.fold(w1.view(32, 9).t() @ g1.view(b, 32, 36), (8, 8), 3),
        "conv2 input grad, aten convolution_backward": lambda: conv_bwd(g2, x2, w2, [64], [1, 1], [0, 0], [1, 1],
                                                                         False, [0, 0], 1, mask),
        "conv2 input grad, forward conv of flipped weight (prepacked)": lambda: cpw(
            g2, pf2, None, [2, 2], [1, 1], [1, 1], 1, "none", [], ""),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for fn in cases.values():
        fn()
    for _ in range(rounds):
        for k, fn in cases.items():
            c = time.process_time()
            for _ in range(10):
                fn()
            times[k].append((time.process_time() - c) / 10)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


REWRITE = "(model rewrite)"


def verdict(names: list[str], info: dict, times: dict, base: str, micro: dict[str, float]) -> str:
    """The conclusion, from the measured rows: every number and comparison in it comes from the data."""
    def ratio(n: str) -> float:
        return statistics.median(a / b for a, b in zip(times[n], times[base]))

    Q = ["C' compile whole step, no layout opt", "A' compile density, no layout opt", "B' compile func.grad score, no layout opt", "D' frozen weights, no layout opt", "D' + conv input-grad as forward conv (prepacked)", "D' + conv input-grad as transposed conv (prepacked)", "C' + 1-input-channel conv input grad as matmul + shifted adds", "C' + 1-input-channel conv forward and input grad as matmul + shifts"]   # the rows quoted below that have a ' in their name

    def row(n: str) -> str:
        return f"'{n}' {ratio(n):.2f}x" if n in times else f"'{n}' (not run)"
    ok = [n for n in names if n in times and not n.startswith("eager")]
    general = [n for n in ok if REWRITE not in n]
    if not general:
        return ""
    best = min(general, key=ratio)
    under = [n for n in general if ratio(n) <= 0.8]
    text = (f"**Best compiled variant that needs no change to the model: '{best}', {ratio(best):.2f}x eager per "
            f"step** (median of round ratios). Issue target <= 0.8x: "
            + (f"met by {', '.join(repr(n) for n in under)}." if under else "**not met** by any of them.")
            + f" The current `--compile` ({row('A compile density (current --compile)')}) is the reference.")
    rewrites = [n for n in ok if REWRITE in n]
    if rewrites:
        rb = min(rewrites, key=ratio)
        text += (f" Rows marked '{REWRITE}' change the network's code (not something a sampler may do to its "
                 f"user's model); the best of them: {row(rb)}.")
    m = micro
    c1 = m["conv1 forward (1->32, 8x8), aten / oneDNN"] + m["conv1 input grad, aten convolution_backward"]
    c2 = m["conv2 forward (32->64, 6x6), aten / oneDNN"] + m["conv2 input grad, aten convolution_backward"]
    e = statistics.median(times[base]) * 1e3
    # multiply-adds of one call at 256 images: conv1 32 maps of 6x6 from 9 inputs, conv2 64 maps of 4x4 from 288
    gflops1 = 2 * 256 * 32 * 36 * 9 / m["conv1 forward (1->32, 8x8), aten / oneDNN"] / 1e6
    gflops2 = 2 * 256 * 64 * 16 * 288 / m["conv2 forward (32->64, 6x6), aten / oneDNN"] / 1e6
    text += (
        f"\n\nWhere the time goes: a step is two convolutions forward and their two input gradients, oneDNN "
        f"kernels that Inductor calls as they are (extern kernels): {c1 + c2:.1f} ms in the kernel table below "
        f"(conv2 {c2:.1f} ms, conv1 {c1:.1f} ms) against {e:.1f} ms for the whole eager step. Compiling fuses "
        "the rest (SiLU and its backward, the update) and removes the Python dispatch; the kernels stay. "
        "What each idea did (median ratios to eager, this run):\n"
        f"- *Inductor's channels_last layout optimisation* (on by default for convolution graphs): "
        f"{row('C compile whole step')} with it, {row(Q[0])} "
        f"without; the same for the density alone ({row('A compile density (current --compile)')} vs "
        f"{row(Q[1])}); channels_last in eager: "
        f"{row('eager autograd, channels_last')}.\n"
        f"- *Score inside the graph* (`torch.func.grad`, one forward-only graph, run under no_grad): "
        f"{row(Q[2])}; *whole step* (score + update + "
        f"noise, the noise drawn eagerly from the chain generator and passed in): "
        f"{row(Q[0])}.\n"
        "- *Freezing* (weights as constants: oneDNN weight prepacking): `torch.compile(options={'freezing': "
        "True})` freezes nothing (Dynamo has to see `config.freezing` while it traces), and with "
        "`torch.func.grad` in the graph even a globally patched config leaves the weights as graph inputs "
        f"({row('C config.freezing patched (weights stay inputs)')}). The D rows use a backend of their own that "
        f"makes the module's weights constants: {row('D frozen weights (own backend), oneDNN prepack')}, "
        f"{row(Q[3])}. Prepacking only reaches the forward "
        "convolutions (kernel table: conv1 "
        f"{m['conv1 forward (1->32, 8x8), aten / oneDNN']:.2f} -> {m['conv1 forward, prepacked weight']:.2f} ms, "
        f"conv2 {m['conv2 forward (32->64, 6x6), aten / oneDNN']:.2f} -> {m['conv2 forward, prepacked weight']:.2f} "
        "ms); the input gradients stay `convolution_backward`, and rewriting them as a prepacked forward "
        f"convolution of the flipped weight (conv1 {m['conv1 input grad, aten convolution_backward']:.2f} -> "
        f"{m['conv1 input grad, forward conv of flipped weight (prepacked)']:.2f} ms, conv2 "
        f"{m['conv2 input grad, aten convolution_backward']:.2f} -> "
        f"{m['conv2 input grad, forward conv of flipped weight (prepacked)']:.2f} ms) gives "
        f"{row(Q[4])}, as a transposed one "
        f"{row(Q[5])}. Freezing would also "
        "be valid for sampling a fixed model only, never inside training.\n"
        f"- *The one-input-channel first layer* (its oneDNN forward runs at {gflops1:.0f} GFLOP/s, conv2's at "
        f"{gflops2:.0f}), as matmul + "
        "shifted views by a decomposition (any model, no freezing): "
        f"{row(Q[6])} (input "
        f"gradient only), {row(Q[7])} "
        "(both).\n"
        f"- *max-autotune* ({row('C max-autotune')}: its CPU templates are GEMMs, not convolutions) and "
        f"*cpp_wrapper* ({row('C cpp_wrapper')}).\n"
        "The sampler's own `--compile` path (the score in one graph with this decomposition, inside ebmlab's "
        "Langevin and run_chains) is measured in compile_speed.md.\n"
        "All variants end within float32 rounding of eager (last column). The machine was shared with other "
        "jobs: CPU-time ratios moved by about +-0.1 between repeated runs of the same variant on this page's "
        "earlier drafts, so a single row within that of 0.8 is not a result.")
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", default="", help="|-separated variant names; default all")
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "compile_probes.md"))
    ap.add_argument("--render", metavar="JSON", help="only redraw the page from a saved compile_probes.json")
    args = ap.parse_args()
    if args.render:
        Path(args.out).write_text(render(json.loads(Path(args.render).read_text())))
        return
    torch.set_num_threads(1)
    # every variant compiles the same Python functions (step_of's step, the net's forward) anew: past
    # Dynamo's default limit of 8 entries per function it would silently run the later variants eagerly
    torch._dynamo.config.recompile_limit = 64
    torch._dynamo.config.accumulated_recompile_limit = 1024
    # no compile caches: AOTAutograd's cache key ignores a backend's own decompositions (a later variant
    # would be served an earlier one's code), and the first-call column should be a full compile
    torch._functorch.config.enable_autograd_cache = False
    torch._inductor.config.fx_graph_cache = False
    torch.manual_seed(0)
    net = conv_net()
    for p in net.parameters():
        p.requires_grad_(False)       # run_chains freezes the parameters while sampling
    x0 = torch.rand(256, 1, 8, 8) * 2 - 1
    g = torch.Generator().manual_seed(1)
    zs = [torch.randn(x0.shape, generator=g) for _ in range(args.steps)]
    builders = make_variants(net)
    base = "eager autograd (ebmlab's Langevin)"
    wanted = [s for s in args.variants.split("|") if s]
    names = [n for n in builders if n == base or not wanted or n in wanted]
    steps: dict[str, Callable[[], torch.Tensor]] = {}
    info: dict[str, dict] = {}
    ref = None
    for name in names:
        try:
            step, fmt = builders[name]()
            xs = x0.contiguous(memory_format=torch.channels_last) if fmt == "cl" else x0
            zz = [z.contiguous(memory_format=torch.channels_last) for z in zs] if fmt == "cl" else zs
            t0, c0 = time.perf_counter(), time.process_time()
            run(step, xs, zz[:1])               # compiles here (cold cache: see the top of the file)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            out = run(step, xs, zz)
            ref = out if ref is None else ref
            info[name] = dict(compile_wall=wall, compile_cpu=cpu, diff=(out - ref).abs().max().item())
            steps[name] = (lambda s, a, b: (lambda: run(s, a, b)))(step, xs, zz)
            print(f"{name}: first call {wall:.1f} s wall / {cpu:.1f} s cpu, max diff {info[name]['diff']:.1e}",
                  flush=True)
        except Exception as e:  # noqa: BLE001 — a probe that fails is a row in the table
            info[name] = dict(error=f"{type(e).__name__}: {str(e).splitlines()[0][:150]}")
            print(f"{name}: FAILED {info[name]['error']}", flush=True)
    times: dict[str, list[float]] = {n: [] for n in steps}
    order = list(steps)
    for r in range(args.rounds):
        for n in order[r % len(order):] + order[:r % len(order)]:
            c = time.process_time()
            steps[n]()
            times[n].append((time.process_time() - c) / args.steps)
    micro = kernel_micro(max(5, args.rounds // 6))
    cmd = " ".join(["OMP_NUM_THREADS=1", Path(sys.executable).as_posix(), "benchmarks/compile_probes.py", *sys.argv[1:]])
    data = dict(names=names, times_s_per_step=times, info=info, micro_ms=micro, command=cmd, steps=args.steps,
                load=[round(v, 1) for v in os.getloadavg()], torch=torch.__version__, machine=platform.machine(),
                cpus=os.cpu_count())
    Path(args.out).with_suffix(".json").write_text(json.dumps(data, indent=1))   # raw data: --render redraws
    text = render(data)
    Path(args.out).write_text(text)
    print(text)


def render(data: dict) -> str:
    """The results page from the raw data (main's measurements, or the .json it saved)."""
    times, info, micro = data["times_s_per_step"], data["info"], data["micro_ms"]
    names = data.get("names", list(info))
    data = {"steps": 5, "load": ("n/a",), "torch": torch.__version__, "machine": platform.machine(),
            "cpus": os.cpu_count(), **data}
    base = "eager autograd (ebmlab's Langevin)"
    e = statistics.median(times[base])
    lines = ["| variant | ms/step (CPU, median) | / eager, median of round ratios | / eager, best round each | "
             "first call incl. compile, s (wall / own CPU) | break-even, steps (wall compile) | "
             f"max abs diff vs eager after {data['steps']} steps |", "|---|---:|---:|---:|---:|---:|---:|"]
    for n in names:
        i = info[n]
        if "error" in i:
            lines.append(f"| {n} | failed: {i['error']} | | | | | |")
            continue
        c = statistics.median(times[n])
        ratio = statistics.median(a / b for a, b in zip(times[n], times[base]))
        best = min(times[n]) / min(times[base])
        be = "-" if n.startswith("eager") else (f"{i['compile_wall'] / (e - c):.0f}" if e > c else "never")
        lines.append(f"| {n} | {c * 1e3:.2f} | {ratio:.3f} | {best:.3f} | {i['compile_wall']:.1f} / "
                     f"{i['compile_cpu']:.1f} | {be} | {i['diff']:.1e} |")
    micro_table = ["| kernel (256 images) | ms per call (CPU, median) |", "|---|---:|",
                   *[f"| {k} | {v:.2f} |" for k, v in micro.items()]]
    rounds = len(times[base])
    return (f"# Compiled Langevin on the conv workload: probes for the 0.8x target (issue 13)\n\n"
            f"Command: `{data['command']}` (raw timings in compile_probes.json; `--render` redraws this page)\n\n"
            f"torch {data['torch']}, 1 torch thread, {data['machine']}, {data['cpus']} cores shared with other "
            f"jobs (load average at end {tuple(data['load'])}); conv net of the sampler-speed table on 256 chains "
            f"of 1x8x8; {rounds} interleaved rounds x {data['steps']} steps, order rotated each round; time = "
            "process CPU seconds. Every variant runs the same loop x <- x + eps grad f(x) + sqrt(2 eps) z with "
            "the same z. Compile caches off (fresh TORCHINDUCTOR_CACHE_DIR, no FX-graph or AOTAutograd cache): "
            "the first-call column is a full compile (wall time on the shared machine; own CPU excludes the "
            "C++ compiler processes); break-even = that wall time / the per-step saving.\n\n"
            + "\n".join(lines) + "\n\n" + verdict(names, info, times, base, micro)
            + "\n\nKernels of one step, measured alone (same process, after the table):\n\n"
            + "\n".join(micro_table) + "\n")


if __name__ == "__main__":
    main()
