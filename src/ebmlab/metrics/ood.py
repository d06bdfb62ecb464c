"""Out-of-distribution detection with an EBM: score inputs, compare in- vs out-of-distribution by AUROC.

Direction: every score here is **higher = more in-distribution**.
  - ``log_density``: f(x). Needs no Z (one model, one constant), so it ranks inputs exactly
    as the normalised density would.
  - ``score_norm``: −‖∇x f(x)‖, i.e. a *smaller* gradient norm counts as in-distribution.
    Data sit near modes of a well-trained f, where the gradient is small; outliers tend to sit on
    steep slopes. This is JEM's "approximate mass" score, s(x) = −‖∂ log p(x)/∂x‖₂
    (Grathwohl et al. 2019, §5.3), with the same sign.
AUROC = P(score of a random inlier > score of a random outlier), ties counting one half
(computed by scikit-learn's ``roc_auc_score``):
1 = perfect separation, 0.5 = chance, below 0.5 = the score points the wrong way (e.g. an
outlier set that the model finds *more* likely than its own test data).

The outlier sets themselves are ``ebmlab.metrics.outliers``; reading ``ebmlab eval --ood`` values
for a run is ``ebmlab.tasks.evaluate.run_outlier_sets``.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from ebmlab.errors import EBMError
from ebmlab.density import as_log_density, to_model


def auroc(scores_in: Any, scores_out: Any) -> float:
    """Area under the ROC curve with inliers as the positive class (``sklearn.metrics.roc_auc_score``).

    Args:
        scores_in: [N_in] scores of in-distribution inputs (tensor or array), higher = more in-distribution.
        scores_out: [N_out] scores of outliers.
    Ties between an inlier and an outlier count 1/2. Scores of -inf (zero density: outside a support
    box) are legal and tie with each other; scikit-learn refuses infinite values, so they are first
    mapped to finite values beyond the finite ones (which leaves the ranking, and so the AUROC, unchanged).
    """
    from sklearn.metrics import roc_auc_score      # imported here: scikit-learn is slow to import
    a = _as_1d(scores_in, "scores_in")
    b = _as_1d(scores_out, "scores_out")
    both = _finite_same_order(np.concatenate([a, b]))
    labels = np.r_[np.ones(a.size), np.zeros(b.size)]
    # round off the trapezoid sum's float noise (identical sets give 0.49999999999999994, not 0.5)
    return round(float(roc_auc_score(labels, both)), 12)


def _finite_same_order(s: np.ndarray) -> np.ndarray:
    """``s`` [N] with -inf / +inf replaced by a finite floor below / ceiling above every finite value."""
    finite = s[np.isfinite(s)]
    lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    floor, ceiling = lo - 1.0 - abs(lo), hi + 1.0 + abs(hi)
    if not (np.isfinite(floor) and floor < lo and np.isfinite(ceiling) and ceiling > hi):
        # scores near the float64 limit: no room beyond them, so use ranks (ties stay ties)
        return np.unique(s, return_inverse=True)[1].astype(np.float64)
    return np.where(s == -np.inf, floor, np.where(s == np.inf, ceiling, s))


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
        x: [N, *event] inputs, in the scale the model was trained on (moved to the model's device and
            dtype a batch at a time).
        batch_size: inputs per forward/backward pass.
    Returns ``{"log_density": f(x), "score_norm": -‖∇x f(x)‖}`` (norm over all event entries).
    Where f = -inf (outside a support box: zero density) the score norm is -inf as well: the
    gradient there is 0 by construction and would otherwise rank such points as the most typical.
    Parameters receive no ``.grad``.
    """
    f = as_log_density(model)
    # inputs go to the model's device and dtype, a chunk at a time (x may be a CPU test set of a GPU model)
    logs, norms = [], []
    for chunk in torch.split(x, batch_size):
        chunk = to_model(model, chunk)
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
