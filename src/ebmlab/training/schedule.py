"""The learning-rate schedule: linear warm-up, then cosine decay to ``lr_min_factor * lr`` (or constant).

The cosine runs over a *phase* t in [0, 1]: factor = m + (1 - m) (1 + cos(pi t)) / 2, m = lr_min_factor
(Loshchilov & Hutter 2017, without restarts). A run trained straight through has t = step / steps.

``--resume --steps N`` (a new horizon) must not make the learning rate jump, as recomputing t with
the new ``steps`` would (t = step / N falls, so the lr rises back up the cosine). Instead the part
of the cosine still to go is *stretched* over the steps still to go: at the restored step s0 with
phase t0, the phase runs linearly from t0 at s0 to 1 at N,

    t(step) = t0 + (1 - t0) (step - s0) / (N - s0),

so the lr is continuous at s0 and still ends at ``lr_min_factor * lr`` at N. A run that had
finished (t0 = 1) therefore continues at its final, smallest lr — fine-tuning, not a restart.
The anchor {"step": s0, "phase": t0} is kept in config.json (``lr_anchor``), so later resumes of the
stretched run are exact; another extension re-anchors at the phase the stretched schedule has then.
"""
from __future__ import annotations

import math

from ebmlab.rundir.config import RunConfig


def phase(config: RunConfig, step: int) -> float:
    """Where ``step`` is on the cosine, in [0, 1] (see the module docstring)."""
    a = config.lr_anchor
    if not a:
        return min(step, config.steps) / config.steps
    s0, t0 = int(a["step"]), float(a["phase"])
    if config.steps <= s0:
        return t0
    return t0 + (1.0 - t0) * min(max(step - s0, 0), config.steps - s0) / (config.steps - s0)


def lr_factor(config: RunConfig, step: int, lr_scale: float = 1.0) -> float:
    """The learning rate after ``step`` updates, as a multiple of ``config.lr``.

    ``lr_scale`` < 1 after a divergence rollback (training.trainer halves it)."""
    c = config
    warm = lr_scale * (min(1.0, (step + 1) / c.warmup_steps) if c.warmup_steps else 1.0)
    if c.lr_schedule == "constant":
        return warm
    t = phase(c, step)
    return warm * (c.lr_min_factor + (1 - c.lr_min_factor) * 0.5 * (1 + math.cos(math.pi * t)))


def with_new_horizon(config: RunConfig, at_step: int, steps: int) -> RunConfig:
    """``config`` trained to ``steps`` instead, resumed at ``at_step``: the cosine's rest stretched (no jump)."""
    if steps == config.steps:
        return config
    anchor = {"step": at_step, "phase": phase(config, at_step)} if steps > at_step else config.lr_anchor
    return config.replace(steps=steps, lr_anchor=anchor)
