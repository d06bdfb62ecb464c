"""MCMC samplers for p ∝ exp(f), f = log_density. All are batched over chains and draw every random
number from an explicit ``torch.Generator``.

Calibrated (exact invariant law): ``MetropolisHastings``, ``MALA``, ``HMC``.
Unadjusted (biased by the step size): ``Langevin``.
"""
from .accept import mh_accept
from .base import ChainState, Sampler, StepInfo
from .hmc import HMC
from .langevin import Langevin
from .mala import MALA
from .mh import MetropolisHastings
from .proposals import BitFlip, GaussianRandomWalk, Proposal, UniformJumpProposal
from .run import METHODS, ChainDiagnostics, make_sampler, run_chains, sample

__all__ = [
    "ChainState", "StepInfo", "Sampler", "mh_accept",
    "MetropolisHastings", "Langevin", "MALA", "HMC",
    "Proposal", "GaussianRandomWalk", "BitFlip", "UniformJumpProposal",
    "METHODS", "ChainDiagnostics", "make_sampler", "run_chains", "sample",
]
