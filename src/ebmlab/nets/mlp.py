"""Ready networks n(x) -> [B] for ``EnergyModel``: an MLP for vectors and the fixed standardisation
in front of it; image nets live in ``nets.image``, the digits logits net in ``nets.digits``."""
from __future__ import annotations

import torch
from torch import nn


# Hidden-layer activations by name. SiLU (the default) is smooth, so scores ∇x f are smooth too, as
# Langevin chains and score matching need. ReLU makes f piecewise linear; on 2-D sets with many
# sharp modes it resolves modes that every smooth activation we tried (SiLU, GELU, Softplus) blurred
# into one ring, but it is worse on smooth shapes (measured: the 2d preset's comment in
# training/presets.py). Score matching needs SiLU (ReLU's Hessian is zero almost everywhere).
ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU}


class MLP(nn.Module):
    """x: [B, d] -> [B] (or logits [B, out] when ``out > 1``, for conditional models and JEM).
    Hidden layers use ``activation`` (``ACTIVATIONS``: "silu", the default, or "relu").

    Args:
        dim: input dimension d.
        hidden: width of each hidden layer.
        depth: number of hidden layers.
        spectral_norm: wrap each linear layer in spectral normalisation (bounds the Lipschitz constant).
        out: output width; 1 gives f(x) [B], K gives K logits [B, K].
        activation: a name in ``ACTIVATIONS``. It has no weights: a checkpoint loads into either, so
            a run records its activation in config.json (runs from before it existed used SiLU).
    """

    def __init__(self, dim: int, hidden: int = 128, depth: int = 3, spectral_norm: bool = False,
                 out: int = 1, activation: str = "silu") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        layers: list[nn.Module] = []
        width = dim
        for _ in range(depth):
            layers += [_linear(width, hidden, spectral_norm), ACTIVATIONS[activation]()]
            width = hidden
        layers.append(_linear(width, out, spectral_norm))
        self.body = nn.Sequential(*layers)
        self.dim, self.hidden, self.depth, self.spectral_norm, self.out = dim, hidden, depth, spectral_norm, out
        self.activation = activation

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
