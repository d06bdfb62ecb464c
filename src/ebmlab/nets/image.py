"""Image energy networks n(x): [B, C, H, W] -> [B] for ``EnergyModel``.

- ``SmallConvNet``: two or three strided convs and a small linear head, for 8x8 and 16x16. Kept tiny on
  purpose: every training step runs ~60 Langevin steps, each a forward and a backward pass,
  so on a CPU the net's cost is paid ~120 times per step.
- ``ResNetEnergy``: pre-activation residual blocks with average-pool downsampling (as in
  Du & Mordatch 2019), for 32x32 to 128x128.

Both use SiLU (Swish): smooth, so ∇x f is continuous — ReLU nets give piecewise-constant
scores that make Langevin chains jitter. No batch norm: f(x) of one image must not depend on
the rest of the batch (positive and negative batches have different statistics).
``spectral_norm=True`` wraps every conv/linear layer (bounds the Lipschitz constant of f,
the IGEBM recipe's stabiliser).
"""
from __future__ import annotations

import torch
from torch import nn

from ebmlab.errors import EBMError
from ebmlab.nets import conv_grad


def _sn(layer: nn.Module, on: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(layer) if on else layer


def _check(channels: int, image_size: int) -> None:
    for name, v in (("channels", channels), ("image size", image_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise EBMError(f"{name} must be a positive integer, got {v!r}")
    if image_size < 4:
        raise EBMError(f"image size must be at least 4 pixels, got {image_size}")


class _ShapeChecked(nn.Module):
    """Gives a one-line EBMError when an image of the wrong channels/size comes in."""

    channels: int
    image_size: int

    def _check_input(self, x: torch.Tensor) -> None:
        want = (self.channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise EBMError(f"this network takes images [B, {want[0]}, {want[1]}, {want[2]}], got shape "
                           f"{tuple(x.shape)}; resize the image or use a model trained at that size")


class SmallConvNet(_ShapeChecked):
    """x: [B, C, S, S] -> [B]; for S <= 16.

    conv4x4 stride 2 (C->w) -> conv3x3 stride 2 (w->2w) [-> conv3x3 stride 2 (2w->2w) when
    S > 8] -> flatten -> linear(64) -> linear(1). The first layer is already strided: on a
    CPU the backward pass of a full-resolution conv dominated a Langevin step (measured ~2x
    slower for a stride-1 first layer at equal width), and an 8x8 digit has little detail to
    lose. Flatten (not global pooling) keeps *where* strokes are, which is most of a digit.

    Args:
        channels: C. image_size: S. width: w. spectral_norm: wrap every layer.
    """

    def __init__(self, channels: int, image_size: int, width: int = 16, spectral_norm: bool = False) -> None:
        super().__init__()
        _check(channels, image_size)
        self.channels, self.image_size, self.width, self.spectral_norm = channels, image_size, width, spectral_norm
        layers: list[nn.Module] = [_sn(nn.Conv2d(channels, width, 4, stride=2, padding=1), spectral_norm), nn.SiLU()]
        c, s = width, image_size // 2
        for _ in range(1 if image_size <= 8 else 2):
            layers += [_sn(nn.Conv2d(c, 2 * width, 3, stride=2, padding=1), spectral_norm), nn.SiLU()]
            c, s = 2 * width, (s + 1) // 2
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(_sn(nn.Linear(c * s * s, 64), spectral_norm), nn.SiLU(),
                                  _sn(nn.Linear(64, 1), spectral_norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        layers = iter(self.body)
        first = next(layers)
        # one input channel (grey images): the chains' input gradient of the first conv by matmul + fold,
        # ~0.8 ms less per gradient on a CPU than oneDNN's (nets/conv_grad.py; same f, rounding-level gradient)
        h = conv_grad.one_channel_conv(first, x) if conv_grad.applies(first) else first(x)
        for layer in layers:
            h = layer(h)
        return self.head(h.flatten(1)).squeeze(-1)


class _ResBlock(nn.Module):
    """Pre-activation residual block: x + conv(silu(conv(silu(x)))); 1x1 skip when widths differ."""

    def __init__(self, cin: int, cout: int, sn: bool) -> None:
        super().__init__()
        self.conv1 = _sn(nn.Conv2d(cin, cout, 3, padding=1), sn)
        self.conv2 = _sn(nn.Conv2d(cout, cout, 3, padding=1), sn)
        self.skip = _sn(nn.Conv2d(cin, cout, 1), sn) if cin != cout else nn.Identity()
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.conv2(self.act(self.conv1(self.act(x))))


class ResNetEnergy(_ShapeChecked):
    """x: [B, C, S, S] -> [B]; for S >= 16 (32, 64, 128 typical).

    stem conv3x3(C->w), then stages of [residual block, 2x2 average pool] until the map is
    4x4 (widths w, 2w, 4w, capped at ``max_width``), then SiLU, global sum pool, linear.
    Average pooling (not strided conv) keeps downsampling smooth for the score.

    Args:
        channels: C. image_size: S. width: w. max_width: cap on stage width.
        spectral_norm: wrap every layer.
    """

    def __init__(self, channels: int, image_size: int, width: int = 64, max_width: int = 256,
                 spectral_norm: bool = False) -> None:
        super().__init__()
        _check(channels, image_size)
        self.channels, self.image_size, self.width, self.spectral_norm = channels, image_size, width, spectral_norm
        self.stem = _sn(nn.Conv2d(channels, width, 3, padding=1), spectral_norm)
        blocks: list[nn.Module] = []
        c, s, i = width, image_size, 0
        while s > 4:
            out = min(width * 2 ** min(i, 2), max_width)
            blocks += [_ResBlock(c, out, spectral_norm), nn.AvgPool2d(2, ceil_mode=True)]
            c, s, i = out, (s + 1) // 2, i + 1
        blocks.append(_ResBlock(c, c, spectral_norm))
        self.blocks = nn.Sequential(*blocks)
        self.act = nn.SiLU()
        self.head = _sn(nn.Linear(c, 1), spectral_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        h = self.act(self.blocks(self.stem(x))).sum(dim=(2, 3))
        return self.head(h).squeeze(-1)


def default_image_net(channels: int, image_size: int, spectral_norm: bool = False) -> nn.Module:
    """The network ``train`` picks for images: ``SmallConvNet`` (width 16) up to 16x16, else
    ``ResNetEnergy`` (width 64, stage widths 64/128/256/256...). Raises EBMError on bad sizes."""
    _check(channels, image_size)
    if image_size <= 16:
        return SmallConvNet(channels, image_size, spectral_norm=spectral_norm)
    return ResNetEnergy(channels, image_size, spectral_norm=spectral_norm)

