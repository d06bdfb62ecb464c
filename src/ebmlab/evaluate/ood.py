"""Out-of-distribution detection with an EBM: score inputs, compare in- vs out-of-distribution by AUROC.

Direction: every score here is **higher = more in-distribution**.
  - ``log_density``: f(x). Needs no Z (one model, one constant), so it ranks inputs exactly
    as the normalised density would.
  - ``score_norm``: −‖∇x f(x)‖. Data sit near modes of a well-trained f, where the gradient is
    small; outliers tend to sit on steep slopes (JEM, Grathwohl et al. 2019, §5.3).
AUROC = P(score of a random inlier > score of a random outlier), ties counting one half:
1 = perfect separation, 0.5 = chance, below 0.5 = the score points the wrong way.
"""
from __future__ import annotations

import functools
from typing import Any, Mapping

import numpy as np
import torch

from ..errors import EBMError
from ..model import as_log_density


def auroc(scores_in: Any, scores_out: Any) -> float:
    """Area under the ROC curve with inliers as the positive class (the Mann–Whitney U statistic / n_in n_out).

    Args:
        scores_in: [N_in] scores of in-distribution inputs (tensor or array), higher = more in-distribution.
        scores_out: [N_out] scores of outliers.
    Ties between an inlier and an outlier count 1/2 (mid-ranks), matching ``sklearn.metrics.roc_auc_score``.
    """
    a = _as_1d(scores_in, "scores_in")
    b = _as_1d(scores_out, "scores_out")
    both = np.concatenate([a, b])
    # mid-ranks (1-based): ties share the average of the ranks they span
    order = np.argsort(both, kind="mergesort")
    sorted_vals = both[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_vals)) + 1]
    ends = np.r_[starts[1:], both.size]
    ranks_sorted = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    ranks = np.empty_like(ranks_sorted)
    ranks[order] = ranks_sorted
    u = ranks[: a.size].sum() - a.size * (a.size + 1) / 2.0
    return float(u / (a.size * b.size))


def _as_1d(s: Any, name: str) -> np.ndarray:
    if isinstance(s, torch.Tensor):
        s = s.detach().cpu().double().numpy()
    arr = np.asarray(s, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise EBMError(f"auroc: {name} is empty; give at least one score on each side")
    if np.isnan(arr).any():
        raise EBMError(f"auroc: {name} contains nan; the model's f is not finite on these inputs")
    return arr


def ood_scores(model: Any, x: torch.Tensor, batch_size: int = 512) -> dict[str, torch.Tensor]:
    """Per-input OOD scores, each [N] on CPU, higher = more in-distribution.

    Args:
        model: anything ``as_log_density`` accepts. Put it in ``eval()`` mode first if it has dropout.
        x: [N, *event] inputs, in the scale the model was trained on.
        batch_size: inputs per forward/backward pass.
    Returns ``{"log_density": f(x), "score_norm": -‖∇x f(x)‖}`` (norm over all event entries).
    Parameters receive no ``.grad``.
    """
    f = as_log_density(model)
    logs, norms = [], []
    for chunk in torch.split(x, batch_size):
        with torch.enable_grad():
            z = chunk.detach().requires_grad_(True)
            fz = f(z)
            (g,) = torch.autograd.grad(fz.sum(), z)
        logs.append(fz.detach().cpu())
        norms.append(-g.reshape(g.shape[0], -1).norm(dim=1).cpu())
    return {"log_density": torch.cat(logs), "score_norm": torch.cat(norms)}


def ood_table(model: Any, x_in: torch.Tensor, named_outliers: Mapping[str, torch.Tensor],
              batch_size: int = 512) -> list[dict]:
    """One row per outlier set: ``{"outlier", "n_in", "n_out", "auroc_log_density", "auroc_score_norm"}``.

    Args:
        model: the EBM.
        x_in: [N, *event] held-out in-distribution inputs.
        named_outliers: name -> [M, *event] outliers of the same event shape.
    """
    if not named_outliers:
        raise EBMError("ood_table: give at least one outlier set")
    s_in = ood_scores(model, x_in, batch_size)
    rows = []
    for name, x_out in named_outliers.items():
        if tuple(x_out.shape[1:]) != tuple(x_in.shape[1:]):
            raise EBMError(f"outlier set {name!r} has shape {tuple(x_out.shape[1:])} per input but the data have "
                           f"{tuple(x_in.shape[1:])}; give outliers of the same shape and scale")
        s_out = ood_scores(model, x_out.to(x_in.dtype), batch_size)
        row: dict = {"outlier": name, "n_in": int(x_in.shape[0]), "n_out": int(x_out.shape[0])}
        for key in s_in:
            row[f"auroc_{key}"] = auroc(s_in[key], s_out[key])
        rows.append(row)
    return rows


# ---- outlier sets for 8x8 digits in [-1, 1] -------------------------------------------------

def uniform_noise(n: int, shape: tuple[int, ...] = (1, 8, 8), generator: torch.Generator | None = None) -> torch.Tensor:
    """[n, *shape] uniform noise in [-1, 1]."""
    return torch.rand((n, *shape), generator=generator) * 2 - 1


def shuffle_pixels(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each input's entries permuted independently: same intensity histogram, structure destroyed. Shape like x."""
    flat = x.reshape(x.shape[0], -1)
    perm = torch.rand(flat.shape, generator=generator).argsort(dim=1).to(flat.device)
    return flat.gather(1, perm).reshape(x.shape)


def image_patches(n: int, size: int = 8, patch: int = 32, generator: torch.Generator | None = None) -> torch.Tensor:
    """[n, 1, size, size] grayscale patches of scikit-learn's shipped photos (china.jpg, flower.jpg), in [-1, 1].

    Each patch is a random ``patch`` x ``patch`` crop, area-averaged down to ``size`` x ``size``
    (``patch`` must be a multiple of ``size``), so it has natural-image statistics at the digits' scale.
    """
    if patch % size:
        raise EBMError(f"patch ({patch}) must be a multiple of size ({size})")
    images = _sample_photos()
    which = torch.randint(len(images), (n,), generator=generator)
    out = torch.empty(n, 1, size, size)
    for i in range(n):
        im = images[int(which[i])]
        r = int(torch.randint(im.shape[0] - patch + 1, (1,), generator=generator))
        c = int(torch.randint(im.shape[1] - patch + 1, (1,), generator=generator))
        crop = im[r:r + patch, c:c + patch][None, None]
        out[i] = torch.nn.functional.avg_pool2d(crop, patch // size)[0]
    return out


@functools.lru_cache(maxsize=1)
def _sample_photos() -> tuple[torch.Tensor, ...]:
    """scikit-learn's shipped photos as [H, W] grayscale in [-1, 1] (decoded once per process)."""
    from sklearn.datasets import load_sample_images  # shipped with scikit-learn: no download

    return tuple(torch.from_numpy(np.array(im, dtype=np.float32)).mean(dim=2) / 255.0 * 2 - 1
                 for im in load_sample_images().images)


def digits_outliers(x_digits: torch.Tensor, n: int | None = None,
                    generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """The standard outlier sets for digits, each shaped like ``x_digits`` ([N, 1, 8, 8] or [N, 64]).

    ``uniform-noise``, ``shuffled-pixels`` (of x_digits) and ``photo-patches``; n defaults to len(x_digits).
    """
    n = x_digits.shape[0] if n is None else n
    shape = tuple(x_digits.shape[1:])
    if int(np.prod(shape)) != 64:
        raise EBMError(f"digits outliers are 8x8; got inputs of shape {shape}")
    idx = torch.randint(x_digits.shape[0], (n,), generator=generator)
    return {
        "uniform-noise": uniform_noise(n, shape, generator).to(x_digits.dtype),
        "shuffled-pixels": shuffle_pixels(x_digits[idx], generator),
        "photo-patches": image_patches(n, 8, generator=generator).reshape(n, *shape).to(x_digits.dtype),
    }
