"""The recipe written out in plain PyTorch: the floor for overhead and the reference for the math.

Persistent chains in a replay buffer (random slots, each restarted uniformly over the box with
probability ``reinit_prob``), ``langevin_steps`` unadjusted Langevin steps
``x' = x + eps * grad f(x) + sqrt(2 eps) z``, loss ``-(mean f(x+) - mean f(x-)) + alpha (mean f(x+)^2
+ mean f(x-)^2)`` with negatives detached, Adam. One ``torch.Generator`` for every draw.
"""
from __future__ import annotations

import time

import torch

from . import Recipe, make_net, uniform_in_box


def train(x_train: torch.Tensor, box: torch.Tensor, steps: int, seed: int, recipe: Recipe = Recipe()):
    """Returns (log_density f: [B,2] -> [B], seconds of training)."""
    f = make_net(seed)
    g = torch.Generator().manual_seed(seed)
    buffer = uniform_in_box(box, recipe.buffer_size, g)
    opt = torch.optim.Adam(f.parameters(), lr=recipe.lr)
    n, bs, eps, sd = x_train.shape[0], recipe.batch_size, recipe.step_size, recipe.noise_std
    params = list(f.parameters())
    t0 = time.perf_counter()
    for _ in range(steps):
        x_pos = x_train[torch.randint(n, (bs,), generator=g)]
        idx = torch.randint(recipe.buffer_size, (bs,), generator=g)
        x = buffer[idx]
        restart = torch.rand(bs, generator=g) < recipe.reinit_prob
        x = torch.where(restart[:, None], uniform_in_box(box, bs, g), x)
        for p in params:
            p.requires_grad_(False)
        for _ in range(recipe.langevin_steps):
            x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(f(x).sum(), x)
            x = x.detach() + eps * grad + sd * torch.randn(x.shape, generator=g)
        for p in params:
            p.requires_grad_(True)
        x_neg = x.detach()
        buffer[idx] = x_neg
        f_pos, f_neg = f(x_pos), f(x_neg)
        loss = -(f_pos.mean() - f_neg.mean()) + recipe.energy_reg * (f_pos.pow(2).mean() + f_neg.pow(2).mean())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    f.eval()
    return f, seconds
