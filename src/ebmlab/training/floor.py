"""Where a score-matching floor may put its points: the empty part of the support box.

``training.objectives.UniformFloor`` replaces a fraction λ of each dsm / ssm batch by uniform points of
the model's support box, so f is pinned where there is no data. With ``sm_uniform_where`` "box" those
points fall anywhere in the box, on the data too. With "empty" a floor point is kept only where the
data is not: farther than a radius r from every training point. r is set by the data alone (no per-set
knob): RADIUS_FACTOR times the NN_QUANTILE quantile of the training points' nearest-neighbour distances,
all distances taken after dividing each coordinate by its standard deviation (so r means the same on
data of any scale or aspect ratio). On 20 000-point 2-D sets r is ~0.13-0.2 standard deviations, one
to two times the noise width of the built-in shapes.

Why (measured in training/presets.py, the ssm 2d block): the floor's target near the data is then the
data alone, and the data's edge falls off by itself before the flat floor starts, instead of the floor
lifting every point of the data's fringe to λ / |box|.

``EmptySpace.fit`` keeps up to MAX_REFERENCE training points (a seeded subset beyond that) as the
reference set; ``far`` is one distance pass of the candidates against it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

NN_QUANTILE = 0.99        # the reference distance: nearly every training point has a neighbour this close
RADIUS_FACTOR = 4.0       # r = 4 x that distance: clear of the data's fringe, not of its gaps
NN_QUERIES = 2000         # training points whose nearest-neighbour distance sets r
MAX_REFERENCE = 20000     # reference points kept for the distance test (a seeded subset of larger sets)
CANDIDATES = 16           # uniform candidates drawn per floor row; the first one in the empty part is kept


@dataclass
class EmptySpace:
    """The part of space farther than ``radius`` from every reference point (std-scaled coordinates).

    points: [N, d] the reference points divided by ``scale``; scale: [d] per-coordinate standard deviation;
    radius: r in those scaled units.
    """

    points: torch.Tensor
    scale: torch.Tensor
    radius: float

    @classmethod
    def fit(cls, x_train: Any, to_model: Callable[[torch.Tensor], torch.Tensor], device: torch.device,
            seed: int) -> "EmptySpace":
        """From the training data (a tensor [N, d] or an indexable set with ``shape``), mapped by
        ``to_model`` to the model's scale; ``seed`` picks the subsets (reference beyond MAX_REFERENCE
        points, the NN_QUERIES nearest-neighbour queries)."""
        g = torch.Generator().manual_seed(seed)
        n = x_train.shape[0]
        idx = torch.randperm(n, generator=g)[:MAX_REFERENCE] if n > MAX_REFERENCE else torch.arange(n)
        rows = x_train[idx.to(getattr(x_train, "device", "cpu"))]
        x = to_model(torch.as_tensor(rows).to(device)).float().reshape(len(idx), -1)
        scale = x.std(0).clamp_min(1e-6) if x.shape[0] > 1 else torch.ones(x.shape[1], device=device)
        pts = x / scale
        if pts.shape[0] < 2:             # one point: no neighbour distance; everything off it is empty
            return cls(pts, scale, 0.0)
        queries = pts[torch.randperm(pts.shape[0], generator=g)[:NN_QUERIES].to(device)]
        # the 2nd smallest distance: the smallest is the query's distance to itself (0)
        nn = torch.cdist(queries, pts).kthvalue(2, dim=1).values
        return cls(pts, scale, float(RADIUS_FACTOR * nn.quantile(NN_QUANTILE)))

    def far(self, u: torch.Tensor) -> torch.Tensor:
        """u [M, d] (model scale) -> [M] bool: farther than the radius from every reference point."""
        if u.shape[0] == 0:
            return torch.zeros(0, dtype=torch.bool, device=u.device)
        d = torch.cdist((u / self.scale.to(u.dtype)).float(), self.points).min(1).values
        return d > self.radius
