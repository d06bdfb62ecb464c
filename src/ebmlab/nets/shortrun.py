"""``ShortRunConvNet``: the energy network of Nijkamp et al. 2019, "Learning Non-Convergent Non-Persistent
Short-Run MCMC Toward Energy-Based Model" (NeurIPS 2019, appendix 7.3/7.4 and the authors' code).

Their 32x32 network is a plain conv stack with leaky ReLU (slope 0.2), no normalisation:
conv3x3 stride 1 (C -> n_f), then conv4x4 stride 2 (n_f -> 2 n_f -> 4 n_f -> 8 n_f: 32 -> 16 -> 8 -> 4),
then a 4x4 valid conv (8 n_f -> 1) that reads the 4x4 map as one number. The paper uses n_f = 128 for
CIFAR-10 and n_f = 64 for CelebA and LSUN. For 64x64 (CelebA) one more stride-2 conv is needed to reach
4x4; ebmlab keeps its width at 8 n_f (the widths double up to 8 n_f and stay there), which is our
reading of "the same network with one more layer", not a number from the paper.

Leaky ReLU, not ebmlab's usual SiLU: this network reproduces theirs, and their published numbers
(FID 23.02 on CelebA 64x64) were obtained with it.
"""
from __future__ import annotations

import torch
from torch import nn

from ebmlab.errors import EBMError
from ebmlab.nets.image import _ShapeChecked, _sn


class ShortRunConvNet(_ShapeChecked):
    """x: [B, C, S, S] -> [B], S a power of two >= 8 (32 and 64 as in the paper).

    Args:
        channels: C. image_size: S. width: n_f (64 for CelebA in the paper). spectral_norm: wrap every layer.
    """

    def __init__(self, channels: int, image_size: int, width: int = 64, spectral_norm: bool = False) -> None:
        super().__init__()
        if image_size < 8 or image_size & (image_size - 1):
            raise EBMError(f"the short-run network takes square images whose side is a power of two >= 8 "
                           f"(32, 64, 128), got {image_size}")
        self.channels, self.image_size, self.width, self.spectral_norm = channels, image_size, width, spectral_norm
        layers: list[nn.Module] = [_sn(nn.Conv2d(channels, width, 3, 1, 1), spectral_norm), nn.LeakyReLU(0.2)]
        c, s = width, image_size
        while s > 4:
            out = min(2 * c, 8 * width)
            layers += [_sn(nn.Conv2d(c, out, 4, 2, 1), spectral_norm), nn.LeakyReLU(0.2)]
            c, s = out, s // 2
        layers.append(_sn(nn.Conv2d(c, 1, 4, 1, 0), spectral_norm))
        self.f = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.f(x).reshape(x.shape[0])
