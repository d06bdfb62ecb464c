"""Sample quality: unbiased MMD² (RBF kernel, median heuristic) with a permutation test, and
data-vs-model energy histograms. (The Fréchet distance lives in ``ebmlab.metrics.frechet``.)

Points are [N, *event]; images are flattened.
"""
from __future__ import annotations

import numpy as np
import torch

from ebmlab.errors import EBMError
from ebmlab.density import as_log_density, to_model

_MEDIAN_MAX_POINTS = 1000   # the median heuristic on a subsample: O(n²) distances otherwise


def _flat(x, name: str) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.ndim < 2 or x.shape[0] < 2:
        raise EBMError(f"{name} must be shaped [N, *event] with N >= 2, got {tuple(x.shape)}")
    x = x.reshape(x.shape[0], -1).double()
    if not bool(torch.isfinite(x).all()):
        raise EBMError(f"{name} contains NaN or inf")
    return x


def _pair(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _flat(x, "x"), _flat(y, "y")
    if x.shape[1] != y.shape[1]:
        raise EBMError(f"x and y must have the same event size, got {x.shape[1]} and {y.shape[1]}")
    return x, y


def median_bandwidth(x: torch.Tensor, y: torch.Tensor) -> float:
    """Median pairwise distance of the pooled sample (the first 1000 points of each): [N, D], [M, D]."""
    z = torch.cat([x[:_MEDIAN_MAX_POINTS], y[:_MEDIAN_MAX_POINTS]])
    d = torch.cdist(z, z)
    off = d[~torch.eye(len(z), dtype=torch.bool, device=z.device)]
    h = float(off.median())
    return h if h > 0 else 1.0   # all points identical: any bandwidth gives MMD² = 0


def _kernel(z: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """RBF Gram matrix exp(-‖a - b‖² / (2 h²)) of z [N, D] with its diagonal set to 0."""
    k = torch.exp(-torch.cdist(z, z).square() / (2.0 * bandwidth ** 2))
    k.fill_diagonal_(0.0)
    return k


def _mmd2_from_gram(k0: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD² for each row of indicator matrix a [P, N] (1 = in x) over Gram k0 (zero diagonal)."""
    b = 1.0 - a
    m, n = a.sum(1), b.sum(1)
    ka = a @ k0
    kxx = (ka * a).sum(1) / (m * (m - 1))
    kxy = (ka * b).sum(1) / (m * n)
    kyy = ((b @ k0) * b).sum(1) / (n * (n - 1))
    return kxx + kyy - 2.0 * kxy


def _labels(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The observed split as an indicator row [1, N + M] (1 = in x), float64 on the points' device."""
    a = torch.zeros(1, len(x) + len(y), dtype=torch.float64, device=x.device)
    a[:, :len(x)] = 1.0
    return a


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, bandwidth: float | None = None) -> float:
    """Unbiased MMD² between samples x [N, *event] and y [M, *event] with an RBF kernel.

    The bandwidth defaults to the median pairwise distance (median heuristic). Unbiased means the
    estimate is 0 on average (it can be slightly negative) when x and y come from one distribution.
    """
    x, y = _pair(x, y)
    h = median_bandwidth(x, y) if bandwidth is None else float(bandwidth)
    if not h > 0:
        raise EBMError(f"bandwidth must be positive, got {bandwidth!r}")
    return float(_mmd2_from_gram(_kernel(torch.cat([x, y]), h), _labels(x, y))[0])


def mmd_test(x: torch.Tensor, y: torch.Tensor, n_permutations: int = 200,
             generator: torch.Generator | None = None, bandwidth: float | None = None) -> tuple[float, float]:
    """Permutation two-sample test with the unbiased MMD² statistic: returns (mmd2, p_value).

    The Gram matrix is computed once; each permutation relabels the pooled points.
    p = (1 + #{permuted MMD² >= observed}) / (1 + n_permutations), so it is never 0.
    """
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, int) or n_permutations < 1:
        raise EBMError(f"n_permutations must be a positive integer, got {n_permutations!r}")
    x, y = _pair(x, y)
    h = median_bandwidth(x, y) if bandwidth is None else float(bandwidth)
    k0 = _kernel(torch.cat([x, y]), h)
    n = len(k0)
    observed = _mmd2_from_gram(k0, _labels(x, y))[0]
    # drawn on the generator's device (the CPU without one), so a seed gives the same test anywhere
    where = generator.device if generator is not None else torch.device("cpu")
    perms = torch.argsort(torch.rand(n_permutations, n, generator=generator, device=where), dim=1)
    a = (perms < len(x)).double().to(k0.device)     # a random relabelling with |x| ones per row
    null = torch.cat([_mmd2_from_gram(k0, blk) for blk in a.split(64)])
    p = (1.0 + float((null >= observed).sum())) / (1.0 + n_permutations)
    return float(observed), p


@torch.no_grad()
def energy_histogram_data(f, x_data: torch.Tensor, x_model: torch.Tensor,
                          bins: int = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energies E = -f of data and of model samples on shared bins, for plots.py to draw.

    Returns (edges [bins + 1], density_data [bins], density_model [bins]); densities integrate to 1.
    A model whose samples sit at much lower energy than the data is over-confident there.
    """
    fn = as_log_density(f)
    # both sets go to the model's device and dtype (a float64 or GPU model)
    e_data = -fn(to_model(f, x_data)).double().cpu().numpy()
    e_model = -fn(to_model(f, x_model)).double().cpu().numpy()
    both = np.concatenate([e_data, e_model])
    if not np.isfinite(both).all():
        raise EBMError("f is NaN or infinite at some data or model samples; cannot histogram energies")
    edges = np.histogram_bin_edges(both, bins=bins)
    hd, _ = np.histogram(e_data, bins=edges, density=True)
    hm, _ = np.histogram(e_model, bins=edges, density=True)
    return edges, hd, hm
