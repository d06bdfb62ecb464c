"""ebmkit (PyPI ``ebmkit``, imports as ``ebm``): its own persistent CD + Langevin through its public API.

Knobs, set by ebmkit's own rules (ebm/samplers/langevin.py: ``x' = x - eps*dE/dx + noise_scale*z``):
  LangevinDynamics(step_size=eps, steps=20, noise_scale=sqrt(2*eps))  -> exact ULA noise
  ReplayBuffer(10_000, (2,), reinit_prob=0.05, init_fn=uniform over the box)
  ContrastiveDivergence(sampler, buffer, energy_reg=alpha)  # alpha*(E+^2 + E-^2), E = -f
  Trainer(E, loss, lr=1e-3, device='cpu').fit(x_train, steps, batch_size=256)
ebmkit draws batches, buffer slots and noise from the *global* torch RNG, so we seed it.
"""
from __future__ import annotations

import time

import torch

from . import NegEnergy, Recipe, make_net


def train(x_train: torch.Tensor, box: torch.Tensor, steps: int, seed: int, recipe: Recipe = Recipe()):
    """Train with ebmkit; returns (log_density f: [B,2] -> [B], seconds of training)."""
    import ebm

    net = make_net(seed)
    energy = NegEnergy(net)
    lo, hi = box[:, 0].float(), box[:, 1].float()

    def init_fn(shape):  # ebmkit's InitFn: shape -> fresh tensor (global RNG)
        return lo + (hi - lo) * torch.rand(shape)

    torch.manual_seed(seed)
    sampler = ebm.LangevinDynamics(step_size=recipe.step_size, steps=recipe.langevin_steps,
                                   noise_scale=recipe.noise_std)
    buffer = ebm.ReplayBuffer(recipe.buffer_size, (2,), reinit_prob=recipe.reinit_prob, init_fn=init_fn)
    loss = ebm.ContrastiveDivergence(sampler, buffer=buffer, energy_reg=recipe.energy_reg)
    trainer = ebm.Trainer(energy, loss, lr=recipe.lr, device="cpu")
    t0 = time.perf_counter()
    trainer.fit(x_train, steps=steps, batch_size=recipe.batch_size, verbose=False)
    seconds = time.perf_counter() - t0
    net.eval()
    return net, seconds
