"""The compiled sampling path: a sampler whose density f runs through ``torch.compile``.

What is compiled is f itself (the network's forward pass). The score ∇x f that gradient samplers
need then comes from the backward graph that ``torch.compile`` (AOTAutograd) compiles alongside,
so every ``log_density_and_score`` call of Langevin, MALA and HMC runs compiled code in both
directions, while the sampler's own update rule, its generator draws and the box clamp stay eager
and unchanged — the compiled path takes exactly the same random draws as the eager one.

Compilation happens on the first call (the sampler's ``init``) and again for each new chain-batch
shape or dtype; its cost is kept apart in ``CompiledDensity.compile_seconds`` so a caller can
report it separately from the per-step time. Whether it pays back is measured in
``benchmarks/compile_speed.py`` (results/compile_speed.md); ``--compile`` is off by default.
"""
from __future__ import annotations

import importlib
import shutil
import sys
import time
from typing import Callable

import torch

from ebmlab.errors import EBMError
from ebmlab.samplers.base import Sampler

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


class CompiledDensity:
    """f compiled by ``torch.compile``; ``compile_seconds`` sums the wall time of the calls that
    compiled (the first call and each recompilation for a new input shape, dtype or device), from the
    forward pass to the end of its backward pass when x requires grad — one evaluation included.

    Called like f: x [B, *event] -> [B]."""

    def __init__(self, f: Callable[[torch.Tensor], torch.Tensor], mode: CompileMode = None) -> None:
        self.eager = f
        # dynamic=False: chain batches keep one shape for a whole run, and a static shape compiles
        # the fastest kernels; a new shape (e.g. ebmlab sample --n) just compiles once more
        self._compiled = torch.compile(f, mode=mode, dynamic=False)
        self.compile_seconds = 0.0
        self._seen: set[tuple] = set()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = (tuple(x.shape), x.dtype, x.device, torch.is_grad_enabled())
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


def compile_sampler(sampler: Sampler, mode: CompileMode = None) -> Sampler:
    """``sampler`` itself, with its density f replaced by a ``CompiledDensity`` (idempotent).

    The sampler keeps its ``module``, so ``run_chains`` still freezes the network's parameters while
    sampling (the compiled graph is then built without weight gradients). EBMError in one line when
    torch.compile is unavailable here."""
    if isinstance(sampler.f, CompiledDensity):
        return sampler
    check_compile_available()
    sampler.f = CompiledDensity(sampler.f, mode)
    return sampler


def compile_seconds(sampler: Sampler | None) -> float:
    """Seconds spent compiling ``sampler``'s density so far (0.0 for an eager sampler)."""
    f = getattr(sampler, "f", None)
    return f.compile_seconds if isinstance(f, CompiledDensity) else 0.0
