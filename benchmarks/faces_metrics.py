"""How face-like a batch of 25x25 samples is: the three numbers of the faces benchmark (issue 17).

- **face fraction**: share of the samples that a face-vs-non-face classifier calls "face". The
  classifier is scikit-learn's ``LogisticRegression(C=0.1)`` on standardised raw pixels, trained on all
  200 ``skimage.data.lfw_subset()`` images (100 faces, 100 non-face patches of the same photos). Its
  accuracy on images it was not trained on is measured by 5-fold stratified cross-validation
  (``classifier_accuracy``). Pixels, not HOG: HOG + logistic regression / SVM cross-validated as well
  (0.97 / 0.99) but called 82 % / 97 % of uniform-noise images faces; on pixels noise is 5 %.
  A blurred mean face is still called a face (it *is* the average face), which is why the contrast is
  reported beside it.
- **diversity**: how many different training faces are the nearest neighbour (RMS pixel distance,
  ``ebmlab.metrics.nearest``) of the samples; 100 samples that copy one face give 1.
- **contrast**: the mean over images of the per-image pixel standard deviation (pixels in [0, 1]),
  against the same number for the real faces; a washed-out mean face has much less.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import torch

CLASSIFIER = "LogisticRegression(C=0.1) on standardised raw pixels (scikit-learn)"


def _pipeline() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000))


def _lfw() -> tuple[np.ndarray, np.ndarray]:
    """All 200 lfw_subset images as float [200, 625] in [0, 1] (uint8-rounded like ``--data faces``)
    and labels (1 face, 0 non-face)."""
    from ebmlab.data.faces import load_faces_uint8, load_non_faces_uint8
    x = torch.cat([load_faces_uint8("all"), load_non_faces_uint8()]).numpy().reshape(200, -1) / 255.0
    return x, np.r_[np.ones(100), np.zeros(100)]


@lru_cache(maxsize=1)
def face_classifier() -> Any:
    """The classifier fitted on all 200 images."""
    x, y = _lfw()
    return _pipeline().fit(x, y)


@lru_cache(maxsize=1)
def classifier_accuracy() -> float:
    """5-fold stratified cross-validated accuracy (shuffled, seed 0) on the 200 real images."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    x, y = _lfw()
    return float(cross_val_score(_pipeline(), x, y, cv=StratifiedKFold(5, shuffle=True, random_state=0)).mean())


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """Model-scale images [N, 1, 25, 25] in [-1, 1] -> [0, 1] (clipped)."""
    return ((x.double().clamp(-1, 1) + 1) / 2)


def face_scores(x01: torch.Tensor, train01: torch.Tensor) -> dict[str, Any]:
    """The three numbers for images x01 [N, 1, 25, 25] in [0, 1] against training faces train01."""
    from ebmlab.metrics.nearest import nearest
    flat = x01.reshape(x01.shape[0], -1).numpy()
    face = float(face_classifier().predict(flat).mean())
    d, idx = nearest(x01 * 2 - 1, train01 * 2 - 1)
    return {"face_fraction": face, "distinct_nn": int(torch.unique(idx).numel()),
            "contrast": float(x01.reshape(x01.shape[0], -1).std(dim=1).mean()),
            "nn_rms_median": float(d.median()), "n": int(x01.shape[0])}
