"""Ready networks n(x) -> [B] for ``EnergyModel``: an MLP for vectors; image nets live in ``image_nets``."""
from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    """x: [B, d] -> [B]. SiLU (Swish) hidden layers: smooth, so scores ∇x f are smooth too.

    Args:
        dim: input dimension d.
        hidden: width of each hidden layer.
        depth: number of hidden layers.
        spectral_norm: wrap each linear layer in spectral normalisation (bounds the Lipschitz constant).
    """

    def __init__(self, dim: int, hidden: int = 128, depth: int = 3, spectral_norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = dim
        for _ in range(depth):
            layers += [_linear(width, hidden, spectral_norm), nn.SiLU()]
            width = hidden
        layers.append(_linear(width, 1, spectral_norm))
        self.body = nn.Sequential(*layers)
        self.dim, self.hidden, self.depth, self.spectral_norm = dim, hidden, depth, spectral_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.reshape(x.shape[0], -1)).squeeze(-1)


def _linear(i: int, o: int, sn: bool) -> nn.Module:
    layer = nn.Linear(i, o)
    return nn.utils.parametrizations.spectral_norm(layer) if sn else layer
