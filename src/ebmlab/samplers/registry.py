"""The one table of sampling methods: name -> builder, its default step size and its options.

Everything that picks a sampler by name reads this table: ``ebmlab.sample`` and ``make_sampler``,
training (``config.sampler``), ``ebmlab sample --method`` and ``ebmlab train --sampler``, and the
run-config validation. The defaults below are the classes' own defaults, so
``sample(f, x0, "hmc")``, ``make_sampler(f, "hmc")`` and ``HMC(f)`` build the same sampler.

=========  =========================================  ============  ==============================
name       sampler                                    default step  options
=========  =========================================  ============  ==============================
mh-jump    MetropolisHastings + UniformJumpProposal   0.05          bounds, jump_prob (0.2)
mh         MetropolisHastings + GaussianRandomWalk    0.1           proposal
langevin   Langevin (unadjusted)                      0.01          noise_scale, grad_clip, bounds
mala       MALA                                       0.01          (none)
hmc        HMC                                        0.1           n_leapfrog (10)
gibbs      Gibbs: single-site, random scan, {0,1}      (unused)      (none)
gwg        GibbsWithGradients, {0,1}                  (unused)      (none)
dmala      DiscreteLangevin(adjusted=True), {0,1}     0.2           (none)
dula       DiscreteLangevin(adjusted=False), {0,1}    0.2           (none)
block-gibbs BlockGibbs (an RBM's v -> h -> v), {0,1}  (unused)      (none)
categorical-gibbs  CategoricalGibbs, one-hot      (unused)      categories
categorical-gwg    CategoricalGWG, one-hot        (unused)      categories
annealed-  AnnealedLangevin (Song & Ermon 2019)       0.01          sigmas, steps_per_level,
langevin                                                            bounds, denoise
recovery   RecoveryLangevin (Gao et al. 2021)         0.2           steps_per_level, bounds
=========  =========================================  ============  ==============================

What ``step_size`` means differs by method, because the natural scale differs:
- mh-jump: the local random-walk step as a fraction of the box's mean width (local_scale =
  step_size * mean(high - low)); with probability ``jump_prob`` a chain instead jumps uniformly over
  the box. It needs a box: ``bounds=`` or the model's own ``bounds`` (the default 2-D recipe's sampler).
- mh: the standard deviation of the Gaussian random walk (ignored when ``proposal=`` is given).
- langevin, mala: ε in x + ε ∇f + noise; hmc: the leapfrog step (trajectory length ε L = 1 by default).
- dmala, dula: α in each bit's flip log-odds (1 - 2x_i) ∇_i f / 2 - 1/(2α) (Zhang et al. 2022).
- gibbs, gwg, block-gibbs have no step size; the number is accepted and ignored.
The binary samplers (``BINARY_SAMPLERS``) need states in {0, 1}; the categorical ones
(``CATEGORICAL_SAMPLERS``) one-hot states [B, d*K] with ``categories=K`` (or [B, d, K]).
- annealed-langevin: ε at the smallest noise level; level σ_i steps ε σ_i² / σ_min² (the sampler of
  models trained by denoising score matching at several levels).
- recovery: b² in each level's step ε_t = b² σ_t² (Gao et al. 2021); it walks a drl model
  (``models.recovery``) down its noise levels, ``steps_per_level`` steps each, and refuses other models.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch

from ebmlab.box import Box
from ebmlab.errors import EBMError
from ebmlab.samplers.annealed import AnnealedLangevin
from ebmlab.samplers.base import LogDensity, Sampler, check_positive
from ebmlab.samplers.block_gibbs import BlockGibbs
from ebmlab.samplers.categorical_gibbs import CategoricalGibbs
from ebmlab.samplers.categorical_gwg import CategoricalGWG
from ebmlab.samplers.dlangevin import DiscreteLangevin
from ebmlab.samplers.gibbs import Gibbs
from ebmlab.samplers.gwg import GibbsWithGradients
from ebmlab.samplers.hmc import HMC
from ebmlab.samplers.langevin import Langevin
from ebmlab.samplers.mala import MALA
from ebmlab.samplers.mh import MetropolisHastings
from ebmlab.samplers.recovery import RecoveryLangevin
from ebmlab.samplers.proposals import GaussianRandomWalk, UniformJumpProposal

DEFAULT_JUMP_PROB = 0.2   # mh-jump: the 2-D recipe's value (RunConfig.jump_prob)


@dataclass(frozen=True)
class SamplerSpec:
    """One row of the table.

    build(f, step_size, **options) -> Sampler; ``step_size`` is the default when the caller gives
    none; ``options`` are the keyword arguments ``build`` takes besides f and step_size.
    """

    build: Callable[..., Sampler]
    step_size: float
    options: tuple[str, ...]
    summary: str


def _mh_jump(f: LogDensity | torch.nn.Module, step_size: float, bounds: Any = None,
             jump_prob: float = DEFAULT_JUMP_PROB) -> Sampler:
    box = Box(bounds) if bounds is not None else Box.of(f)
    if box is None:
        raise EBMError("method 'mh-jump' needs a support box: pass bounds=[(low, high), ...] "
                       "or use a model with bounds (or choose 'mh' / 'langevin')")
    step_size = check_positive("step_size", step_size)
    # widths in float32, as the 2-D recipe always computed them: trained runs stay bit-identical
    rows = box.rows.float()
    local = step_size * float((rows[:, 1] - rows[:, 0]).mean())
    return MetropolisHastings(f, UniformJumpProposal(box.rows, jump_prob, local))


def _mh(f: LogDensity | torch.nn.Module, step_size: float, proposal: Any = None) -> Sampler:
    return MetropolisHastings(f, GaussianRandomWalk(step_size) if proposal is None else proposal)


def _langevin(f: LogDensity | torch.nn.Module, step_size: float, noise_scale: float | None = None,
              grad_clip: float | None = None, bounds: Any = None) -> Sampler:
    return Langevin(f, step_size, noise_scale=noise_scale, grad_clip=grad_clip, bounds=bounds)


def _mala(f: LogDensity | torch.nn.Module, step_size: float) -> Sampler:
    return MALA(f, step_size)


def _hmc(f: LogDensity | torch.nn.Module, step_size: float, n_leapfrog: int = 10) -> Sampler:
    return HMC(f, step_size, n_leapfrog=n_leapfrog)


def _gibbs(f: LogDensity | torch.nn.Module, step_size: float) -> Sampler:
    return Gibbs(f)


def _gwg(f: LogDensity | torch.nn.Module, step_size: float) -> Sampler:
    return GibbsWithGradients(f)


def _dmala(f: LogDensity | torch.nn.Module, step_size: float) -> Sampler:
    return DiscreteLangevin(f, step_size, adjusted=True)


def _dula(f: LogDensity | torch.nn.Module, step_size: float) -> Sampler:
    return DiscreteLangevin(f, step_size, adjusted=False)


def _block_gibbs(f: LogDensity | torch.nn.Module, step_size: float) -> Sampler:
    return BlockGibbs(f)


def _categorical_gibbs(f: LogDensity | torch.nn.Module, step_size: float, categories: int | None = None) -> Sampler:
    return CategoricalGibbs(f, categories)


def _categorical_gwg(f: LogDensity | torch.nn.Module, step_size: float, categories: int | None = None) -> Sampler:
    return CategoricalGWG(f, categories)


def _annealed(f: LogDensity | torch.nn.Module, step_size: float, sigmas: Any = (1.0, 0.5, 0.25, 0.1),
              steps_per_level: int = 10, bounds: Any = None, denoise: bool = False) -> Sampler:
    return AnnealedLangevin(f, step_size, sigmas=sigmas, steps_per_level=steps_per_level, bounds=bounds,
                            denoise=denoise)


def _recovery(f: Any, step_size: float, steps_per_level: int = 10, bounds: Any = None) -> Sampler:
    return RecoveryLangevin(f, step_size, steps_per_level=steps_per_level, bounds=bounds)


SAMPLERS: dict[str, SamplerSpec] = {
    "mh-jump": SamplerSpec(_mh_jump, 0.05, ("bounds", "jump_prob"),
                           "Metropolis-Hastings, local steps plus uniform jumps over the support box"),
    "mh": SamplerSpec(_mh, 0.1, ("proposal",), "random-walk Metropolis-Hastings (gradient-free)"),
    "langevin": SamplerSpec(_langevin, 0.01, ("noise_scale", "grad_clip", "bounds"),
                            "unadjusted Langevin (biased by the step size; the EBM-training sampler)"),
    "mala": SamplerSpec(_mala, 0.01, (), "Metropolis-adjusted Langevin"),
    "hmc": SamplerSpec(_hmc, 0.1, ("n_leapfrog",), "Hamiltonian Monte Carlo"),
    "gibbs": SamplerSpec(_gibbs, 1.0, (), "single-site Gibbs on {0,1} states (random scan, one bit a step)"),
    "gwg": SamplerSpec(_gwg, 1.0, (), "Gibbs-with-gradients on {0,1} states (Grathwohl et al. 2021, MH-corrected)"),
    "dmala": SamplerSpec(_dmala, 0.2, (), "discrete Metropolis-adjusted Langevin on {0,1} states (Zhang et al. 2022)"),
    "dula": SamplerSpec(_dula, 0.2, (), "discrete unadjusted Langevin on {0,1} states (biased by the step size)"),
    "block-gibbs": SamplerSpec(_block_gibbs, 1.0, (), "block Gibbs v -> h -> v for an RBM"),
    "categorical-gibbs": SamplerSpec(_categorical_gibbs, 1.0, ("categories",),
                                     "single-site Gibbs on one-hot categorical states (K evaluations a step)"),
    "categorical-gwg": SamplerSpec(_categorical_gwg, 1.0, ("categories",),
                                   "Gibbs-with-gradients on one-hot categorical states (Grathwohl et al. 2021)"),
    "annealed-langevin": SamplerSpec(_annealed, 0.01, ("sigmas", "steps_per_level", "bounds", "denoise"),
                                     "Langevin with the step annealed over noise levels (denoising score matching)"),
    "recovery": SamplerSpec(_recovery, 0.2, ("steps_per_level", "bounds"),
                            "Langevin down a drl model's noise levels, from noise to data (Gao et al. 2021)"),
}
SAMPLER_NAMES: tuple[str, ...] = tuple(SAMPLERS)
# the samplers that move {0, 1} states (and only those); training on binary data picks among them
BINARY_SAMPLERS: tuple[str, ...] = ("gibbs", "gwg", "dmala", "dula", "block-gibbs")
# the samplers that move one-hot categorical states; training on categorical data picks among them
CATEGORICAL_SAMPLERS: tuple[str, ...] = ("categorical-gibbs", "categorical-gwg")


def spec(method: str) -> SamplerSpec:
    """The table row for ``method``; EBMError naming the choices for an unknown one."""
    if method not in SAMPLERS:
        raise EBMError(f"unknown sampling method {method!r}; choose one of {', '.join(SAMPLER_NAMES)}")
    return SAMPLERS[method]


def make_sampler(f: LogDensity | torch.nn.Module, method: str = "langevin", step_size: float | None = None,
                 **options: Any) -> Sampler:
    """Build a sampler by name (see the table above); ``step_size`` None means the method's default.

    ``options`` are the method's options; one it does not take raises EBMError.
    """
    s = spec(method)
    unknown = sorted(set(options) - set(s.options))
    if unknown:
        raise EBMError(f"method {method!r} does not take {', '.join(unknown)}; "
                       f"its options are {['step_size', *s.options]}")
    return s.build(f, s.step_size if step_size is None else step_size, **options)


def options_for(method: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``settings`` that ``method`` takes as options (a run config offers all of them)."""
    return {k: v for k, v in settings.items() if k in spec(method).options}
