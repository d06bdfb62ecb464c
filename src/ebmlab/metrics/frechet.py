"""Fréchet distance between feature sets, the digits FD ratio, and an opt-in Inception FID.

FD(a, b) = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2), the squared
2-Wasserstein distance between Gaussians fitted to the two feature sets (Heusel et al. 2017).
The matrix square roots use symmetric eigen-decompositions in float64: the argument is
symmetric PSD by construction, so there are no complex parts to discard, unlike ``sqrtm(S_a S_b)``.

FD is biased upwards by finite sample sizes; compare numbers only at equal set sizes.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ebmlab.errors import EBMError

Extractor = Callable[[torch.Tensor], torch.Tensor]


def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T   # tiny negative eigenvalues are round-off


def _moments(f: torch.Tensor | np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    a = f.detach().cpu().double().numpy() if isinstance(f, torch.Tensor) else np.asarray(f, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 2:
        raise EBMError(f"{name} must be features [N, k] with N >= 2, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise EBMError(f"{name} contains NaN or infinite values (did sampling diverge?)")
    return a.mean(0), np.cov(a, rowvar=False).reshape(a.shape[1], a.shape[1])


def frechet_distance(feat_a: torch.Tensor | np.ndarray, feat_b: torch.Tensor | np.ndarray) -> float:
    """FD between features [N_a, k] and [N_b, k] (float; >= 0 up to round-off)."""
    mu_a, s_a = _moments(feat_a, "feat_a")
    mu_b, s_b = _moments(feat_b, "feat_b")
    if mu_a.shape != mu_b.shape:
        raise EBMError(f"feature widths differ: {mu_a.shape[0]} vs {mu_b.shape[0]}")
    r = _psd_sqrt(s_a)
    cross = _psd_sqrt(r @ s_b @ r)                      # (S_a^1/2 S_b S_a^1/2)^1/2, symmetric PSD
    d = float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2.0 * np.trace(cross))
    return max(d, 0.0)


def fd_ratio(samples: torch.Tensor, train: torch.Tensor, test: torch.Tensor,
             extractor: Extractor | None = None) -> dict[str, float]:
    """Sample quality as FD(samples, test) / FD(train, test); 1.0 means "as good as real data".

    Args:
        samples: model samples, in the extractor's input convention (for the default digits
            extractor: [N, 1, 8, 8] in [-1, 1]).
        train: training images, same convention.
        test: held-out images, same convention.
        extractor: images -> features [N, k]; default ``digits_features.features``.
    Returns:
        dict with ``fd_samples_test``, ``fd_train_test``, ``ratio``, and the set sizes.
        For a fair ratio give as many samples as train images (FD's bias depends on N).
    """
    if extractor is None:
        from ebmlab.metrics.digits_features import features as extractor
    fs, ftr, fte = extractor(samples), extractor(train), extractor(test)
    fd_s, fd_t = frechet_distance(fs, fte), frechet_distance(ftr, fte)
    return {"fd_samples_test": fd_s, "fd_train_test": fd_t,
            "ratio": fd_s / fd_t if fd_t > 0 else float("inf"),
            "n_samples": int(len(fs)), "n_train": int(len(ftr)), "n_test": int(len(fte))}


INCEPTION_HELP = ("Inception FID needs local weights: install torch-fidelity (pip install torch-fidelity) and "
                  "download its FID Inception weights file (weights-inception-2015-12-05-6726825d.pth, from the "
                  "torch-fidelity releases) once by hand, then pass its path (ebmlab eval RUN --fid REAL.npy "
                  "--inception-weights PATH, or EBMLAB_INCEPTION_WEIGHTS for the Python function); ebmlab never "
                  "downloads anything")


@torch.no_grad()
def inception_fid(samples: torch.Tensor, reference: torch.Tensor, weights_path: str | os.PathLike | None = None,
                  batch_size: int = 64, device: str | torch.device = "cpu") -> float:
    """FID in Inception-v3 pool features (2048-d), computed with torch-fidelity's extractor.

    Args:
        samples, reference: images [N, C, H, W] in model scale [-1, 1], C in {1, 3} (grey is
            repeated to RGB; the extractor resizes to 299 itself).
        weights_path: local torch-fidelity Inception weights; default ``$EBMLAB_INCEPTION_WEIGHTS``.
    Raises:
        EBMError: no weights path / file, or torch-fidelity not installed. Nothing is downloaded.
    """
    path = weights_path or os.environ.get("EBMLAB_INCEPTION_WEIGHTS")
    if not path:
        raise EBMError("no Inception weights given. " + INCEPTION_HELP)
    if not Path(path).is_file():
        raise EBMError(f"Inception weights file {str(path)!r} not found. " + INCEPTION_HELP)
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError as e:
        raise EBMError("torch-fidelity is not installed. " + INCEPTION_HELP) from e
    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                      feature_extractor_weights_path=str(path)).to(device).eval()

    def feats(x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise EBMError(f"Inception FID needs images [N, 1 or 3, H, W], got shape {tuple(x.shape)}")
        out = []
        for i in range(0, len(x), batch_size):
            b = x[i:i + batch_size].to(device, torch.float32)
            b = b.expand(-1, 3, -1, -1) if b.shape[1] == 1 else b
            u8 = ((b.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)   # torch-fidelity takes uint8
            (f,) = net(u8)
            out.append(f.double().cpu())
        return torch.cat(out)

    return frechet_distance(feats(samples), feats(reference))
