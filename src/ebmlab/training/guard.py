"""Divergence guard: stop (or roll back) the moment training goes non-finite or runs away.

Never masks a NaN and never checkpoints one: every step is checked once, *after* the optimiser
step and before the step is counted, logged or checkpointed — f, the loss and the gradients (as
they were for this update), the weights the update produced (finite, no larger than
``max_abs_param``, their norm not changed by more than ``max_param_update`` of itself) and the
negative chains (finite, inside ``max_chain_scale`` support boxes, Langevin moves shorter than that
many boxes). A failing step is discarded: ``stop`` ends the run with the last checkpoint (which
passed the same check) as LATEST, ``rollback`` restores it.

All quantities go to the host in one ``.tolist()``: one sync per training step, as before the
weights and chains were checked.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch

from ebmlab.errors import EBMError

REMEDIES = ("lower the learning rate (--lr), take more MCMC steps (--mcmc-steps), "
            "or add a stronger energy penalty (--l2)")
# the chains' own quantities have their own knobs
_CHAIN_REMEDIES = "lower the sampler's step size (--step-size) or its noise (--noise-scale)"


class DivergenceError(EBMError):
    """Training diverged; ``quantity`` and ``step`` say what and when.

    ``remedies``: the knobs to turn, as the run's objective has them (``Objective.remedies``; CD's
    ``REMEDIES`` by default): an objective without MCMC chains has no --mcmc-steps to raise."""

    def __init__(self, quantity: str, step: int, value: float, limit: float | None = None,
                 remedies: str = REMEDIES) -> None:
        self.quantity, self.step, self.value, self.limit = quantity, step, value, limit
        what = "is not finite" if not math.isfinite(value) else f"= {value:.3g} exceeds the limit {limit:.3g}"
        said = f"{_CHAIN_REMEDIES}, or {remedies}" if quantity.startswith("chain_") else remedies
        super().__init__(f"training diverged at step {step}: {quantity} {what}; remedies: {said}")

    def with_remedies(self, remedies: str) -> "DivergenceError":
        """The same divergence, with ``remedies`` named instead of CD's."""
        return DivergenceError(self.quantity, self.step, self.value, self.limit, remedies)


def first_bad(values: dict[str, torch.Tensor], limits: dict[str, float]) -> tuple[str, float, float | None] | None:
    """(name, value, limit or None) of the first quantity, in ``values``' order, that is not finite
    or exceeds its limit; None when all pass. One host sync for all of them.

    values: name -> 0-d tensor; limits: name -> largest allowed absolute value (names without a
    limit are only checked for finiteness).
    """
    names = list(values)
    if not names:
        return None
    nums = torch.stack([values[n].detach().float().reshape(()) for n in names]).cpu().tolist()
    for name, v in zip(names, nums):
        if not math.isfinite(v):
            return name, v, None
        lim = limits.get(name)
        if lim is not None and abs(v) > lim:
            return name, v, lim
    return None


def check_step(step: int, values: dict[str, torch.Tensor], limits: dict[str, float]) -> None:
    """One host sync for all guarded scalars; raise ``DivergenceError`` naming the first bad one.

    values: name -> 0-d tensor (f_pos, f_neg, loss, grad_norm, mcmc_grad_norm, chain_*, param_* ...).
    limits: name -> largest allowed absolute value (names without a limit are only checked for finiteness).
    """
    bad = first_bad(values, limits)
    if bad is not None:
        raise DivergenceError(bad[0], step, bad[1], bad[2])


# ---------------------------------------------------------------------------- the weights
def param_norm(params: Sequence[torch.Tensor]) -> torch.Tensor:
    """‖θ‖₂ over all tensors, as a 0-d tensor (one fused kernel per device and dtype, no sync)."""
    params = list(params)
    if not params:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(params)))


def max_abs(params: Sequence[torch.Tensor]) -> torch.Tensor:
    """max |θ| over all tensors, as a 0-d tensor (NaN if any entry is NaN; 0 without entries).

    A maximum is exact whatever the order it is taken in, so this is bit for bit the inf-norm
    ``_foreach_norm(params, inf)`` gave; but torch's CPU inf-norm is an unvectorised loop (57 µs for one
    128 x 128 matrix against 9 µs for abs + amax), which made it the guard's dearest line on the 2-D nets."""
    params = [p for p in params if p.numel()]
    if not params:
        return torch.zeros(())
    if hasattr(torch, "_foreach_max"):      # torch >= 2.6: one fused call per device and dtype
        return torch.stack(torch._foreach_max(torch._foreach_abs(params))).amax()
    return torch.stack([p.abs().amax() for p in params]).amax()


def param_quantities(params: Sequence[torch.Tensor], norm_before: torch.Tensor,
                     norm_after: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The weights after an update: {"param_max_abs": max |θ|, "param_update": |‖θ‖ - ‖θ_before‖| / ‖θ_before‖}.

    ``param_update`` is a lower bound of the relative update ‖Δθ‖ / ‖θ‖ (triangle inequality) that
    needs no copy of the weights; NaN anywhere makes ``param_max_abs`` NaN. From all-zero weights (a
    learned Potts or Ising model started at independence) no update has a relative size: ``param_update``
    is 0 there, and ``param_max_abs`` still bounds the step (dividing by ~0 stopped such runs at step 1).
    ``norm_after``: ``param_norm(params)`` if the caller already has it (the trainer keeps it as the next
    step's ``norm_before``).
    """
    params = list(params)
    if not params:
        return {}
    after = param_norm(params) if norm_after is None else norm_after
    relative = (after - norm_before).abs() / norm_before.clamp_min(torch.finfo(after.dtype).tiny)
    return {"param_max_abs": max_abs(params),
            "param_update": torch.where(norm_before > 0, relative, torch.zeros_like(relative))}


# ---------------------------------------------------------------------------- the chains
class ChainScale:
    """The data's scale for judging chains: the support box (vector data) or [-1, 1] per pixel.

    center, half: tensors broadcastable to one event; ``diag``: the box's half-diagonal ‖half‖₂.
    """

    def __init__(self, data_desc: dict[str, Any], device: torch.device | str = "cpu") -> None:
        if data_desc.get("kind") == "vector" and data_desc.get("bounds") is not None:
            b = torch.tensor(data_desc["bounds"], dtype=torch.float32, device=device)
            self.center, self.half = (b[:, 0] + b[:, 1]) / 2, ((b[:, 1] - b[:, 0]) / 2).clamp_min(1e-12)
            self.diag = float(torch.linalg.vector_norm(self.half))
        else:     # images live in [-1, 1] per pixel in the model's scale
            n = math.prod(data_desc.get("event_shape") or [1])
            self.center = torch.zeros((), device=device)
            self.half = torch.ones((), device=device)
            self.diag = math.sqrt(n)


def chain_quantities(x: torch.Tensor, scale: ChainScale, config: Any,
                     mean_grad_norm: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """Have the chains run away? x: [B, *event] chain states after a run.

    chain_range: max over chains and coordinates of |x - center| / half-width of the box (NaN if any
        chain is not finite; <= 1 inside the box). One reduction, after ``run_chains`` returns.
    chain_step (unadjusted Langevin only, ``config.sampler == "langevin"``): the length of one move,
        step_size * min(‖∇f‖, clip √D) + noise_scale √D, in half-diagonals of the box. A Langevin
        clamped to the box never leaves it, however absurd the step: its chains then sit on the
        box's faces (noise), and only the move length shows it. ‖∇f‖ is the chains' mean
        (``mean_grad_norm`` [B] or a 0-d mean), which the sampler already measures.
    """
    flat = x.detach().reshape(x.shape[0], -1)
    out = {"chain_range": ((flat - scale.center.reshape(-1)) / scale.half.reshape(-1)).abs().amax()}
    if getattr(config, "sampler", None) == "langevin" and mean_grad_norm is not None:
        d = flat.shape[1]
        noise = config.noise_scale if config.noise_scale is not None else math.sqrt(2.0 * config.step_size)
        g = mean_grad_norm.detach().float().mean()
        if config.grad_clip is not None:
            g = g.clamp_max(config.grad_clip * math.sqrt(d))
        out["chain_step"] = (config.step_size * g + noise * math.sqrt(d)) / scale.diag
    return out


def check_samples(values: dict[str, torch.Tensor], limit: float) -> None:
    """Sampling-time version of the chain check: EBMError in one line if the chains ran away."""
    bad = first_bad(values, {k: limit for k in values})
    if bad is None:
        return
    name, v, lim = bad
    what = "is not finite" if lim is None else f"= {v:.3g} exceeds the limit {lim:.3g}"
    raise EBMError(f"sampling diverged: {name} {what} (in sizes of the data's support box); "
                   f"nothing was written; {_CHAIN_REMEDIES}, or fewer steps (--n-steps)")
