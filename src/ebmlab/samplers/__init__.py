"""MCMC samplers for p ∝ exp(f), f = log_density. All are batched over chains and draw every random
number from an explicit ``torch.Generator``.

Calibrated (exact invariant law): ``MetropolisHastings``, ``MALA``, ``HMC``.
Binary states {0, 1}: ``Gibbs``, ``GibbsWithGradients``, ``DiscreteLangevin`` (DMALA, or DULA unadjusted),
``BlockGibbs`` (RBMs). Categorical one-hot states: ``CategoricalGibbs``, ``CategoricalGWG``.
Unadjusted (biased by the step size): ``Langevin`` (and ``MaskedLangevin``, which moves only the
free coordinates: inpainting). Every method by name, with its default step size and options:
``registry.SAMPLERS``, built by ``make_sampler``.
"""
from ebmlab.samplers.accept import mh_accept
from ebmlab.samplers.base import ChainState, Sampler, StepInfo
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
from ebmlab.samplers.proposals import BitFlip, GaussianRandomWalk, Proposal, UniformJumpProposal
from ebmlab.samplers.masked import MaskedLangevin
from ebmlab.samplers.registry import BINARY_SAMPLERS, CATEGORICAL_SAMPLERS, SAMPLER_NAMES, SAMPLERS, SamplerSpec, make_sampler
from ebmlab.samplers.run import METHODS, ChainDiagnostics, run_chains, sample

__all__ = [
    "ChainState", "StepInfo", "Sampler", "mh_accept",
    "MetropolisHastings", "Langevin", "MaskedLangevin", "MALA", "HMC",
    "Proposal", "GaussianRandomWalk", "BitFlip", "UniformJumpProposal",
    "Gibbs", "GibbsWithGradients", "DiscreteLangevin", "BlockGibbs", "CategoricalGibbs", "CategoricalGWG", "CATEGORICAL_SAMPLERS",
    "SAMPLERS", "SAMPLER_NAMES", "BINARY_SAMPLERS", "SamplerSpec", "METHODS", "ChainDiagnostics", "make_sampler", "run_chains", "sample",
]
