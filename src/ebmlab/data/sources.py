"""Turn ``--data`` into train/test tensors: a built-in 2-D set, digits, a ``.npy`` file or an image folder."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ebmlab.errors import EBMError
from ebmlab.data import toy2d
from ebmlab.data.scaling import Scaling

# the held-out set of a built-in 2-D set is the same for every run, so NLLs are comparable
TEST_SEED = 12345


@dataclass
class DataSet:
    """train: [N, *event]; test: [M, *event]; ``describe`` is JSON-able and goes into data.json.

    **Stored scale.** Image sets keep the values of their source — uint8 for image folders (0..255),
    the built-in digits (0..16) and uint8 ``.npy`` files, float32 for other ``.npy`` files — and
    ``scaling`` maps them to the model scale [-1, 1]. Read them through ``to_model``, one batch at a
    time (the trainer does this per step): a CelebA-sized folder then costs 12 KB per 64x64 RGB
    image instead of 49 KB as float32. Vector sets and arrays passed to the Python API are stored
    as the model sees them (``scaling`` None, ``to_model`` returns its argument).

    Labelled data (conditional models, JEM) also has ``y_train`` [N] / ``y_test`` [M] (int64 in
    0..n_classes-1), split with the same permutation as the points.
    """

    train: torch.Tensor
    test: torch.Tensor
    kind: str                        # "vector" or "image"
    name: str
    describe: dict[str, Any] = field(default_factory=dict)
    y_train: torch.Tensor | None = None
    y_test: torch.Tensor | None = None
    n_classes: int | None = None
    scaling: Scaling | None = None   # stored scale -> model scale; None: stored in the model scale

    @property
    def event_shape(self) -> tuple[int, ...]:
        return tuple(self.train.shape[1:])

    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        """Stored values (a batch of ``train``/``test``, on any device) -> the float32 model scale.

        Elementwise, so converting a batch gives bit for bit the values a whole-set conversion gives.
        """
        return x if self.scaling is None else self.scaling.to_model(x)


def load_data(spec: str, seed: int = 0, n_test: int = 5000, test_fraction: float = 0.1,
              image_size: int | None = None, labels: str | None = None) -> DataSet:
    """Resolve ``spec`` (a built-in name or a path) into a validated ``DataSet``.

    ``labels``: None, ``"builtin"`` (digits: scikit-learn's targets, same stratified split as the
    images) or a ``.npy`` of integer classes, one per row of a ``.npy`` data file (split with it).
    """
    if not spec:
        raise EBMError("no data given; pass --data with a built-in set "
                       f"({', '.join(toy2d.NAMES)}, digits), a .npy file or an image folder")
    if spec in toy2d.NAMES:
        if labels is not None:
            raise EBMError(f"--labels works with --data digits or a .npy data file; the built-in set {spec!r} "
                           "has no labels")
        train = toy2d.make(spec, 20000, torch.Generator().manual_seed(seed))
        test = toy2d.make(spec, n_test, torch.Generator().manual_seed(TEST_SEED))
        return DataSet(train, test, "vector", spec, {"builtin": spec})
    if spec == "digits":
        from ebmlab.data.images import DIGITS_RANGE, load_digits_labels, load_digits_uint8
        ds = DataSet(load_digits_uint8("train"), load_digits_uint8("test"), "image", "digits",
                     {"builtin": "digits"})
        if labels is not None:
            if labels != "builtin":
                raise EBMError("--data digits has its own labels: use --labels builtin")
            ds.y_train, ds.y_test, ds.n_classes = load_digits_labels("train"), load_digits_labels("test"), 10
        return _with_scaling(ds, Scaling.from_range(*DIGITS_RANGE))
    path = Path(spec)
    if path.suffix == ".npy":
        x = validate_array(_load_npy(path), str(path), keep_uint8=True)
        if x.ndim == 2 and x.dtype == torch.uint8:
            x = x.float()                              # vectors are stored in the model scale
        y = read_labels(labels, x.shape[0]) if labels is not None else None
        ds = _split(x, str(path), seed, test_fraction, y)
        # nominal_uint8=False: a uint8 .npy has always been scaled by its observed range
        return _with_scaling(ds, Scaling.infer(ds.train, nominal_uint8=False)) if ds.kind == "image" else ds
    if path.is_dir():
        from ebmlab.data.images import load_image_folder
        if labels is not None:
            raise EBMError("--labels is not supported for an image folder; save the images and their labels "
                           "as .npy arrays (N, C, H, W) and (N,) and train on those")
        if image_size is None:
            raise EBMError("an image folder needs --image-size (for example 32 or 64)")
        x, report = load_image_folder(path, image_size)        # uint8, the only full-size copy
        ds = _split(validate_array(x, str(path), keep_uint8=True), str(path), seed, test_fraction)
        ds.describe["folder_report"] = report.to_dict()
        return _with_scaling(ds, Scaling.from_range(0.0, 255.0))
    if path.exists():
        raise EBMError(f"cannot read data {spec!r}: give a .npy file, an image folder or a built-in set")
    raise EBMError(f"data {spec!r} not found: not a file or folder, nor a built-in set "
                   f"({', '.join(toy2d.NAMES)}, digits)")


def _with_scaling(ds: DataSet, scaling: Scaling) -> DataSet:
    """Images live in [-1, 1] inside the model: ``ds.to_model`` converts per batch, and the scaling
    is stored (data.json) to map samples back. The stored tensors are left as they are."""
    ds.scaling = scaling
    ds.describe["scaling"] = scaling.to_dict()
    return ds


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise EBMError(f"data file {str(path)!r} does not exist")
    try:
        return np.load(path, allow_pickle=False)   # never unpickle user files
    except ValueError as e:
        raise EBMError(f"cannot read {str(path)!r} as a numeric .npy array ({str(e).splitlines()[0]})") from None
    except OSError:
        raise EBMError(f"{str(path)!r} is not a valid .npy file") from None


def validate_array(x: np.ndarray | torch.Tensor, where: str, keep_uint8: bool = False) -> torch.Tensor:
    """Check a data array: shape (N, d) or (N, C, H, W), N >= 2, numeric and finite.

    Returns float32, or with ``keep_uint8`` a uint8 array as it is (no copy: it shares memory with
    ``x``; uint8 is always finite).
    """
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        arr = (t.float() if t.dtype == torch.bfloat16 else t).numpy()   # numpy has no bfloat16
    else:
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError) as e:   # ragged nested lists and the like
            raise EBMError(f"{where}: data is not a rectangular numeric array ({str(e).splitlines()[0]})") from None
    # real numbers only: bool, int, uint, float (not complex, timedelta/datetime, strings, objects)
    if arr.dtype.kind not in "biuf":
        raise EBMError(f"{where}: data must be numeric (bool, int or float), got dtype {arr.dtype}")
    if arr.ndim not in (2, 4):
        raise EBMError(f"{where}: data must have shape (N, d) for vectors or (N, C, H, W) for images, "
                       f"got {arr.shape}")
    if arr.shape[0] < 2 or any(s == 0 for s in arr.shape):
        raise EBMError(f"{where}: data set is empty or has a single point (shape {arr.shape}); need N >= 2")
    if keep_uint8 and arr.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(arr))
    if arr.dtype.kind == "f" and np.isfinite(arr).all() and (np.abs(arr) > np.finfo(np.float32).max).any():
        raise EBMError(f"{where}: data has values beyond the float32 range (|x| > 3.4e38); rescale it")
    arr = arr.astype(np.float32)
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise EBMError(f"{where}: data contains NaN or Inf in {len(rows)} row(s) (first: row {rows[0]}); "
                       "remove or impute them")
    return torch.from_numpy(arr)


def _split(x: torch.Tensor, name: str, seed: int, test_fraction: float, y: torch.Tensor | None = None) -> DataSet:
    """Shuffle with the seed's permutation and cut off the test set: test = x[perm[:n_test]],
    train = x[perm[n_test:]]. ``x`` (a CPU tensor the caller owns) is permuted **in place** and
    both splits are views of it, so no second full-size copy is made."""
    n = x.shape[0]
    n_test = max(1, int(round(n * test_fraction)))
    if n - n_test < 2:     # one training point has no spread: standardisation and the support box break
        raise EBMError(f"{name}: too few points ({n}) to hold out a test set and train on at least 2")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    kind = "vector" if x.ndim == 2 else "image"
    permute_rows_(x, perm)
    ds = DataSet(x[n_test:], x[:n_test], kind, name, {"path": name})
    if y is not None:
        ds.y_train, ds.y_test, ds.n_classes = y[perm[n_test:]], y[perm[:n_test]], int(y.max()) + 1
    return ds


def permute_rows_(x: torch.Tensor, order: torch.Tensor) -> None:
    """``x[i] <- x[order[i]]`` for every row i, in place, with one spare row of memory.

    Follows the permutation's cycles; ``x`` must be a contiguous CPU tensor, ``order`` a permutation
    of 0..N-1. The result equals ``x[order]`` bit for bit (rows are only copied).
    """
    a = x.numpy()
    idx = order.tolist()
    done = bytearray(len(idx))
    for start in range(len(idx)):
        if done[start]:
            continue
        done[start] = 1
        if idx[start] == start:
            continue
        spare = a[start].copy()
        j = start
        while True:
            k = idx[j]
            if k == start:
                a[j] = spare
                break
            a[j] = a[k]
            done[k] = 1
            j = k


def read_labels(spec: str, n: int) -> torch.Tensor:
    """Class labels from a ``.npy`` file: one integer >= 0 per data row (n of them) -> int64 [n].

    Integer-valued floats (1.0, 2.0) are accepted; anything else is refused with one line.
    """
    if spec == "builtin":
        raise EBMError("--labels builtin is only available for --data digits; give a .npy of integer labels")
    path = Path(spec)
    if path.suffix != ".npy":
        raise EBMError(f"--labels must be 'builtin' or a .npy file of integer labels, got {spec!r}")
    if not path.is_file():
        raise EBMError(f"labels file {spec!r} does not exist")
    arr = _load_npy(path)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise EBMError(f"labels {spec!r}: need one integer per example, shape ({n},), got shape {arr.shape}")
    if arr.shape[0] != n:
        raise EBMError(f"labels {spec!r}: {arr.shape[0]} labels for {n} examples in the data; "
                       "need exactly one label per example")
    if arr.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i = int(np.nonzero(bad)[0][0])
            raise EBMError(f"labels {spec!r}: labels must be integers (class numbers 0, 1, ...); "
                           f"row {i} is {arr[i]!r}")
    elif arr.dtype.kind not in "iu":
        raise EBMError(f"labels {spec!r}: labels must be integers (class numbers 0, 1, ...), got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        i = int(np.argmin(arr))
        raise EBMError(f"labels {spec!r}: labels must be >= 0 (class numbers 0, 1, ...); row {i} is {arr[i]!r}")
    if arr.size and arr.max() >= 100000:
        raise EBMError(f"labels {spec!r}: a label of {arr.max()!r} means over 100000 classes; "
                       "number the classes 0, 1, ..., K-1")
    return torch.from_numpy(arr.astype(np.int64))
