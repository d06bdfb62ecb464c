"""Devices by name: ``auto`` (CUDA when present, else the CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps``.

Checked before anything is written, so an unavailable device is one line and no half-made run.
"""
from __future__ import annotations

import torch

from ebmlab.errors import EBMError

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(spec: str | torch.device) -> torch.device:
    """The torch.device for ``spec``; EBMError naming the problem when it is unknown or not available here."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    if not isinstance(spec, str) or not spec:
        raise EBMError(f"device must be one of {DEVICE_CHOICES}, got {spec!r}")
    if spec == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    try:
        dev = torch.device(spec)
    except (RuntimeError, ValueError):
        raise EBMError(f"unknown device {spec!r}; use {DEVICE_CHOICES}") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise EBMError(f"device {spec!r} is not available: this PyTorch has no CUDA GPU to use "
                           f"({'a CPU-only build' if torch.version.cuda is None else 'no GPU found'}); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise EBMError(f"device {spec!r} is not available: this machine has {torch.cuda.device_count()} "
                           f"CUDA device(s), numbered from 0")
        return dev
    if dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise EBMError(f"device {spec!r} is not available on this machine (no Apple GPU); use --device cpu")
        return dev
    raise EBMError(f"device type {dev.type!r} is not supported; use {DEVICE_CHOICES}")


def usable_cpu_threads(requested: int) -> int:
    """``requested`` torch CPU threads, capped at the cores this process may run on (its CPU affinity, which
    a container or ``taskset`` narrows; else ``os.cpu_count()``), with a warning when capped: threads beyond
    the cores only wait on each other (``--threads 1000`` on 2 cores made a 3-step run take minutes and the
    machine's load 275)."""
    import os
    import warnings
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if requested > cores:
        warnings.warn(f"--threads {requested} is more than the {cores} CPU cores this process can use; using "
                      f"{cores} (more threads than cores only wait on each other)")
        return cores
    return requested
