"""The compiled sampling path: a sampler whose density f and score ∇x f run through ``torch.compile``.

Gradient samplers (Langevin, MALA, HMC, ...) get f and its score from one compiled function:
``torch.func.grad`` of f inside the graph, run under no_grad, so TorchInductor sees a single
inference graph (forward + input gradient; no weight gradients, the weights stay graph inputs, so a
model whose weights change — training — is never served stale ones). Two choices on top, each
measured on the sampler-speed conv workload (benchmarks/results/compile_probes.md):
Inductor's channels_last layout conversion is off (slower on these small images), and a
convolution with one input channel — an image net's first layer, which oneDNN runs far below peak —
is decomposed into code Inductor generates (``compile_decomp``). Langevin's own update rule and box
clamp go into the same graph (``CompiledDensity.langevin_step``); every sampler's generator draws stay
eager, so the compiled path takes exactly the same random draws as the eager one. Callers that need
f alone (Metropolis tests of samplers that use no score) get ``torch.compile`` of f.

Most of what the compiled step gains on the CPU depends on the allocator: the generated code
allocates each buffer anew per call, and glibc's default malloc returns those pages to the kernel and
faults them back every step (1300-1600 minor faults, 3.4-4.8 ms of kernel time per conv-workload
step, more than eager's 600-1100 / 1.4-3.6 ms). ``compile_sampler`` therefore makes glibc keep freed memory in the process
(``samplers/malloc.py``; process-wide, so eager code in the same process gains too).

Compilation happens on the first call (the sampler's ``init``) and again for each new chain-batch
shape or dtype; its cost is kept apart in ``CompiledDensity.compile_seconds`` so a caller can
report it separately from the per-step time. Whether it pays back is measured in
``benchmarks/compile_speed.py`` (results/compile_speed.md); ``--compile`` is off by default.
"""
from __future__ import annotations

import functools
import importlib
import shutil
import sys
import time
import warnings
from typing import Callable

import torch

from ebmlab.errors import EBMError
from ebmlab.samplers.base import Sampler, autograd_value_and_score
from ebmlab.samplers.malloc import keep_freed_memory_unless_disabled

CompileMode = str | None


def compile_unavailable_reason() -> str | None:
    """Why ``torch.compile`` cannot run here (one line), or None when it can.

    On the CPU, TorchInductor writes C++ and needs a C++ compiler on the PATH; without one the
    first call would fail deep inside torch with a long traceback."""
    if not hasattr(torch, "compile"):
        return f"this PyTorch ({torch.__version__}) has no torch.compile"
    try:
        importlib.import_module("torch._dynamo")   # fails on platforms Dynamo does not support
    except Exception as e:                      # noqa: BLE001 — any failure means: not available
        return f"torch.compile cannot start on this platform: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
    if not any(shutil.which(c) for c in ("c++", "g++", "clang++", "cl")):
        return "torch.compile needs a C++ compiler (g++ or clang++) on the PATH to compile for the CPU"
    if sys.platform == "win32" and not shutil.which("cl"):
        return "torch.compile on Windows needs the MSVC compiler (cl) on the PATH"
    return None


def check_compile_available() -> None:
    """EBMError in one line when ``--compile`` cannot work on this machine."""
    reason = compile_unavailable_reason()
    if reason is not None:
        raise EBMError(f"--compile: {reason}; run without --compile")


def _value_and_score(f: Callable[[torch.Tensor], torch.Tensor]
                     ) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """x [B, *event] -> (∇x Σ f(x) [B, *event], f(x) [B]): the score as ``log_density_and_score``
    defines it, by ``torch.func.grad`` so that Dynamo traces forward and gradient as one graph."""
    def total(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fx = f(x)
        return fx.sum(), fx
    return torch.func.grad(total, has_aux=True)


def _langevin_transition(f: Callable[[torch.Tensor], torch.Tensor], step_size: float, noise_scale: float,
                         grad_clip: float | None) -> Callable:
    """(x, score, z, low, high) -> (x', f(x') [B], ∇x f(x')): Langevin's update rule
    (``Langevin.move``: x + step_size * clip(score) + noise_scale * z, clamped into [low, high]) and
    the score at the new point, for one graph. z is drawn by the caller from the chain generator
    (None when noise_scale is 0); low/high are None without a box."""
    value_and_score = _value_and_score(f)

    def transition(x, score, z, low, high):
        drift = score if grad_clip is None else score.clamp(-grad_clip, grad_clip)
        x_new = torch.add(x, drift, alpha=step_size)
        if z is not None:
            x_new = torch.add(x_new, z, alpha=noise_scale)
        if low is not None:
            x_new = torch.clamp(x_new, low, high)
        score_new, f_new = value_and_score(x_new)
        return x_new, f_new, score_new
    return transition


def _score_backend(mode: CompileMode):
    """TorchInductor with the one-input-channel convolution decompositions and no channels_last
    layout conversion (both measured in benchmarks/results/compile_probes.md), plus ``mode``'s options."""
    from torch._inductor import list_mode_options
    from torch._inductor.compile_fx import compile_fx
    from torch._inductor.decomposition import select_decomp_table

    from ebmlab.samplers.compile_decomp import DECOMPOSITIONS
    patches = {**(list_mode_options(mode) if mode else {}), "layout_optimization": False}
    patches.pop("triton.cudagraphs", None)          # a mode option of the CUDA backend only
    return functools.partial(compile_fx, decompositions={**select_decomp_table(), **DECOMPOSITIONS},
                             config_patches=patches)


class CompiledDensity:
    """f compiled by ``torch.compile``; ``value_and_score`` gives (f(x), ∇x f(x)) from one compiled
    graph (``fused_score=False``: from f's compiled graph and its backward, as ebmlab 0.6 did, kept
    for comparison). ``langevin_step`` gives Langevin's update and the new score from one graph
    (``step_graph=False``: off, Langevin updates eagerly and calls ``value_and_score``).
    ``compile_seconds`` sums the wall time of the calls that compiled (the first call of each and each
    recompilation for a new input shape, dtype or device), one evaluation included.

    Called like f: x [B, *event] -> [B]."""

    def __init__(self, f: Callable[[torch.Tensor], torch.Tensor], mode: CompileMode = None,
                 fused_score: bool = True, step_graph: bool = True) -> None:
        self.eager = f
        # dynamic=False: chain batches keep one shape for a whole run, and a static shape compiles
        # the fastest kernels; a new shape (e.g. ebmlab sample --n) just compiles once more
        self._compiled = torch.compile(f, mode=mode, dynamic=False)
        # fused_score=False: ebmlab 0.6's path, the score from f's graph and its AOTAutograd backward
        self._score: Callable | None = (torch.compile(_value_and_score(f), dynamic=False, backend=_score_backend(mode))
                                        if fused_score else None)
        self.compile_seconds = 0.0
        self._seen: set[tuple] = set()
        self._mode = mode
        # Langevin's whole transition, one compiled graph per (step_size, noise_scale, grad_clip);
        # None once one failed to compile (then Langevin steps through value_and_score)
        self._transitions: dict[tuple, Callable] | None = {} if fused_score and step_graph else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = ("f", tuple(x.shape), x.dtype, x.device, torch.is_grad_enabled())
        if key in self._seen:
            return self._compiled(x)
        t0 = time.perf_counter()
        out = self._compiled(x)
        self._seen.add(key)
        if x.requires_grad and out.requires_grad:
            # AOTAutograd compiles the backward graph lazily, at the first backward pass: the clock
            # stops when x's gradient arrives, so compile_seconds covers both directions
            def stop(grad: torch.Tensor) -> None:
                self.compile_seconds += time.perf_counter() - t0
                handle.remove()
            handle = x.register_hook(stop)
        else:
            self.compile_seconds += time.perf_counter() - t0
        return out

    def value_and_score(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f(x) [B], ∇x f(x) [B, *event]), both detached, as ``log_density_and_score`` returns them."""
        x = x.detach()
        out = None if self._score is None else self._run(
            ("score", tuple(x.shape), x.dtype, x.device), self._score, (x,), "score",
            "compiling f and its backward instead")
        if out is None:
            # not fused, or the fused graph failed once (e.g. a model that mutates its own state while
            # evaluating): the compiled f and its AOTAutograd backward from now on
            self._score = None
            return autograd_value_and_score(self, x)
        score, fx = out
        return fx, score

    def langevin_step(self, x: torch.Tensor, score: torch.Tensor, z: torch.Tensor | None, step_size: float,
                      noise_scale: float, grad_clip: float | None, low: torch.Tensor | None,
                      high: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Langevin's update and the score at the new point from one compiled graph: (x' [B, *event],
        f(x') [B], ∇x f(x') [B, *event]), or None when this path is off or failed (then the caller
        takes its eager update with the same z and ``value_and_score``). Fusing the update into the
        score graph saves the eager update's kernels and buffers per step (compile_gap_keep.md)."""
        if self._transitions is None:
            return None
        rule = (step_size, noise_scale, grad_clip)
        fn = self._transitions.get(rule)
        if fn is None:
            fn = torch.compile(_langevin_transition(self.eager, *rule), dynamic=False,
                               backend=_score_backend(self._mode))
            self._transitions[rule] = fn
        key = ("langevin", rule, tuple(x.shape), x.dtype, x.device, z is None, low is None)
        out = self._run(key, fn, (x, score, z, low, high), "Langevin step", "compiling the score alone instead")
        if out is None:
            self._transitions = None
        return out

    def _run(self, key: tuple, fn: Callable, args: tuple, graph: str, fallback: str) -> object | None:
        """``fn(*args)`` under no_grad. The first call per ``key`` compiles: its wall time goes to
        ``compile_seconds``, and if it raises (any model Dynamo cannot trace that way) it is said once
        in a warning naming ``graph`` and ``fallback``, and None is returned for the caller to fall back."""
        with torch.no_grad():
            if key in self._seen:
                return fn(*args)
            t0 = time.perf_counter()
            try:
                out = fn(*args)
            except Exception as e:                # noqa: BLE001 — any model Dynamo cannot trace
                warnings.warn(f"--compile: the {graph} graph failed to compile ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:160] if str(e) else ''}); {fallback}",
                              RuntimeWarning, stacklevel=3)
                return None
            finally:
                self.compile_seconds += time.perf_counter() - t0
        self._seen.add(key)
        return out


def compile_sampler(sampler: Sampler, mode: CompileMode = None, fused_score: bool = True,
                    keep_memory: bool = True, step_graph: bool = True) -> Sampler:
    """``sampler`` itself, with its density f replaced by a ``CompiledDensity`` (idempotent).
    ``fused_score``: f and its score from one compiled graph (the default; see the module docstring).
    ``keep_memory``: glibc keeps freed memory in the process (``samplers.malloc``, process-wide), so the
    compiled graph's per-call buffers stop costing page faults every step (the default; measured in
    benchmarks/results/compile_speed.md).
    ``step_graph``: Langevin's update rule compiled into the score graph (``CompiledDensity.langevin_step``;
    the noise still drawn eagerly from the chain generator, so the draws are eager's).

    The sampler keeps its ``module``, so ``run_chains`` still freezes the network's parameters while
    sampling (the compiled graph is then built without weight gradients). EBMError in one line when
    torch.compile is unavailable here."""
    if isinstance(sampler.f, CompiledDensity):
        return sampler
    check_compile_available()
    if keep_memory:
        keep_freed_memory_unless_disabled()
    sampler.f = CompiledDensity(sampler.f, mode, fused_score, step_graph)
    return sampler


def compile_seconds(sampler: Sampler | None) -> float:
    """Seconds spent compiling ``sampler``'s density so far (0.0 for an eager sampler)."""
    f = getattr(sampler, "f", None)
    return f.compile_seconds if isinstance(f, CompiledDensity) else 0.0
