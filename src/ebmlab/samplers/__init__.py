"""MCMC samplers for p ∝ exp(f), f = log_density. All are batched over chains and draw every random
number from an explicit ``torch.Generator``.

Calibrated (exact invariant law): ``MetropolisHastings``, ``MALA``, ``HMC``.
Unadjusted (biased by the step size): ``Langevin``.
"""
from ebmlab.samplers.accept import mh_accept
from ebmlab.samplers.base import ChainState, Sampler, StepInfo
from ebmlab.samplers.hmc import HMC
from ebmlab.samplers.langevin import Langevin
from ebmlab.samplers.mala import MALA
from ebmlab.samplers.mh import MetropolisHastings
from ebmlab.samplers.proposals import BitFlip, GaussianRandomWalk, Proposal, UniformJumpProposal
from ebmlab.samplers.run import METHODS, ChainDiagnostics, make_sampler, run_chains, sample

__all__ = [
    "ChainState", "StepInfo", "Sampler", "mh_accept",
    "MetropolisHastings", "Langevin", "MALA", "HMC",
    "Proposal", "GaussianRandomWalk", "BitFlip", "UniformJumpProposal",
    "METHODS", "ChainDiagnostics", "make_sampler", "run_chains", "sample",
]
