"""Pictures of a 2-D Ising lattice: sample lattices and the magnetisation along the chains."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ebmlab.errors import EBMError
from ebmlab.samplers.registry import make_sampler
from ebmlab.viz.plots import new_figure, save_figure


@torch.no_grad()
def ising_chains(model: torch.nn.Module, side: int, n_chains: int = 8, n_steps: int = 2000, method: str = "gwg",
                 generator: torch.Generator | None = None, cols: int | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``n_chains`` chains of ``method`` from fair coins: (final lattices [C, side, cols],
    magnetisation mean(2x - 1) per step [T, C])."""
    cols = side if cols is None else cols
    sampler = make_sampler(model, method)
    state = sampler.init((torch.rand(n_chains, side * cols, generator=generator) < 0.5).float())
    mags = []
    for _ in range(n_steps):
        state, _ = sampler.step(state, generator)
        mags.append((2 * state.x - 1).mean(1))
    return state.x.reshape(n_chains, side, cols), torch.stack(mags)


def plot_ising_chains(lattices: torch.Tensor, magnetisation: torch.Tensor, path: str | os.PathLike,
                      title: str = "") -> Path:
    """A row of sample lattices [C, H, W] (black = 1) above the magnetisation traces [T, C]."""
    if lattices.ndim != 3 or magnetisation.ndim != 2:
        raise EBMError("plot_ising_chains needs lattices [C, H, W] and magnetisation [T, C]")
    n = min(lattices.shape[0], 8)
    fig = new_figure((max(6.0, 1.2 * n), 4.5))
    grid = fig.add_gridspec(2, n, height_ratios=[1, 1.6])
    for i in range(n):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(lattices[i].cpu().numpy(), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
    ax = fig.add_subplot(grid[1, :])
    ax.plot(magnetisation.cpu().numpy(), lw=0.6)
    ax.set_xlabel("step")
    ax.set_ylabel("magnetisation")
    ax.set_ylim(-1.05, 1.05)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
