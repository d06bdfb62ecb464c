"""Divergence guard: stop (or roll back) the moment training goes non-finite or runs away.

Never masks a NaN: the quantities are checked *before* the optimiser applies the gradient, so a
bad step never reaches the weights or a checkpoint.
"""
from __future__ import annotations

import math

import torch

from ebmlab.errors import EBMError

REMEDIES = ("lower the learning rate (--lr), take more MCMC steps (--mcmc-steps), "
            "or add a stronger energy penalty (--l2)")


class DivergenceError(EBMError):
    """Training diverged; ``quantity`` and ``step`` say what and when."""

    def __init__(self, quantity: str, step: int, value: float, limit: float | None = None) -> None:
        self.quantity, self.step, self.value = quantity, step, value
        what = "is not finite" if not math.isfinite(value) else f"= {value:.3g} exceeds the limit {limit:.3g}"
        super().__init__(f"training diverged at step {step}: {quantity} {what}; remedies: {REMEDIES}")


def check_step(step: int, values: dict[str, torch.Tensor], limits: dict[str, float]) -> None:
    """One host sync for all guarded scalars; raise ``DivergenceError`` naming the first bad one.

    values: name -> 0-d tensor (f_pos, f_neg, loss, grad_norm, mcmc_grad_norm ...).
    limits: name -> largest allowed absolute value (names without a limit are only checked for finiteness).
    """
    names = list(values)
    nums = torch.stack([values[n].detach().float().reshape(()) for n in names]).cpu().tolist()
    for name, v in zip(names, nums):
        if not math.isfinite(v):
            raise DivergenceError(name, step, v)
    for name, v in zip(names, nums):
        lim = limits.get(name)
        if lim is not None and abs(v) > lim:
            raise DivergenceError(name, step, v, lim)
