"""Categorical data {0, ..., K-1}^d: the check of integer arrays declared with ``--categories K`` and
their one-hot encoding.

A categorical set is stored as float32 one-hot vectors [N, d*K] (``models.categorical.one_hot``);
``describe`` keeps K (``categories``) and the shape of one example (``value_shape``) so samples come
back as integer arrays in the user's shape. Chains move on one-hot states with the categorical
samplers (``samplers.categorical_gibbs``, ``samplers.categorical_gwg``).
"""
from __future__ import annotations

import numpy as np
import torch

from ebmlab.errors import EBMError
from ebmlab.models.categorical import check_categories, one_hot


def categorical_array(arr: object, where: str, min_rows: int = 2) -> torch.Tensor:
    """Integer-valued data [N, *shape] (N >= ``min_rows``: 2 to train on, 1 to score; any number of value
    dimensions) as float64 [N, *shape]; EBMError for non-numeric, scalar-per-row or non-finite arrays."""
    a = arr.detach().cpu().numpy() if isinstance(arr, torch.Tensor) else np.asarray(arr)
    if a.dtype.kind not in "biuf":
        raise EBMError(f"{where}: categorical data must be an integer array, got dtype {a.dtype}")
    if a.ndim < 2 or a.shape[0] < min_rows or a[0].size == 0:
        raise EBMError(f"{where}: categorical data must have shape (N, ...) with N >= {min_rows} and at least one "
                       f"value per row, got {tuple(a.shape)}")
    x = torch.from_numpy(np.ascontiguousarray(a)).double()
    if not bool(torch.isfinite(x).all()):
        raise EBMError(f"{where}: categorical data contains NaN or Inf")
    return x


def check_categorical_data(x: torch.Tensor, k: int, where: str) -> None:
    """EBMError naming the first value that is not an integer in 0..K-1 and its index."""
    bad = (x != torch.round(x)) | (x < 0) | (x > k - 1)
    if bool(bad.any()):
        flat = int(bad.reshape(-1).nonzero()[0, 0])
        idx = np.unravel_index(flat, tuple(x.shape))
        value = x.reshape(-1)[flat].item()
        value = int(value) if float(value).is_integer() else value
        raise EBMError(f"{where}: data declared categorical with --categories {k} has a value outside the "
                       f"integers 0..{k - 1}: {value!r} at index {tuple(int(i) for i in idx)} (row {int(idx[0])})")


def encode_categorical(x: torch.Tensor, k: int, where: str) -> tuple[torch.Tensor, list[int]]:
    """(one-hot float32 [N, d*K], the shape of one example) of integer data x [N, *shape] in 0..K-1."""
    k = check_categories(k)
    check_categorical_data(x, k, where)
    return one_hot(x.long(), k), list(x.shape[1:])


def describe_categorical(ds, k: int, value_shape: list[int]):
    """Record in ``describe`` (data.json's source) that the set is categorical, K and the example shape."""
    ds.describe["categories"] = k
    ds.describe["value_shape"] = list(value_shape)
    return ds
