"""Keep freed tensor memory inside the process (glibc's malloc), so a sampling step does not page-fault.

A Langevin step allocates and frees the same few megabytes of activations and gradients every call
(TorchInductor's generated code allocates each of its buffers anew per call, more of them than eager
autograd). glibc's default malloc hands freed memory back to the kernel — large blocks are mmap'd and
unmapped, and the heap top is trimmed once more than a (dynamic, few-MB) threshold is free — so the
next step takes those pages back one minor page fault at a time. Measured on the sampler-speed conv
workload (256 chains of 1x8x8, 1 thread, this 2-core VM; benchmarks/results/compile_speed.md and
compile_gap_default.md): 600-1100 page faults and 1.4-3.6 ms of kernel time per eager step,
1300-1600 faults and 3.4-4.8 ms per compiled step, of 10-16 ms. With a high trim threshold and the
largest mmap threshold glibc accepts, freed blocks stay in the heap and both counts drop to zero.

The cost: memory a run has freed stays with the process (up to ``TRIM_THRESHOLD`` at the heap top;
single blocks above ``MMAP_THRESHOLD`` are still mmap'd and returned) — memory the run had needed at
its peak anyway, so the peak does not grow. The setting is process-wide, so the library never sets it
behind a caller's back: the ``ebmlab`` command (its own process) and the compiled path
(``compile_sampler``) turn it on, unless ``EBMLAB_KEEP_FREED_MEMORY=0``; a Python caller who wants it
calls ``keep_freed_memory()``. Eager runs measured in benchmarks/results/malloc_speed.md (eager
Langevin on the conv workload 0.80x per step, training 0.99-1.00x). Other allocators and platforms
(musl, macOS, Windows) are left alone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

from ebmlab.errors import EBMError

# glibc's mallopt parameter numbers (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD = 1 << 30      # bytes free at the heap top before glibc gives them back to the kernel
MMAP_THRESHOLD = 32 << 20     # glibc's maximum on 64-bit: larger requests are mmap'd (and returned)

_applied: bool | None = None   # None: not tried yet in this process


def keep_freed_memory() -> bool:
    """Raise glibc's trim and mmap thresholds for this process (once; later calls return the first
    answer). True when they were set, False where the C library is not glibc or mallopt refused."""
    global _applied
    if _applied is None:
        _applied = _set_thresholds()
    return _applied


def keep_freed_memory_unless_disabled() -> bool:
    """``keep_freed_memory()`` unless the environment says EBMLAB_KEEP_FREED_MEMORY=0 (what the command
    line and the compiled path call). EBMError in one line for a value other than 0 or 1."""
    setting = os.environ.get("EBMLAB_KEEP_FREED_MEMORY", "1")
    if setting not in ("0", "1"):
        raise EBMError(f"EBMLAB_KEEP_FREED_MEMORY={setting!r} must be 1 (keep freed memory in the process, "
                       "the default: fewer page faults per step) or 0 (glibc's default malloc)")
    return setting == "1" and keep_freed_memory()


def _set_thresholds() -> bool:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; setting either turns off glibc's dynamic threshold adjustment
    return bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
