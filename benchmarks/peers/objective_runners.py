"""Peers' own implementations of dsm, ssm and nce on the shared 2-D network (``benchmarks/objectives2d.py``).

Each peer's loss object is built through its public API and called in one plain loop shared by
both peers (``train``): the same network and initial weights as ebmlab's run (``make_net``), the
same batch size, Adam learning rate and cosine schedule as ebmlab's recipe for that objective, so
the rows differ by the loss implementation (and its noise), not by the optimiser. Both peers use
p ∝ exp(-E); they get E = -f.

- ebmkit (``import ebm``): ``DenoisingScoreMatching(sigma)``, ``SlicedScoreMatching(n_projections=1,
  vr=True)``, ``NoiseContrastiveEstimation(noise_dist, noise_ratio)`` called as ``loss(E, x).loss``;
  NCE's ``log_z`` is a parameter of the loss (optimised with the network, as ebmkit's Trainer does).
  Its default noise is N(0, I), which its docstring calls fine only for standardised data, so it is
  given a full-covariance Gaussian fitted to the training data (``torch.distributions``).
- torchebm: ``DenoisingScoreMatching(model, noise_scale=sigma)``, ``SlicedScoreMatching(model,
  n_projections=1)`` (its default Rademacher projections), called as ``loss(x)``. torchebm has no NCE.
Both draw their noise from torch's global RNG, seeded here.
"""
from __future__ import annotations

import math
import time

import torch

from . import NegEnergy, make_net
from .torchebm_runner import energy_model


def make_loss(peer: str, objective: str, net, x_train: torch.Tensor, sigma: float, ratio: int):
    """(loss_fn(x) -> scalar, extra parameters to optimise) for ``peer``'s ``objective``."""
    if peer == "ebmkit":
        import ebm
        energy = NegEnergy(net)
        if objective == "dsm":
            fn = ebm.DenoisingScoreMatching(sigma=sigma)
        elif objective == "ssm":
            fn = ebm.SlicedScoreMatching(n_projections=1, vr=True)
        elif objective == "nce":
            x64 = x_train.double()
            noise = torch.distributions.MultivariateNormal(x64.mean(0).float(), torch.cov(x64.T).float())
            fn = ebm.NoiseContrastiveEstimation(noise_dist=noise, noise_ratio=ratio)
        else:
            raise ValueError(objective)
        return (lambda x: fn(energy, x).loss), list(fn.parameters())
    if peer == "torchebm":
        from torchebm.losses import DenoisingScoreMatching, SlicedScoreMatching
        model = energy_model(net)
        if objective == "dsm":
            fn = DenoisingScoreMatching(model, noise_scale=sigma, device="cpu")
        elif objective == "ssm":
            fn = SlicedScoreMatching(model, n_projections=1, device="cpu")
        else:
            raise ValueError(f"torchebm has no {objective}")
        return (lambda x: fn(x)), []
    raise ValueError(peer)


def train(peer: str, objective: str, x_train: torch.Tensor, steps: int, seed: int, batch_size: int, lr: float,
          lr_min_factor: float, sigma: float, ratio: int, features: str = "linear"):
    """Train ``peer``'s ``objective`` on the shared MLP with first layer ``features`` (ebmlab's resolved
    ``net_features`` for that objective); returns (f: [B, 2] -> [B], seconds, extra) with extra["log_z"] for nce."""
    net = make_net(seed, features, x_train.shape[1])
    torch.manual_seed(seed)
    loss_fn, extra = make_loss(peer, objective, net, x_train, sigma, ratio)
    opt = torch.optim.Adam([*net.parameters(), *extra], lr=lr)
    # ebmlab's cosine schedule (RunConfig.lr_schedule "cosine" down to lr_min_factor * lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_min_factor + (1 - lr_min_factor) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    n = x_train.shape[0]
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        x = x_train[torch.randint(n, (batch_size,), generator=g)]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(x)
        loss.backward()
        opt.step()
        sched.step()
    seconds = time.perf_counter() - t0
    net.eval()
    out = {"log_z": float(extra[0].detach())} if objective == "nce" and extra else {}
    return net, seconds, out
