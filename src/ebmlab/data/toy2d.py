"""Built-in 2-D data sets with *exact* (numerically integrated) true densities.

Every set is "a latent shape + isotropic Gaussian noise" (or an exact uniform), so its
true log density is an average of Gaussians over a fine deterministic grid of the latent
variable. That is what lets ``ebmlab eval`` compare a model's exact test NLL with the
true density's NLL. Points are drawn with an explicit ``torch.Generator``.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from ebmlab.errors import EBMError

# latent grid size used to integrate the noise-free shape; 4000 points on a curve of
# length <= ~40 keep the spacing well below the noise scale of every set
_LATENT_GRID = 4000


def _curve_density(points: torch.Tensor, centres: torch.Tensor, sigma: float) -> torch.Tensor:
    """log mean_k N(x; centres_k, sigma^2 I) for x: [N,2], centres: [K,2] -> [N]."""
    x = points.double()
    c = centres.to(device=x.device, dtype=torch.float64)    # the centres live on the CPU; x may not
    out = []
    for chunk in x.split(2048):
        d2 = torch.cdist(chunk, c).pow(2)
        lp = -d2 / (2 * sigma**2) - math.log(2 * math.pi * sigma**2)
        out.append(torch.logsumexp(lp, dim=1) - math.log(c.shape[0]))
    return torch.cat(out).to(points.dtype)


class _NoisyShape:
    """A set defined by latent centres m(u), u on a grid/uniform, plus N(0, sigma^2 I) noise."""

    def __init__(self, centres_fn: Callable[[torch.Tensor], torch.Tensor], latent_sampler, sigma: float):
        self.centres_fn, self.latent_sampler, self.sigma = centres_fn, latent_sampler, sigma
        self._grid_centres: torch.Tensor | None = None

    def sample(self, n: int, g: torch.Generator) -> torch.Tensor:
        u = self.latent_sampler(n, g)
        return self.centres_fn(u) + self.sigma * torch.randn(n, 2, generator=g, dtype=torch.float64)

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        if self._grid_centres is None:
            self._grid_centres = self.centres_fn(self.latent_sampler(None, None))
        return _curve_density(x, self._grid_centres, self.sigma)


def _uniform(lo: float, hi: float):
    """Latent U(lo, hi): random draws, or (n=None) a midpoint grid that integrates it."""
    def draw(n, g):
        if n is None:
            return lo + (hi - lo) * (torch.arange(_LATENT_GRID, dtype=torch.float64) + 0.5) / _LATENT_GRID
        return lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)
    return draw


def _normal_grid(mu: float, sd: float, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantile grid of N(mu, sd^2): n equal-mass points."""
    p = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    return mu + sd * math.sqrt(2) * torch.erfinv(2 * p - 1)


def _eight_gaussians() -> _NoisyShape:
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    centres = 2.0 * torch.stack([torch.cos(angles), torch.sin(angles)], 1)

    def draw(n, g):
        if n is None:
            return torch.arange(8, dtype=torch.float64)
        return torch.randint(0, 8, (n,), generator=g).double()
    return _NoisyShape(lambda k: centres[k.long()], draw, 0.2)


def _spirals() -> _NoisyShape:
    # two interleaved arms; u in [0, 2): arm = floor(u), radius grows with angle
    def centres(u):
        arm, t = torch.floor(u), u - torch.floor(u)
        theta = 0.5 * math.pi + t * 3.0 * math.pi
        r = 0.4 + 2.6 * t
        sgn = 1 - 2 * arm
        return sgn[:, None] * torch.stack([r * torch.cos(theta), r * torch.sin(theta)], 1)
    return _NoisyShape(centres, _uniform(0.0, 2.0), 0.12)


def _rings() -> _NoisyShape:
    radii = torch.tensor([0.75, 1.75, 2.75], dtype=torch.float64)

    def centres(u):
        ring, t = torch.floor(u).clamp(max=2), u - torch.floor(u)
        r = radii[ring.long()]
        return torch.stack([r * torch.cos(2 * math.pi * t), r * torch.sin(2 * math.pi * t)], 1)
    # equal mass per ring: u uniform on [0, 3)
    return _NoisyShape(centres, _uniform(0.0, 3.0), 0.1)


def _moons() -> _NoisyShape:
    def centres(u):
        moon, t = torch.floor(u), (u - torch.floor(u)) * math.pi
        upper = torch.stack([torch.cos(t), torch.sin(t)], 1)
        lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
        pts = torch.where(moon[:, None] == 0, upper, lower)
        return 1.5 * (pts - torch.tensor([0.5, 0.25], dtype=torch.float64))
    return _NoisyShape(centres, _uniform(0.0, 2.0), 0.12)


def _pinwheel() -> _NoisyShape:
    # five arms; radial position a ~ N(1, 0.3) bends by rate * e^a (the classic pinwheel's twist)
    n_arms, rate = 5, 0.25
    grid_a = _normal_grid(1.0, 0.3, _LATENT_GRID // n_arms)

    def centres(u):
        arm, a = u[:, 0], u[:, 1]
        angle = 2 * math.pi * arm / n_arms + rate * torch.exp(a)
        return 1.6 * torch.stack([a * torch.cos(angle), a * torch.sin(angle)], 1)

    def draw(n, g):
        if n is None:
            arms = torch.arange(n_arms, dtype=torch.float64).repeat_interleave(grid_a.numel())
            return torch.stack([arms, grid_a.repeat(n_arms)], 1)
        arm = torch.randint(0, n_arms, (n,), generator=g).double()
        a = 1.0 + 0.3 * torch.randn(n, generator=g, dtype=torch.float64)
        return torch.stack([arm, a], 1)
    return _NoisyShape(centres, draw, 0.1)


def _swiss_roll() -> _NoisyShape:
    def centres(u):
        t = 1.5 * math.pi * (1 + 2 * u)
        return torch.stack([t * torch.cos(t), t * torch.sin(t)], 1) / 4.0
    return _NoisyShape(centres, _uniform(0.0, 1.0), 0.15)


class _Checkerboard:
    """Uniform on the 8 dark squares of a 4x4 board of 2x2 squares over [-4, 4]^2 (density 1/32)."""

    # the 8 dark cells (i, j) in {-2..1}^2 with i + j even; each cell is [2i, 2i+2] x [2j, 2j+2]
    _cells = torch.tensor([(i, j) for i in range(-2, 2) for j in range(-2, 2) if (i + j) % 2 == 0],
                          dtype=torch.float64)

    def sample(self, n: int, g: torch.Generator) -> torch.Tensor:
        cell = self._cells[torch.randint(0, 8, (n,), generator=g)]
        return 2 * cell + 2 * torch.rand(n, 2, generator=g, dtype=torch.float64)

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        xd = x.double()
        inside = (xd.abs() <= 4).all(1)
        cell = torch.floor(xd / 2).clamp(-2, 1)
        dark = ((cell[:, 0] + cell[:, 1]) % 2 == 0) & inside
        lp = torch.where(dark, torch.full_like(xd[:, 0], -math.log(32.0)), torch.full_like(xd[:, 0], float("-inf")))
        return lp.to(x.dtype)


_SETS = {
    "eight-gaussians": _eight_gaussians,
    "checkerboard": _Checkerboard,
    "two-spirals": _spirals,
    "rings": _rings,
    "moons": _moons,
    "pinwheel": _pinwheel,
    "swiss-roll": _swiss_roll,
}
NAMES: tuple[str, ...] = tuple(_SETS)
_cache: dict[str, object] = {}


def _get(name: str):
    if name not in _SETS:
        raise EBMError(f"unknown built-in data set {name!r}; choose one of: {', '.join(NAMES)}")
    if name not in _cache:
        _cache[name] = _SETS[name]()
    return _cache[name]


def make(name: str, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw n points, float32 [n, 2], from built-in set ``name`` using ``generator``."""
    if n <= 0:
        raise EBMError(f"number of points must be positive, got {n}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    return _get(name).sample(n, g).float()


def true_log_density(name: str, x: torch.Tensor) -> torch.Tensor:
    """The exact normalised log density of set ``name`` at x: [N, 2] -> [N] (float64 accurate)."""
    return _get(name).log_density(x)
