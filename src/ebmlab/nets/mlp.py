"""Ready networks n(x) -> [B] for ``EnergyModel``: an MLP for vectors and the fixed standardisation
in front of it; image nets live in ``nets.image``, the digits logits net in ``nets.digits``."""
from __future__ import annotations

import math

import torch
from torch import nn


# Hidden-layer activations by name. SiLU (the default) is smooth, so scores ∇x f are smooth too, as
# Langevin chains and score matching need. ReLU makes f piecewise linear; on 2-D sets with many
# sharp modes it resolves modes that every smooth activation we tried (SiLU, GELU, Softplus) blurred
# into one ring, but it is worse on smooth shapes (measured: the 2d preset's comment in
# training/presets.py). Score matching needs SiLU (ReLU's Hessian is zero almost everywhere).
ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU}
# What the first hidden layer computes from the (standardised) input. "linear": act(W x + b), like the
# other layers. "sine": sin(W x + b) with W ~ N(0, (2 pi SINE_SCALE)^2) and b ~ U(-pi, pi), learned
# Fourier features (Tancik et al. 2020, "Fourier features let networks learn high frequency functions";
# trainable, as SIREN's first layer, Sitzmann et al. 2020). A smooth MLP on 2-D inputs learns high
# frequencies last (spectral bias): 16 modes on one circle need angular frequency 16, and the SiLU net
# learned an exactly uniform ring there (ring16 +0.64 nats above the truth); the sine layer starts with
# those frequencies (measured: the 2d preset's comment in training/presets.py).
# "hybrid": half the first layer's units act(W x + b), half sin(W' x + b') — the smooth path for broad
# shapes next to the Fourier path for sharp modes (``HybridFeatures``).
FEATURES = ("linear", "sine", "hybrid")
# the frequencies' standard deviation, in cycles per unit of the standardised data (std 1 per coordinate).
# ring16's modes sit 0.55 units apart; with init "data" scale 0.5 gave +0.012 nats (the trained W grows to
# the frequencies it needs) where 1.0 gave +0.055 (rougher f, holes near test points): the preset's table.
# The sine layer is an option, not the 2-D default: it worsened eight-gaussians and random12 there; the
# 2-D CD default is "hybrid", which keeps a SiLU half for the broad shapes.
SINE_SCALE = 0.5


class Sine(nn.Module):
    """Elementwise sin: the first hidden layer's activation when ``features == "sine"``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)


# The hybrid layer's sine half is multiplied by this gain. Below 1 it makes the high frequencies slower to
# grow (Adam moves every weight at the same rate, so the sine half's share of f moves gain times slower):
# at gain 1 the sine half fitted bumps of the 20 000 training points (eight-gaussians +0.022 nats against
# +0.008 for the linear layer, lumpy modes by eye); at 0.3 eight-gaussians +0.008 and ring16's 16 modes
# still resolved (+0.006). Probe table: the 2d preset's comment in training/presets.py.
HYBRID_SINE_GAIN = 0.3


class HybridFeatures(nn.Module):
    """x [B, d] -> [B, hidden]: cat(act(A x + a) [B, hidden - hidden // 2], g sin(W x + b) [B, hidden // 2]),
    A and a initialised like any linear layer, W and b like the sine layer (``_sine_linear``), g the gain
    ``HYBRID_SINE_GAIN``, kept as a buffer so that a saved run keeps the gain it was trained with."""

    def __init__(self, dim: int, hidden: int, activation: str) -> None:
        super().__init__()
        self.smooth = nn.Linear(dim, hidden - hidden // 2)
        self.act = ACTIVATIONS[activation]()
        self.fourier = _sine_linear(dim, hidden // 2)
        self.register_buffer("gain", torch.tensor(float(HYBRID_SINE_GAIN)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.act(self.smooth(x)), self.gain * torch.sin(self.fourier(x))], dim=-1)


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
        features: the first hidden layer, a name in ``FEATURES``: "linear" (``activation`` like the
            others) or "sine" (sin(W x + b), W drawn at frequency scale ``SINE_SCALE`` from torch's
            global generator; W and b are ordinary weights, trained and saved with the others). The state
            dict has the same keys either way, so a run records it in config.json ("linear" when absent).
    """

    def __init__(self, dim: int, hidden: int = 128, depth: int = 3, spectral_norm: bool = False,
                 out: int = 1, activation: str = "silu", features: str = "linear") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        if features not in FEATURES:
            raise ValueError(f"unknown features {features!r}; choose one of {', '.join(FEATURES)}")
        if features != "linear" and spectral_norm:
            # spectral norm divides W by its largest singular value: every frequency would drop below one
            # radian per unit, which undoes what the sine layer is for
            raise ValueError("sine features and spectral norm exclude each other (it would cap the frequencies)")
        layers: list[nn.Module] = []
        width = dim
        for i in range(depth):
            if i == 0 and features == "sine":
                layers += [_sine_linear(width, hidden), Sine()]
            elif i == 0 and features == "hybrid":
                layers.append(HybridFeatures(width, hidden, activation))
            else:
                layers += [_linear(width, hidden, spectral_norm), ACTIVATIONS[activation]()]
            width = hidden
        layers.append(_linear(width, out, spectral_norm))
        self.body = nn.Sequential(*layers)
        self.dim, self.hidden, self.depth, self.spectral_norm, self.out = dim, hidden, depth, spectral_norm, out
        self.activation, self.features = activation, features

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


def _sine_linear(i: int, o: int) -> nn.Linear:
    """Linear(i, o) initialised as random Fourier features: W ~ N(0, (2 pi SINE_SCALE)^2), b ~ U(-pi, pi)
    (a random phase, so sin covers sines and cosines alike)."""
    layer = nn.Linear(i, o)
    with torch.no_grad():
        layer.weight.normal_(0.0, 2 * math.pi * SINE_SCALE)
        layer.bias.uniform_(-math.pi, math.pi)
    return layer


def _linear(i: int, o: int, sn: bool) -> nn.Module:
    layer = nn.Linear(i, o)
    return nn.utils.parametrizations.spectral_norm(layer) if sn else layer
