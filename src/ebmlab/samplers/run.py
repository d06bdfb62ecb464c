"""The sampling loop and the one-call entry point ``ebmlab.sample``.

``run_chains`` drives any sampler for n steps over a batch of chains and sums its diagnostics on
the device: no ``.item()``, no printing, no host sync inside the loop.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import torch

from ebmlab.errors import EBMError, first_evaluation
from ebmlab.samplers.base import LogDensity, Sampler, frozen_parameters
from ebmlab.samplers.registry import SAMPLER_NAMES, make_sampler

# the method names, kept under their old public name (the table itself is registry.SAMPLERS)
METHODS: tuple[str, ...] = SAMPLER_NAMES


class ChainDiagnostics(NamedTuple):
    """Per-chain summaries of a run, as on-device tensors (call ``.mean()`` for one number).

    acceptance_rate: [B] fraction of steps accepted (1 for unadjusted Langevin).
    mean_accept_prob: [B] mean of min(1, exp(log_alpha)), a lower-variance estimate of the same.
    mean_grad_norm: [B] mean ‖∇f‖ over the steps, or None for gradient-free samplers.
    n_steps: the number of steps taken.
    mean_flips: [B] mean number of coordinates changed per step (binary-state samplers), else None.
    """
    acceptance_rate: torch.Tensor
    mean_accept_prob: torch.Tensor
    mean_grad_norm: torch.Tensor | None
    n_steps: int
    mean_flips: torch.Tensor | None = None


def resolve_generator(generator: torch.Generator | None, device: torch.device) -> torch.Generator:
    """The caller's generator, checked against the device; or a fresh one seeded from torch's global RNG.

    Seeding from the global RNG (rather than using it step by step) keeps ``torch.manual_seed`` in
    charge of reproducibility while all draws of the run still come from one generator.
    """
    if generator is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())   # once per run, outside the loop
        return torch.Generator(device=device).manual_seed(seed)
    if not isinstance(generator, torch.Generator):
        raise EBMError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    # the device TYPE only, as torch itself checks (pytorch#59352): a cuda:0 generator draws a cuda:1 tensor
    # from its own seed and offset, reproducibly, so refusing it would refuse what torch allows
    if generator.device.type != torch.device(device).type:
        raise EBMError(f"the generator is on {generator.device} but x0 is on {device}; "
                       f"make it with torch.Generator(device={str(device)!r})")
    return generator


def run_chains(sampler: Sampler, x0: torch.Tensor, n_steps: int,
               generator: torch.Generator | None = None, *,
               check_finite: bool = False) -> tuple[torch.Tensor, ChainDiagnostics]:
    """Advance B chains from x0 [B, *event] by ``n_steps`` steps of ``sampler``.

    Returns (x [B, *event] with x0's dtype and device, ChainDiagnostics). Builds no autograd graph
    across steps and leaves no ``.grad`` on model parameters. ``check_finite`` (what ``ebmlab.sample``
    sets) refuses, in one line, an x0 with NaN / inf values, an f that is NaN or +inf at x0 and chains that
    end non-finite: three host syncs per call, none per step. Training leaves it off, since its divergence
    guard judges the chains once a step and its steps must not wait on the host.
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 0:
        raise EBMError(f"n_steps must be an integer >= 0, got {n_steps!r}")
    if not isinstance(sampler, Sampler):
        raise EBMError(f"run_chains needs a Sampler (see make_sampler), got {type(sampler).__name__}")
    if not isinstance(x0, torch.Tensor):
        raise EBMError(f"x0 must be a torch.Tensor of shape [B, *event], got {type(x0).__name__}")
    generator = resolve_generator(generator, x0.device)
    if check_finite and x0.is_floating_point() and not bool(torch.isfinite(x0).all()):
        raise EBMError("x0 contains NaN or infinite values; start the chains from finite points")
    with frozen_parameters(sampler.module):
        x, diag = _run(sampler, x0, n_steps, generator, check_finite)
    if check_finite and x.is_floating_point() and not bool(torch.isfinite(x).all()):
        # a NaN returned silently would poison whatever the user computes next
        raise EBMError(f"the chains reached NaN or infinite values within {n_steps} steps: f or its gradient is "
                       "not finite there, or the step size is too large for f; lower step_size (or check f)")
    return x, diag


def _run(sampler: Sampler, x0: torch.Tensor, n_steps: int, generator: torch.Generator,
         check_finite: bool = False) -> tuple[torch.Tensor, ChainDiagnostics]:
    with first_evaluation("x0", tuple(x0.shape)):
        state = sampler.init(x0)
    # NaN or +inf at the start: a calibrated sampler rejects every move and returns x0 as if it had mixed
    # (-inf is allowed: a point outside a model's support box)
    if check_finite and state.log_density.is_floating_point() and bool(
            (torch.isnan(state.log_density) | (state.log_density == float("inf"))).any()):
        raise EBMError("f is NaN or +inf at some chains' starting points x0; fix f there (or start the chains "
                       "elsewhere) before sampling")
    dtype = state.log_density.dtype if state.log_density.is_floating_point() else torch.float32
    b = x0.shape[0]
    accepted = torch.zeros(b, dtype=dtype, device=x0.device)
    prob = torch.zeros(b, dtype=dtype, device=x0.device)
    grad_norm = torch.zeros(b, dtype=dtype, device=x0.device) if sampler.needs_score else None
    # Unadjusted samplers accept everything: skip summing ones, fill them in at the end.
    track_accept = sampler.is_calibrated
    flips: torch.Tensor | None = None
    x = state.x
    with torch.no_grad():
        for i in range(n_steps):
            # the last step asks only for x: unadjusted Langevin then skips a useless f/∇f evaluation
            if i < n_steps - 1:
                state, info = sampler.step(state, generator)
            else:
                x, info = sampler.final_step(state, generator)
            if track_accept:
                accepted.add_(info.accepted)
                prob.add_(info.accept_prob)
            if grad_norm is not None and info.grad_norm is not None:
                grad_norm.add_(info.grad_norm)
            if info.flips is not None:
                flips = info.flips.to(dtype).clone() if flips is None else flips.add_(info.flips)
    if n_steps == 0:
        return x0.detach().clone(), ChainDiagnostics(accepted, prob, grad_norm, 0)
    if track_accept:
        accepted.div_(n_steps)
        prob.div_(n_steps)
    else:
        accepted.fill_(1.0)
        prob.fill_(1.0)
    if grad_norm is not None:
        grad_norm.div_(n_steps)
    if flips is not None:
        flips.div_(n_steps)
    return x, ChainDiagnostics(accepted, prob, grad_norm, n_steps, flips)


def sample(f: LogDensity | torch.nn.Module, x0: torch.Tensor, method: str = "langevin", n_steps: int = 100,
           step_size: float | None = None, generator: torch.Generator | None = None, **kwargs: Any) -> torch.Tensor:
    """Draw approximate samples of p ∝ exp(f) by running B chains from x0 [B, *event].

    ``method`` in {"mh-jump", "mh", "langevin", "mala", "hmc"} and, for {0, 1} states, {"gibbs", "gwg",
    "dmala", "dula", "block-gibbs"} (``ebmlab.samplers.registry``);
    ``step_size`` None is the method's default there. kwargs are the method's options (e.g.
    ``noise_scale``, ``grad_clip``, ``bounds`` for Langevin; ``n_leapfrog`` for HMC; ``proposal``
    for MH, where ``step_size`` is the random-walk scale; ``bounds`` and ``jump_prob`` for mh-jump,
    where ``step_size`` is a fraction of the box width). Same generator seed => identical result.
    Returns a tensor shaped like x0, with its dtype and device. Raises ``EBMError`` for an x0 with NaN / inf
    values, an f that is NaN or +inf at x0, and chains that end non-finite (never returns NaN samples).
    """
    sampler = make_sampler(f, method, step_size=step_size, **kwargs)
    x, _ = run_chains(sampler, x0, n_steps, generator, check_finite=True)
    return x
