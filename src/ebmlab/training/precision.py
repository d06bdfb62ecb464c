"""Mixed precision for training (``RunConfig.precision``): the network runs in bf16/fp16, nothing else.

- ``fp32`` (default): no autocast at all; the training path is exactly the float32 one.
- ``bf16``: the network's forward passes (positives, negatives and every ∇x f of the sampler) run
  under ``torch.autocast`` in bfloat16; CPU and CUDA.
- ``fp16``: the same in float16, with a ``torch.amp.GradScaler`` against gradient underflow; CUDA
  only (``RunConfig`` refuses it on the CPU).

What stays float32: the chain states x (Langevin's update, the noise and the clamp), f as the loss
and the divergence guard see it (cast back after the network), the weights, the optimiser and the
checkpoints. Sampling and evaluation of a finished run (``ebmlab sample``/``eval``) run in float32.
"""
from __future__ import annotations

import contextlib
from typing import Any, ContextManager

import torch
from torch import nn

from ebmlab.density import DensityMethods

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(precision: str, device: torch.device) -> ContextManager[Any]:
    """``torch.autocast`` for ``precision`` on ``device``'s type; a no-op context for fp32."""
    dtype = DTYPES[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


class AutocastDensity(DensityMethods, nn.Module):
    """f(x) of ``target`` with its network under autocast, returned as float32.

    What the trainer gives the MCMC kernel when ``precision`` is not fp32. x stays float32: autocast
    casts it to bf16/fp16 inside the network only, so ∇x f comes back float32 and the chain update
    x <- x + step_size * ∇f + noise is done in float32. ``target``'s parameters are this module's,
    so samplers freeze them while sampling as usual.
    """

    def __init__(self, target: nn.Module, precision: str, device: torch.device) -> None:
        super().__init__()
        self.target = target
        self.precision, self.device_type = precision, torch.device(device).type

    @property
    def bounds(self) -> torch.Tensor | None:
        return getattr(self.target, "bounds", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_density(x)

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        with autocast(self.precision, self.device_type):
            f = self.target.log_density(x)
        return f.float()
