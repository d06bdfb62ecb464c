"""A level-conditioned conv net n(x, t) -> [B]: the network of diffusion recovery likelihood runs
(``models.recovery.RecoveryEnergyModel``), one network for all L noise levels.

The layout is ``nets.image.SmallConvNet``'s (strided convs, flatten, a 64-wide hidden layer), so a
drl run on digits costs about what a cd run's network does. The level enters twice: a learned
per-level bias on the first conv's channels and on the hidden layer (so the features themselves
depend on how noisy the input is, not just a readout), and a separate output head per level
(an L-wide last layer, the head of level t read out). Gao et al. 2021 condition a larger network
on t by an embedding throughout; two bias layers are the small-CPU version of that.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ebmlab.errors import EBMError


class LevelConvNet(nn.Module):
    """x [B, C, S, S], t [B] int64 in [0, levels) -> [B].

    Args:
        channels: C. image_size: S (>= 4). levels: L. width: w, the first conv's channels (2w after).
    """

    def __init__(self, channels: int, image_size: int, levels: int, width: int = 16) -> None:
        super().__init__()
        for name, v in (("channels", channels), ("image size", image_size), ("levels", levels), ("width", width)):
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise EBMError(f"{name} must be a positive integer, got {v!r}")
        if image_size < 4:
            raise EBMError(f"image size must be at least 4 pixels, got {image_size}")
        self.channels, self.image_size, self.levels = channels, image_size, levels
        self.first = nn.Conv2d(channels, width, 4, stride=2, padding=1)
        self.first_bias = nn.Embedding(levels, width)
        convs, c, s = [], width, image_size // 2
        while s > 2:                      # halve until 2x2 (8x8 -> 4 -> 2: one conv, as SmallConvNet)
            convs += [nn.Conv2d(c, 2 * width, 3, stride=2, padding=1), nn.SiLU()]
            c, s = 2 * width, (s + 1) // 2
        self.body = nn.Sequential(*convs)
        self.hidden = nn.Linear(c * s * s, 64)
        self.hidden_bias = nn.Embedding(levels, 64)
        self.out = nn.Linear(64, levels)
        for emb in (self.first_bias, self.hidden_bias):   # start as the unconditioned net
            nn.init.zeros_(emb.weight)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        want = (self.channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise EBMError(f"this network takes images [B, {want[0]}, {want[1]}, {want[2]}], got shape {tuple(x.shape)}")
        h = F.silu(self.first(x) + self.first_bias(t)[:, :, None, None])
        h = self.body(h).flatten(1)
        h = F.silu(self.hidden(h) + self.hidden_bias(t))
        return self.out(h).gather(1, t[:, None])[:, 0]
