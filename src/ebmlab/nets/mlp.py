"""Ready networks n(x) -> [B] for ``EnergyModel``: an MLP for vectors and the fixed standardisation
in front of it; image nets live in ``nets.image``, the digits logits net in ``nets.digits``."""
from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    """x: [B, d] -> [B] (or logits [B, out] when ``out > 1``, for conditional models and JEM).
    SiLU (Swish) hidden layers: smooth, so scores ∇x f are smooth too.

    Args:
        dim: input dimension d.
        hidden: width of each hidden layer.
        depth: number of hidden layers.
        spectral_norm: wrap each linear layer in spectral normalisation (bounds the Lipschitz constant).
        out: output width; 1 gives f(x) [B], K gives K logits [B, K].
    """

    def __init__(self, dim: int, hidden: int = 128, depth: int = 3, spectral_norm: bool = False,
                 out: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = dim
        for _ in range(depth):
            layers += [_linear(width, hidden, spectral_norm), nn.SiLU()]
            width = hidden
        layers.append(_linear(width, out, spectral_norm))
        self.body = nn.Sequential(*layers)
        self.dim, self.hidden, self.depth, self.spectral_norm, self.out = dim, hidden, depth, spectral_norm, out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x.reshape(x.shape[0], -1))
        return y.squeeze(-1) if self.out == 1 else y


class Standardize(nn.Module):
    """x [B, d] -> (x - mean) / std with fixed buffers [d]. Inside f, so f stays a density over the raw data."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.clone().float())
        self.register_buffer("std", std.clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _linear(i: int, o: int, sn: bool) -> nn.Module:
    layer = nn.Linear(i, o)
    return nn.utils.parametrizations.spectral_norm(layer) if sn else layer
