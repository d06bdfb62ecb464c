"""What ``ebmlab score`` does: a trained model's f(x) at the user's own points, and log p(x) = f(x) - log Z
where log Z is exact.

f alone is enough to compare points: f(x) - f(y) = log p(x) / p(y), the lecture's "comparison without Z".
log Z is added only where it is exact (quadrature over the support box for d <= 3, enumeration of binary or
categorical states), so a written log p is never an estimate; ``ebmlab eval --log-z ais`` estimates it elsewhere.
"""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ebmlab.atomic import atomic_write_bytes, atomic_write_text
from ebmlab.data.binary import check_binary_data
from ebmlab.data.categorical import categorical_array, encode_categorical
from ebmlab.data.sources import _load_npy
from ebmlab.density import to_model
from ebmlab.errors import EBMError
from ebmlab.estimate.discrete import binary_log_z, categorical_log_z
from ebmlab.estimate.partition import quadrature_log_z
from ebmlab.models.binary import MAX_ENUM_BITS
from ebmlab.models.categorical import check_enumerable_categorical
from ebmlab.tasks.evaluate import load_outlier_npy
from ebmlab.tasks.open import Run, refuse_writing_over_data

# points per forward pass: bounds the memory of a large file's scores, not their values
SCORE_BATCH = 4096
OUT_SUFFIXES = (".npy", ".csv")


def read_points(run: Run, path: str | Path) -> torch.Tensor:
    """The points of a ``.npy`` in the data's scale -> [N, *event] in the model's (images by the run's recorded
    scaling; categorical integers 0..K-1 one-hot encoded; binary values checked to be 0/1)."""
    k = run.data.get("categories")
    if k:
        p = Path(path)
        a = _load_npy(p)
        if a.ndim >= 1 and a.shape[0] == 0:
            raise EBMError(f"--data {str(p)!r} holds no points")
        # one point is enough to score (training's N >= 2 is about holding out a test split)
        x = categorical_array(a, f"--data {str(p)!r}", min_rows=1)
        shape = list(run.data["value_shape"])
        if list(x.shape[1:]) != shape:
            raise EBMError(f"--data {str(p)!r} has points of shape {tuple(x.shape[1:])} but the model takes "
                           f"{tuple(shape)} integers in 0..{int(k) - 1}")
        return encode_categorical(x, int(k), f"--data {str(p)!r}")[0]
    x = load_outlier_npy(path, tuple(run.data["event_shape"]), run.scaling, flag="--data",
                         image_shape=run.data.get("image_shape"))
    if run.data.get("binary"):
        check_binary_data(x, f"--data {str(path)!r}")
    return x


@torch.no_grad()
def log_densities(run: Run, x: torch.Tensor) -> torch.Tensor:
    """f(x) [N] in float64 (batches of ``SCORE_BATCH``); -inf outside a vector model's support box."""
    parts = [run.model.log_density(to_model(run.model, xb)).double().cpu() for xb in x.split(SCORE_BATCH)]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)


def exact_log_z(run: Run) -> tuple[float, str]:
    """(log Z, method) where it is exact for this run; a one-line EBMError naming the alternatives elsewhere."""
    dim = int(np.prod(run.data["event_shape"]))
    k = run.data.get("categories")
    if k:
        sites = dim // int(k)
        try:
            check_enumerable_categorical(sites, int(k))
        except EBMError as e:         # the way out that score has, as for too many bits
            raise EBMError(f"{e}: score without --log-p (f's differences are exact log ratios)") from None
        return categorical_log_z(run.model, sites, int(k)).value, "enumeration"
    if run.data.get("binary"):
        if dim > MAX_ENUM_BITS:
            raise EBMError(f"no exact log Z for {dim} bits (enumeration stops at {MAX_ENUM_BITS}): score without "
                           "--log-p (f's differences are exact log ratios), or estimate it: ebmlab eval --log-z ais")
        return binary_log_z(run.model, dim).value, "enumeration"
    bounds = getattr(run.model, "bounds", None)
    if not run.is_vector or dim > 3 or bounds is None:
        what = "images" if not run.is_vector else f"{dim}-dimensional vectors"
        raise EBMError(f"no exact log Z for {what} (quadrature is for vectors with d <= 3 and a support box): score "
                       "without --log-p (f's differences are exact log ratios), or estimate it: "
                       "ebmlab eval --log-z ais")
    return quadrature_log_z(run.model, bounds.tolist()).value, "quadrature"


def score_file(run: Run, data: str | Path, out: str | Path, log_p: bool = False) -> dict[str, Any]:
    """Score every point of ``data`` (a .npy in the data's scale, in file order) and write the values to ``out``
    (.npy: float64 [N]; .csv: one value per line under a header naming it). Returns a summary dict."""
    out = Path(out)
    if out.suffix not in OUT_SUFFIXES:
        raise EBMError(f"--out must end in .npy or .csv, got {str(out)!r}")
    if not out.parent.exists():
        raise EBMError(f"the folder of --out {str(out.parent)!r} does not exist")
    if out.is_dir():
        raise EBMError(f"--out {str(out)!r} is a folder; give a file name ending in .npy or .csv")
    refuse_writing_over_data(run, out, data)
    x = read_points(run, data)
    log_z, method = exact_log_z(run) if log_p else (None, None)     # refused before the points are scored
    values = log_densities(run, x)
    name = "f"
    if log_z is not None:
        values, name = values - log_z, "log_p"
    if out.suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, values.numpy())
        atomic_write_bytes(out, buf.getvalue())
    else:
        atomic_write_text(out, name + "\n" + "".join(f"{v!r}\n" for v in values.tolist()))
    finite = values[torch.isfinite(values)]
    summary: dict[str, Any] = {"written": str(out), "n": int(values.shape[0]), "values": name,
                               "outside_support": int((values == -math.inf).sum())}
    if finite.numel():
        summary.update({"min": float(finite.min()), "median": float(finite.median()), "max": float(finite.max())})
    if log_z is not None:
        summary.update({"log_z": log_z, "log_z_method": method})
    return summary
