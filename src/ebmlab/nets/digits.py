"""A small conv net giving K logits for 8x8 digit images: the network of conditional and JEM runs on digits.

``ConditionalEnergyModel(DigitsLogitsNet(K))`` reads its logits as the joint EBM f(x, y) = logits[y]
(and f(x) = logsumexp_y logits); ``rundir.build`` picks it for labelled runs on 1x8x8 images.
"""
from __future__ import annotations

import torch
from torch import nn


class DigitsLogitsNet(nn.Module):
    """Logits for 8x8 digit images: x [B, 1, 8, 8] (or [B, 64]) in [-1, 1] -> [B, n_classes].

    Small conv net, no batch norm (its batch statistics make f(x) depend on the rest of the
    batch, which breaks sampling — JEM, Grathwohl et al. 2019, drops it for the same reason) and
    SiLU activations (smooth, so ∇x f is smooth for Langevin).
    """

    def __init__(self, n_classes: int = 10, width: int = 32) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.SiLU(),                       # 8x8
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.SiLU(),     # 4x4
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.SiLU(), # 2x2
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * width, 4 * width), nn.SiLU(),
                                  nn.Linear(4 * width, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.reshape(x.shape[0], 1, 8, 8)))
