"""Outlier sets for OOD tests of a model, in the model's scale (what ``ebmlab eval --ood`` builds in).

``uniform`` noise, ``shuffled`` inliers (structure destroyed, marginals kept) and ``photo-patches``
(natural-image patches from scikit-learn's two shipped photos); ``builtin_outliers`` makes one of
them shaped like a run's held-out data, ``digits_outliers`` all three for 8x8 digits.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from ebmlab.errors import EBMError

# Built-in names `ebmlab eval --ood` accepts besides .npy paths.
BUILTIN_OUTLIERS = ("uniform", "shuffled", "photo-patches")


def uniform_noise(n: int, shape: tuple[int, ...] = (1, 8, 8), generator: torch.Generator | None = None,
                  low: Any = -1.0, high: Any = 1.0) -> torch.Tensor:
    """[n, *shape] uniform noise in [low, high] (default [-1, 1], the image model's input range).

    ``low``/``high`` may be tensors broadcastable to ``shape`` (e.g. a vector run's support box, per coordinate).
    """
    low = torch.as_tensor(low, dtype=torch.float32)
    high = torch.as_tensor(high, dtype=torch.float32)
    return low + (high - low) * torch.rand((n, *shape), generator=generator)


def shuffle_pixels(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each input's entries permuted independently: same intensity histogram, structure destroyed. Shape like x."""
    flat = x.reshape(x.shape[0], -1)
    perm = torch.rand(flat.shape, generator=generator).argsort(dim=1).to(flat.device)
    return flat.gather(1, perm).reshape(x.shape)


def shuffle_coordinates(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Vectors [N, d]: every coordinate permuted independently *across points*.

    Each marginal is kept exactly (same values per column), the dependence between coordinates is
    destroyed: on eight Gaussians the points land on the 8 x 8 grid of mode coordinates.
    """
    if x.ndim != 2:
        raise EBMError(f"shuffle_coordinates needs vectors [N, d], got shape {tuple(x.shape)}")
    perm = torch.rand(x.shape, generator=generator).argsort(dim=0).to(x.device)
    return x.gather(0, perm)


def image_patches(n: int, size: int | tuple[int, int] = 8, patch: int | None = None,
                  generator: torch.Generator | None = None, channels: int = 1) -> torch.Tensor:
    """[n, channels, H, W] patches of scikit-learn's shipped photos (china.jpg, flower.jpg), in [-1, 1].

    Each patch is a random crop ``zoom`` times the output size (``zoom = patch / H``; default 4,
    less where a photo (427 x 640) is too small), area-averaged down to ``size`` (an int for
    square H = W, or (H, W)); so it has natural-image statistics at the model's scale.
    ``channels`` 1 is the photos' grey level (mean of R, G, B), 3 keeps colour.
    """
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if h <= 0 or w <= 0:
        raise EBMError(f"image size must be positive, got {(h, w)}")
    if channels not in (1, 3):
        raise EBMError(f"photo patches have 1 (grey) or 3 (RGB) channels; the model takes {channels}")
    images = _sample_photos(channels)
    ph_max, pw_max = min(im.shape[1] for im in images), min(im.shape[2] for im in images)
    zoom = (patch / h) if patch is not None else 4.0
    zoom = min(zoom, ph_max / h, pw_max / w)
    ph, pw = max(1, round(h * zoom)), max(1, round(w * zoom))
    which = torch.randint(len(images), (n,), generator=generator)
    out = torch.empty(n, channels, h, w)
    for i in range(n):
        im = images[int(which[i])]
        r = int(torch.randint(im.shape[1] - ph + 1, (1,), generator=generator))
        c = int(torch.randint(im.shape[2] - pw + 1, (1,), generator=generator))
        crop = im[None, :, r:r + ph, c:c + pw]
        if ph >= h and pw >= w:     # downsampling: average each output pixel's area (avg_pool for multiples)
            out[i] = torch.nn.functional.adaptive_avg_pool2d(crop, (h, w))[0]
        else:                       # images larger than the photos: the whole photo, upsampled
            out[i] = torch.nn.functional.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)[0]
    return out.clamp(-1.0, 1.0)


@functools.lru_cache(maxsize=2)
def _sample_photos(channels: int = 1) -> tuple[torch.Tensor, ...]:
    """scikit-learn's shipped photos as [C, H, W] in [-1, 1], grey (C = 1) or RGB (decoded once per process)."""
    from sklearn.datasets import load_sample_images  # shipped with scikit-learn: no download

    out = []
    for im in load_sample_images().images:
        t = torch.from_numpy(np.array(im, dtype=np.float32)).permute(2, 0, 1) / 255.0 * 2 - 1   # [3, H, W]
        out.append(t.mean(dim=0, keepdim=True) if channels == 1 else t.contiguous())
    return tuple(out)


def builtin_outliers(name: str, x_ref: torch.Tensor, kind: str, bounds: Any = None, n: int | None = None,
                     seed: int = 0) -> torch.Tensor:
    """One built-in outlier set shaped like ``x_ref`` [N, *event], in the model's scale.

    Args:
        name: ``uniform`` (images: uniform in [-1, 1]; vectors: uniform over the support box
            ``bounds``), ``shuffled`` (images: each of ``x_ref``'s images with its pixels permuted;
            vectors: every coordinate of ``x_ref`` permuted across points) or ``photo-patches``
            (images only: patches of scikit-learn's two photos at the model's size and channels).
        x_ref: the held-out inliers (model scale); ``shuffled`` permutes them, the others take their shape.
        kind: ``"image"`` or ``"vector"``.
        bounds: [[low, high]] per coordinate, needed for ``uniform`` on vectors.
        n: how many (default len(x_ref)); ``shuffled`` draws from x_ref with replacement when n differs.
        seed: each name has its own generator seeded from ``seed``, so one set does not depend on
            which other sets were asked for.
    """
    if name not in BUILTIN_OUTLIERS:
        raise EBMError(f"unknown outlier set {name!r}; give a .npy file or one of {', '.join(BUILTIN_OUTLIERS)}")
    n = x_ref.shape[0] if n is None else int(n)
    g = torch.Generator().manual_seed(int(seed) * 7919 + 101 * (1 + BUILTIN_OUTLIERS.index(name)))
    event = tuple(x_ref.shape[1:])
    if kind == "vector":
        if name == "photo-patches":
            raise EBMError("photo-patches are images; this run models vectors (use uniform, shuffled or a .npy)")
        if name == "uniform":
            if bounds is None:
                raise EBMError("uniform outliers for vector data need the run's support box (bounds)")
            b = torch.as_tensor(bounds, dtype=torch.float32).reshape(-1, 2)
            if b.shape[0] != int(np.prod(event)):
                raise EBMError(f"support box has {b.shape[0]} rows but the data have {event} coordinates")
            return uniform_noise(n, event, g, b[:, 0].reshape(event), b[:, 1].reshape(event)).to(x_ref.dtype)
        src = x_ref if n == x_ref.shape[0] else x_ref[torch.randint(x_ref.shape[0], (n,), generator=g)]
        return shuffle_coordinates(src, g)
    if kind != "image" or len(event) != 3:
        raise EBMError(f"outlier sets are made for vector data [N, d] or images [N, C, H, W], got {event} ({kind})")
    if name == "uniform":
        return uniform_noise(n, event, g).to(x_ref.dtype)
    if name == "shuffled":
        src = x_ref if n == x_ref.shape[0] else x_ref[torch.randint(x_ref.shape[0], (n,), generator=g)]
        return shuffle_pixels(src, g)
    return image_patches(n, (event[1], event[2]), generator=g, channels=event[0]).to(x_ref.dtype)


def digits_outliers(x_digits: torch.Tensor, n: int | None = None,
                    generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """The standard outlier sets for digits, each shaped like ``x_digits`` ([N, 1, 8, 8] or [N, 64]).

    ``uniform``, ``shuffled`` (pixels of x_digits) and ``photo-patches``, named as in ``BUILTIN_OUTLIERS``;
    n defaults to len(x_digits).
    """
    n = x_digits.shape[0] if n is None else n
    shape = tuple(x_digits.shape[1:])
    if int(np.prod(shape)) != 64:
        raise EBMError(f"digits outliers are 8x8; got inputs of shape {shape}")
    idx = torch.randint(x_digits.shape[0], (n,), generator=generator)
    return {
        "uniform": uniform_noise(n, shape, generator).to(x_digits.dtype),
        "shuffled": shuffle_pixels(x_digits[idx], generator),
        "photo-patches": image_patches(n, 8, generator=generator).reshape(n, *shape).to(x_digits.dtype),
    }
