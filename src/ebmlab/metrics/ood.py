"""Out-of-distribution detection with an EBM: score inputs, compare in- vs out-of-distribution by AUROC.

Direction: every score here is **higher = more in-distribution**.
  - ``log_density``: f(x). Needs no Z (one model, one constant), so it ranks inputs exactly
    as the normalised density would.
  - ``score_norm``: −‖∇x f(x)‖, i.e. a *smaller* gradient norm counts as in-distribution.
    Data sit near modes of a well-trained f, where the gradient is small; outliers tend to sit on
    steep slopes. This is JEM's "approximate mass" score, s(x) = −‖∂ log p(x)/∂x‖₂
    (Grathwohl et al. 2019, §5.3), with the same sign.
AUROC = P(score of a random inlier > score of a random outlier), ties counting one half:
1 = perfect separation, 0.5 = chance, below 0.5 = the score points the wrong way (e.g. an
outlier set that the model finds *more* likely than its own test data).

Outlier sets (``outlier_sets``, what ``ebmlab eval --ood`` takes): the built-ins ``uniform``,
``shuffled`` and ``photo-patches`` (see ``builtin_outliers``), made at the run's event shape in
the model's scale, or a .npy of points in the data's scale.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ebmlab.errors import EBMError
from ebmlab.density import as_log_density


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
    # run boundaries by comparison, not np.diff: diff(-inf, -inf) is nan and would split a tie
    starts = np.r_[0, np.flatnonzero(sorted_vals[1:] != sorted_vals[:-1]) + 1]
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
    Where f = -inf (outside a support box: zero density) the score norm is -inf as well: the
    gradient there is 0 by construction and would otherwise rank such points as the most typical.
    Parameters receive no ``.grad``.
    """
    f = as_log_density(model)
    logs, norms = [], []
    for chunk in torch.split(x, batch_size):
        with torch.enable_grad():
            z = chunk.detach().requires_grad_(True)
            fz = f(z)
            (g,) = torch.autograd.grad(fz.sum(), z)
        norm = -g.reshape(g.shape[0], -1).norm(dim=1)
        norm = torch.where(fz.detach() == float("-inf"), torch.full_like(norm, float("-inf")), norm)
        logs.append(fz.detach().cpu())
        norms.append(norm.cpu())
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


# ---- outlier sets, in the model's scale ------------------------------------------------------
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


def parse_ood_specs(values: Any) -> list[str]:
    """``--ood`` values (repeatable, each possibly comma-separated) -> a list of names / .npy paths, in order.

    Each entry must be a built-in name or end in ``.npy``; duplicates are dropped.
    """
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for v in values or []:
        for item in str(v).split(","):
            item = item.strip()
            if not item:
                continue
            if item not in BUILTIN_OUTLIERS and not item.lower().endswith(".npy"):
                raise EBMError(f"unknown --ood {item!r}: give a .npy file (in the data's scale) or one of "
                               f"{', '.join(BUILTIN_OUTLIERS)}")
            if item not in out:
                out.append(item)
    if not out:
        raise EBMError("--ood needs at least one outlier set: a .npy file or one of " + ", ".join(BUILTIN_OUTLIERS))
    return out


def load_outlier_npy(path: str | Path, event_shape: tuple[int, ...], scaling: Any = None) -> torch.Tensor:
    """A .npy of outliers in the *data's* scale -> float32 [M, *event] in the model's scale.

    Checks: the file reads as a numeric array, holds at least one point, each point has the model's
    event shape, every value is finite. ``scaling`` (a ``Scaling`` or None) maps data -> model scale.
    """
    from ebmlab.data.sources import _load_npy
    p = Path(path)
    a = _load_npy(p)
    if a.dtype.kind not in "biuf":
        raise EBMError(f"--ood {str(p)!r}: must hold numbers, got dtype {a.dtype}")
    event_shape = tuple(int(s) for s in event_shape)
    if a.ndim != len(event_shape) + 1 or tuple(a.shape[1:]) != event_shape:
        want = "(M, " + ", ".join(map(str, event_shape)) + ")"
        raise EBMError(f"--ood {str(p)!r} has shape {a.shape} but the model takes points of shape {event_shape}; "
                       f"save an array of shape {want} in the data's scale")
    if a.shape[0] == 0:
        raise EBMError(f"--ood {str(p)!r} holds no points")
    x = torch.from_numpy(np.ascontiguousarray(a).astype(np.float32))
    if not bool(torch.isfinite(x).all()):
        raise EBMError(f"--ood {str(p)!r} contains NaN or infinite values")
    return scaling.to_model(x) if scaling is not None else x


def outlier_sets(specs: Any, x_ref: torch.Tensor, kind: str, bounds: Any = None, scaling: Any = None,
                 seed: int = 0) -> dict[str, torch.Tensor]:
    """Resolve ``--ood`` values into ``{name: outliers [M, *event] in model scale}`` (see ``parse_ood_specs``).

    Built-in sets have len(x_ref) points; a .npy is named by its file name and read in the data's scale.
    """
    sets: dict[str, torch.Tensor] = {}
    for spec in parse_ood_specs(specs):
        if spec in BUILTIN_OUTLIERS:
            sets[spec] = builtin_outliers(spec, x_ref, kind, bounds, seed=seed)
        else:
            name = Path(spec).name
            while name in sets:          # two files with one name in different folders
                name += "'"
            sets[name] = load_outlier_npy(spec, tuple(x_ref.shape[1:]), scaling).to(x_ref.dtype)
    return sets


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


def run_outlier_sets(run: Any, specs: Any, x_test: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """``outlier_sets`` for a loaded run (``ebmlab.tasks.runs.Run``): its data kind, support box and scaling."""
    return outlier_sets(specs, x_test, run.data["kind"], run.data.get("bounds"), run.scaling, seed)
