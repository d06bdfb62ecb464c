"""A user's own network and Dataset, as a researcher would write them (used by test_user_network.py).

Kept in an importable module so a child process can build the same objects, and so
``ebmlab.load(DIR, trust_code=True)`` can import the class by its recorded name.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset


class ResidualMLP(nn.Module):
    """f(x) [B] for x [B, dim]: a residual MLP (the lecture's sign: higher f = more likely)."""

    def __init__(self, dim: int = 2, width: int = 32, blocks: int = 2) -> None:
        super().__init__()
        self.inp = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(nn.Sequential(nn.SiLU(), nn.Linear(width, width)) for _ in range(blocks))
        self.out = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(nn.functional.silu(h)).squeeze(-1)


class TwoBlobs(Dataset):
    """A map-style Dataset of 2-D points (items are float64 numpy rows, converted by ebmlab)."""

    def __init__(self, n: int = 240, seed: int = 0) -> None:
        g = np.random.default_rng(seed)
        self.x = np.concatenate([g.normal([-1.0, 0.0], 0.3, (n // 2, 2)), g.normal([1.0, 0.5], 0.3, (n - n // 2, 2))])

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.x[i]


class WrongShape(nn.Module):
    """Returns [B, 3] instead of [B]: the mistake ebmlab must name."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


class NaNAtInit(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x).squeeze(-1) * float("nan")


TINY = dict(steps=24, batch_size=32, buffer_size=128, mcmc_steps=4, checkpoint_every=3, log_every=2,
            plot_every=1000, keep_checkpoints=2)


def child_train(out: str, resume: bool) -> None:
    """Entry of the SIGKILL test's child: train the user network on the user Dataset (or resume it)."""
    import ebmlab
    from torch.utils.data import DataLoader
    torch.manual_seed(0)
    loader = DataLoader(TwoBlobs(), batch_size=32)
    if resume:
        ebmlab.train(ResidualMLP(), loader, resume=out, progress=False)
    else:
        ebmlab.train(ResidualMLP(), loader, out=out, progress=False, network_kwargs={"dim": 2, "width": 32},
                     **{k: v for k, v in TINY.items() if k != "batch_size"})
