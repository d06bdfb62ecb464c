"""Proposals q(x' | x) for random-walk Metropolis–Hastings.

A proposal draws x' [B, *event] from x [B, *event] with an explicit generator. The three here are
symmetric (q(x'|x) = q(x|x')), so MH needs only f(x') - f(x). A user proposal that is not symmetric
overrides ``log_q_ratio`` to return log q(x|x') - log q(x'|x) per chain.
"""
from __future__ import annotations

import torch

from ebmlab.box import Box, BoundsLike
from ebmlab.errors import EBMError
from ebmlab.samplers.base import check_positive, per_chain, randn_like


class Proposal:
    """Base class: override ``propose``; optionally ``validate``, ``inside`` and ``log_q_ratio``."""

    def propose(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError

    def validate(self, x: torch.Tensor) -> None:
        """Check the starting points once (at ``init``); raise ``EBMError`` on a mismatch."""

    def inside(self, x: torch.Tensor) -> torch.Tensor | None:
        """Bool [B]: whether x is in the proposal's support (f is set to -inf outside); None = everywhere."""
        return None

    def log_q_ratio(self, x: torch.Tensor, x_new: torch.Tensor) -> torch.Tensor | None:
        """log q(x|x') - log q(x'|x) per chain [B]; None means 0 (symmetric proposal)."""
        return None

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({hp})"


class GaussianRandomWalk(Proposal):
    """x' = x + scale * z, z ~ N(0, I). Symmetric."""

    def __init__(self, scale: float = 0.1) -> None:
        self.scale = check_positive("scale", scale)

    def propose(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        if not x.is_floating_point():
            raise EBMError(f"GaussianRandomWalk needs floating-point states, got {x.dtype}; use BitFlip for {{0, 1}} data")
        return torch.add(x, randn_like(x, generator), alpha=self.scale)


class BitFlip(Proposal):
    """For states in {0, 1}: flip each coordinate independently with probability ``flip_prob``.

    Symmetric: flipping the same set of bits takes x' back to x with the same probability.
    States keep their dtype (float, int or bool).
    """

    def __init__(self, flip_prob: float = 0.1) -> None:
        p = check_positive("flip_prob", flip_prob)
        if p > 1:
            raise EBMError(f"flip_prob is a probability in (0, 1], got {flip_prob!r}")
        self.flip_prob = p

    def validate(self, x: torch.Tensor) -> None:
        if x.dtype != torch.bool and not bool(((x == 0) | (x == 1)).all()):
            raise EBMError("BitFlip needs states in {0, 1}; binarise x0 first (e.g. (x0 > 0.5).float())")

    def propose(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        flip = torch.rand(x.shape, generator=generator, device=x.device) < self.flip_prob
        flipped = ~x if x.dtype == torch.bool else 1 - x
        return torch.where(flip, flipped, x)


class UniformJumpProposal(Proposal):
    """Mixture: with probability ``jump_prob`` (per chain) a uniform draw over the box ``bounds``,
    otherwise a local step x + local_scale * z.

    q(x'|x) = jump_prob / vol(box) * 1[x' in box] + (1 - jump_prob) * N(x'; x, local_scale² I),
    which is symmetric for x, x' in the box, so the plain MH ratio is right. Points outside the box
    are outside the support (f = -inf there, so they are rejected): MH with this proposal samples
    the target restricted to the box. The jumps let chains cross between separated modes.

    Args:
        bounds: (low, high) for every coordinate, or one pair per flattened event coordinate.
    """

    def __init__(self, bounds: BoundsLike | Box, jump_prob: float = 0.1, local_scale: float = 0.1) -> None:
        self._box = Box(bounds)   # caches (low, high) for the current dtype/device/shape
        self.bounds: torch.Tensor = self._box.rows   # public: float64 [D, 2] (low, high) rows
        p = check_positive("jump_prob", jump_prob, allow_zero=True)
        if p > 1:
            raise EBMError(f"jump_prob is a probability in [0, 1], got {jump_prob!r}")
        self.jump_prob = p
        self.local_scale = check_positive("local_scale", local_scale)

    def validate(self, x: torch.Tensor) -> None:
        if not x.is_floating_point():
            raise EBMError(f"UniformJumpProposal needs floating-point states, got {x.dtype}")
        self._box.broadcast(x)   # raises if the box does not match the event size

    def inside(self, x: torch.Tensor) -> torch.Tensor:
        return self._box.inside(x)

    def propose(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        low, high = self._box.broadcast(x)
        # Always draw all three so the number of random draws per step is fixed (reproducible).
        jump = torch.rand(x.shape[0], generator=generator, device=x.device) < self.jump_prob
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        local = torch.add(x, randn_like(x, generator), alpha=self.local_scale)
        return torch.where(per_chain(jump, x), low + (high - low) * u, local)
