"""Nearest-neighbour memorisation check for image models trained on few images.

A model that copies its training images makes samples that sit as close to a training image as the
training images sit to themselves (distance ~0); a model that generalises makes samples about as far
from the training set as *held-out* real images are. So the check compares two distributions of
nearest-neighbour distances to the training set, in pixels of the model scale [-1, 1]:

- samples -> nearest training image,
- held-out images -> nearest training image (the reference: what "new but real" looks like).

The distance is the root-mean-square pixel difference, ``||a - b||_2 / sqrt(D)`` (D = pixels x
channels), so it reads in pixel units whatever the image size: 0 is a copy, 2 the largest possible.
"""
from __future__ import annotations

from typing import Any

import torch

from ebmlab.errors import EBMError


def nearest(x: torch.Tensor, ref: torch.Tensor, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of x [N, *event]: (RMS distance to its nearest row of ref [M, *event] -> [N],
    the index of that row -> int64 [N]). Computed in float64, ``chunk`` rows of x at a time."""
    if x.shape[1:] != ref.shape[1:]:
        raise EBMError(f"nearest neighbours need images of one shape, got {tuple(x.shape[1:])} and "
                       f"{tuple(ref.shape[1:])}")
    if x.shape[0] == 0 or ref.shape[0] == 0:
        raise EBMError("nearest neighbours need at least one image on each side")
    a = x.reshape(x.shape[0], -1).double()
    b = ref.reshape(ref.shape[0], -1).double()
    dists, idx = [], []
    for part in a.split(chunk):
        d = torch.cdist(part, b)                       # [n, M], Euclidean
        v, i = d.min(dim=1)
        dists.append(v)
        idx.append(i)
    return torch.cat(dists) / a.shape[1] ** 0.5, torch.cat(idx)


def memorisation_check(samples: torch.Tensor, train: torch.Tensor, held_out: torch.Tensor) -> dict[str, Any]:
    """Nearest-training-image distances of samples and of held-out images (all [N, *event], model scale).

    Returns JSON-able numbers: ``nn_samples_mean`` / ``nn_samples_median`` (samples -> train),
    ``nn_heldout_mean`` / ``nn_heldout_median`` (held-out -> train), their ratio of medians
    ``nn_ratio`` (< 1: samples closer to training images than new real images are, the sign of
    copying; ~1: as novel as real data), ``nn_distinct_train`` (how many different training images
    are somebody's nearest neighbour) and ``n_train``.
    """
    ds, i = nearest(samples, train)
    dh, _ = nearest(held_out, train)
    return {"nn_samples_mean": float(ds.mean()), "nn_samples_median": float(ds.median()),
            "nn_heldout_mean": float(dh.mean()), "nn_heldout_median": float(dh.median()),
            "nn_ratio": float(ds.median() / dh.median()) if float(dh.median()) > 0 else float("inf"),
            "nn_distinct_train": int(torch.unique(i).numel()), "n_train": int(train.shape[0]),
            "n_samples": int(samples.shape[0]), "n_heldout": int(held_out.shape[0])}
