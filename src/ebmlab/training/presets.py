"""Named recipes. Each number is documented with its source; explicit user settings always win.

- ``2d``: ebmlab's default for vector data with d <= 3 — persistent chains moved by
  Metropolis–Hastings with a proposal that mixes uniform jumps over the support box with local
  steps. Local chains (Langevin) cannot move mass between separated modes, so mode weights come out
  wrong; the jumps fix that in low dimension (measured: benchmarks/RESULTS.md).
- ``vector``: d > 3, where uniform jumps are hopeless — persistent unadjusted Langevin.
- ``short-run``: Nijkamp et al. 2019, "On the anatomy of MCMC-based maximum likelihood learning of
  EBMs" / short-run MCMC: uniform noise in [-1, 1], K = 100 steps of x <- x + ∇f + 0.01 z
  (step 1, noise 0.01), data noise 0.03, Adam 1e-4, no buffer.
- ``persistent``: Du & Mordatch 2019 (IGEBM): replay buffer 10 000 with 5 % re-initialisation,
  60 steps, step 10, noise 0.005, per-pixel gradient clip 0.01, L2 1.0, spectral norm.
- ``digits``: the default for the built-in 8x8 digits on a 2-core CPU — short-run from uniform
  noise (which is what ``sample`` starts from), 60 steps, larger lr, 1750 steps (~10 min of one CPU
  core). 60 rather than 40 chain steps: 40-step models over-sharpen when ``sample`` runs its default
  100 steps (FD ratio 14.5 vs 5.8 at 300 CPU-s; benchmarks/results/digits.md).
"""
from __future__ import annotations

from typing import Any

from ..config import RunConfig
from ..errors import EBMError

PRESETS: dict[str, dict[str, Any]] = {
    "2d": {},   # the RunConfig defaults are the 2-D recipe
    "vector": dict(sampler="langevin", step_size=0.01, mcmc_steps=30, lr=1e-3, init="data",
                   reinit_prob=0.05),
    "short-run": dict(negatives="short-run", sampler="langevin", mcmc_steps=100, step_size=1.0,
                      noise_scale=0.01, data_noise=0.03, lr=1e-4, lr_schedule="constant", init="uniform",
                      batch_size=64, l2=0.0),
    "persistent": dict(negatives="persistent", sampler="langevin", buffer_size=10000, reinit_prob=0.05,
                       mcmc_steps=60, step_size=10.0, noise_scale=0.005, grad_clip=0.01, l2=1.0,
                       spectral_norm=True, lr=1e-4, lr_schedule="constant", init="uniform", batch_size=128),
    "digits": dict(negatives="short-run", sampler="langevin", mcmc_steps=60, step_size=1.0, noise_scale=0.01,
                   data_noise=0.03, lr=1e-3, adam_beta1=0.5, lr_schedule="constant", init="uniform",
                   batch_size=128, steps=1750, l2=0.0, checkpoint_every=250, plot_every=250),
}


def auto_preset(kind: str | None, dim: int | None, data_spec: str) -> str:
    if kind == "image":
        return "digits" if data_spec == "digits" else "short-run"
    if kind == "vector" and dim is not None and dim > 3:
        return "vector"
    return "2d"


def resolve_config(data_spec: str, overrides: dict[str, Any], dataset=None) -> RunConfig:
    """RunConfig = preset values (named, or picked from the data) updated by the user's ``overrides``."""
    overrides = {k: v for k, v in overrides.items() if v is not None or k in ("noise_scale", "grad_clip")}
    name = overrides.pop("preset", None)
    if name is None and dataset is not None:
        dim = dataset.train.shape[1] if dataset.kind == "vector" else None
        name = auto_preset(dataset.kind, dim, data_spec)
    values: dict[str, Any] = {}
    if name is not None:
        if name not in PRESETS:
            raise EBMError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        values.update(PRESETS[name])
    values.update(overrides)
    values["data"] = data_spec
    return RunConfig.from_dict({**values, "preset": name})
