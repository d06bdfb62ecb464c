"""A noise-conditional EBM for denoising score matching at several levels (Song & Ermon 2019, NCSN).

One network n(x, i) conditioned on the level index i of the noise levels σ_1 > ... > σ_L, read as

    f(x, σ_i) = n(x, i) / σ_i,     score s(x, σ_i) = ∇x f(x, σ_i),

so each level has its own density — the data blurred by N(0, σ_i² I) — where one unconditional f
would have to fit all of their scores at once (it cannot: the blurred densities differ) and ends
up a compromise that is right at no level. The 1 / σ_i is NCSN's output scaling: the blurred
score's size grows as 1 / σ_i (‖∇ log p_σ‖ ≈ sqrt(d) / σ near the data), so with it one network
output n of unit size serves every level (Song & Ermon 2020, "Improved techniques", technique 3).

``log_density(x)`` is the smallest level's f(x, σ_L): the model's density of the (nearly clean)
data, so ``evaluate`` and the other density tools take the run like any other. Generation anneals
over all levels (``samplers.annealed.AnnealedLangevin``, which asks ``noise_log_density``).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ebmlab.density import DensityMethods
from ebmlab.errors import EBMError
from ebmlab.models.recovery import level_net_output


class NoiseConditionalEnergyModel(DensityMethods, nn.Module):
    """f(x, σ_i) = n(x, i) / σ_i for levels σ sorted largest first (module docstring).

    Args:
        net: n(x [B, *event], i [B] int64) -> [B] (e.g. ``nets.levels.LevelConvNet`` with L levels).
        sigmas: the L noise levels, any order (stored largest first: index 0 is the noisiest).
    """

    def __init__(self, net: nn.Module, sigmas: Sequence[float]) -> None:
        super().__init__()
        levels = sorted((float(s) for s in sigmas), reverse=True)
        if not levels or any(not s > 0 for s in levels):
            raise EBMError(f"a noise-conditional model needs at least one noise level > 0, got {list(sigmas)!r}")
        self.net = net
        # derived from the config's levels: not part of the checkpointed weights
        self.register_buffer("noise_levels", torch.tensor(levels), persistent=False)

    @property
    def n_levels(self) -> int:
        return int(self.noise_levels.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_density(x)

    def noise_log_density(self, x: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """f(x, σ_i) = n(x, i) / σ_i: x [B, *event], i [B] int64 level indices (0 = largest σ) -> [B]."""
        out = level_net_output(self.net, x, i)
        return out / self.noise_levels[i].to(out.dtype)

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """f(x, σ_L), shape [B]: the smallest level, the model's density of the data."""
        i = torch.full((x.shape[0],), self.n_levels - 1, dtype=torch.long, device=x.device)
        return self.noise_log_density(x, i)
