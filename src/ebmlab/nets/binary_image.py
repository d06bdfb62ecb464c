"""The default network for binary images: a small conv net on {0, 1} pixels, n(x): [B, C*H*W] -> [B].

Binary images are trained as flat 0/1 vectors (``data.binary``); this net reshapes them to
[B, C, H, W], maps bits to ±1 and reads them with one 4x4 convolution of stride 2 before a small MLP
head. A linear term wᵀx (the visible bias of an RBM) is added to the output, so the per-pixel
marginals are one layer away from the loss. SiLU (smooth), no batch norm (f of one image must not
depend on the batch). Kept to one strided conv because every Gibbs-with-gradients step is a forward
and a backward pass (w.r.t. x) of the whole batch: measured on one CPU thread, 256 binary 8x8 digits,
f and ∇x f took 0.55 ms with the binary MLP (128 x 2), 3.2 ms with this net (w = 16) and 6.1 ms with a
two-conv stack (3x3, then 3x3 stride 2, w = 8).

Why not the MLP (probes outside the benchmark, one seed, the ``binary`` preset's 3000 steps): on
``digits-binary`` (8x8) the MLP's run ended with a test NLL AIS pair of 1414 / 294 nats (its mass far from
the digits; no usable model), this net's 17.29-17.41 (benchmarks/results/discrete_digits8.md, better
than the RBM's 18.1 and the Bernoulli mixture's 18.6); on ``digits-binary-4x4`` the two are close
(MLP 4.733, this net 4.748 nats, exact), at about twice the MLP's CPU time.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ebmlab.errors import EBMError


class BinaryConvNet(nn.Module):
    """x: [B, C*H*W] (or [B, C, H, W]) of 0/1 values -> [B].

    conv4x4 stride 2 padding 1 (C->w) -> flatten -> linear(hidden) -> linear(1), plus wᵀx.

    Args:
        image_shape: (C, H, W), H and W >= 2. width: w. hidden: the head's width.
    """

    def __init__(self, image_shape: Sequence[int], width: int = 16, hidden: int = 128) -> None:
        super().__init__()
        if len(image_shape) != 3 or min(image_shape) < 1 or min(image_shape[1:]) < 2:
            raise EBMError(f"a binary image network needs an image shape (C, H, W) with H, W >= 2, got {image_shape}")
        c, h, w = (int(v) for v in image_shape)
        self.image_shape = (c, h, w)
        self.features = nn.Sequential(nn.Conv2d(c, width, 4, stride=2, padding=1), nn.SiLU(), nn.Flatten())
        n_feat = width * (h // 2) * (w // 2)
        self.head = nn.Sequential(nn.Linear(n_feat, hidden), nn.SiLU(), nn.Linear(hidden, 1))
        self.field = nn.Linear(c * h * w, 1, bias=False)
        nn.init.zeros_(self.field.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = 2 * x.reshape(x.shape[0], *self.image_shape) - 1
        return self.head(self.features(s))[:, 0] + self.field(s.reshape(x.shape[0], -1))[:, 0]
