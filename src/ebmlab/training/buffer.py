"""Replay buffer of persistent chains (IGEBM/JEM): its own object, checkpointed with the run."""
from __future__ import annotations

from typing import Callable

import torch


class ReplayBuffer:
    """Holds ``capacity`` chain states [capacity, *event]; each draw re-initialises a fraction.

    Args:
        capacity: number of stored chains.
        init_fn: ``init_fn(n, generator) -> [n, *event]``, the chains' starting distribution.
        reinit_prob: probability that a drawn chain is replaced by a fresh ``init_fn`` draw —
            keeps the buffer from collapsing onto few modes.
    """

    def __init__(self, capacity: int, init_fn: Callable[[int, torch.Generator], torch.Tensor],
                 reinit_prob: float, generator: torch.Generator) -> None:
        self.init_fn, self.reinit_prob = init_fn, reinit_prob
        self.states = init_fn(capacity, generator)

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw n chains: returns (indices [n], states [n, *event]) with fresh starts mixed in."""
        idx = torch.randint(0, self.states.shape[0], (n,), generator=generator, device=self.states.device)
        x = self.states[idx]
        fresh = self.init_fn(n, generator)
        reinit = torch.rand(n, generator=generator, device=x.device) < self.reinit_prob
        x = torch.where(reinit.view(-1, *([1] * (x.ndim - 1))), fresh, x)
        return idx, x

    def update(self, idx: torch.Tensor, x: torch.Tensor) -> None:
        self.states[idx] = x.detach()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"states": self.states}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.states = state["states"].to(self.states.device, self.states.dtype).clone()
