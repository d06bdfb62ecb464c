"""torchebm: its own persistent CD + Langevin through its public API.

Knobs, set by torchebm's own rules (samplers/langevin_dynamics.py + integrators/euler_maruyama.py:
``x' = x - eps*dE/dx + noise_scale*sqrt(2*eps)*z``):
  LangevinDynamics(E, step_size=eps, noise_scale=1.0)                 -> exact ULA noise
  ContrastiveDivergence(E, sampler, k_steps=20, persistent=True, buffer_size=10_000,
                        init_steps=0, new_sample_ratio=0.0, energy_reg_weight=alpha)
  plain Adam(lr=1e-3) loop calling ``loss, x_neg = cd(x)`` (torchebm's documented usage;
  its ContrastiveDivergenceTrainer hard-wires the loss's other defaults and re-evaluates the
  energy for metrics every step, so it is not used).
Differences that torchebm's API does not let us remove (stated in the results notes):
  * its buffer has no restart-from-noise: ``new_sample_ratio`` only jitters 5 % of the starts
    by 0.01, which is not the recipe's restart, so it is 0 here;
  * chain starts are drawn stratified over the buffer and written back FIFO (not to their slots);
  * its buffer initialises from N(0, I); we overwrite it, once, with the recipe's uniform draw
    over the box through the public ``replay_buffer`` tensor.
Every random draw goes through one ``torch.Generator`` (torchebm accepts one everywhere).
"""
from __future__ import annotations

import time

import torch

from . import NegEnergy, Recipe, make_net, uniform_in_box


def energy_model(net):
    """``net`` (f, p ∝ exp(f)) as a torchebm ``BaseModel`` (also used by objective_runners.py)."""
    from torchebm.core import BaseModel

    class TorchebmEnergy(BaseModel):
        """torchebm BaseModel with E(x) = -f(x) (torchebm: p ∝ exp(-E))."""

        def __init__(self, f):
            super().__init__()
            self.inner = NegEnergy(f)

        def forward(self, x):
            return self.inner(x)

    return TorchebmEnergy(net)


def train(x_train: torch.Tensor, box: torch.Tensor, steps: int, seed: int, recipe: Recipe = Recipe()):
    """Train with torchebm; returns (log_density f: [B,2] -> [B], seconds of training)."""
    from torchebm.losses import ContrastiveDivergence
    from torchebm.samplers import LangevinDynamics

    net = make_net(seed)
    model = energy_model(net)
    g = torch.Generator().manual_seed(seed)
    sampler = LangevinDynamics(model, step_size=recipe.step_size, noise_scale=1.0, device="cpu")
    cd = ContrastiveDivergence(model, sampler, k_steps=recipe.langevin_steps, persistent=True,
                               buffer_size=recipe.buffer_size, init_steps=0, new_sample_ratio=0.0,
                               energy_reg_weight=recipe.energy_reg, device=torch.device("cpu"))
    cd.initialize_buffer((2,), generator=g)
    with torch.no_grad():
        cd.replay_buffer.copy_(uniform_in_box(box, recipe.buffer_size, g))
    opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
    n = x_train.shape[0]
    t0 = time.perf_counter()
    for _ in range(steps):
        x = x_train[torch.randint(n, (recipe.batch_size,), generator=g)]
        opt.zero_grad(set_to_none=True)
        loss, _ = cd(x, generator=g)
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    net.eval()
    return net, seconds
