"""Turn ``--data`` into train/test tensors: a built-in 2-D set, digits, a ``.npy`` file or an image folder.

**Large uint8 image files are read from disk, not loaded.** A ``.npy`` of uint8 images (N, C, H, W),
C-ordered, of at least ``STREAM_MIN_BYTES`` (an ``ebmlab prepare`` cache, typically) is opened by its
header only (``data.npyfile.NpyRows``): the training split is a view by index (``data.stream.IndexedData``)
that reads each batch's rows, the file is never modified (no in-place shuffle), and the largest value
and the fingerprint are computed in chunks. The split, the values, the scaling and the
fingerprint are bit for bit those of loading the same file whole; the one difference is that at most
``MAX_TEST_ITEMS`` held-out images are kept in memory for evaluation (all ``n_test`` are still held out
of training). Smaller files, and every other ``.npy``, are loaded whole as before: for them it is the
faster path and tensors are what older code and runs expect.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ebmlab.errors import EBMError
from ebmlab.data import toy2d
from ebmlab.data.categorical import categorical_array, describe_categorical, encode_categorical
from ebmlab.data.binary import BINARY_DIGITS, check_binary_data, digits_binary, flatten_binary, is_binary
from ebmlab.data.dataset import DataSet
from ebmlab.data.npyfile import NpyRows, read_npy_header
from ebmlab.data.scaling import Scaling
from ebmlab.data.stream import MAX_TEST_ITEMS, IndexedData

# the held-out set of a built-in 2-D set is the same for every run, so NLLs are comparable
TEST_SEED = 12345
# a uint8 image .npy at least this large is streamed from disk (see the module docstring): 16 MiB is
# ~1400 RGB images of 64x64, where holding the array starts to matter next to torch's own ~300 MB
STREAM_MIN_BYTES = 16 * 2**20
# rows per chunk when a streamed file is read through once (its largest value); a few MB at 64x64 RGB
_SCAN_ROWS = 512


def load_data(spec: str, seed: int = 0, n_test: int = 5000, test_fraction: float = 0.1,
              image_size: int | None = None, labels: str | None = None, binary: bool | None = None,
              categories: int | None = None) -> DataSet:
    """Resolve ``spec`` (a built-in name or a path) into a validated ``DataSet``.

    ``binary``: None detects a ``.npy`` whose values are all 0/1 as binary data (``data.binary``);
    True declares it (any other value is an EBMError naming it); False treats it as continuous.
    ``categories``: K declares a ``.npy`` of integers 0..K-1 categorical (``data.categorical``).

    ``labels``: None, ``"builtin"`` (digits: scikit-learn's targets, same stratified split as the
    images) or a ``.npy`` of integer classes, one per row of a ``.npy`` data file (split with it).
    """
    if not spec:
        raise EBMError("no data given; pass --data with a built-in set "
                       f"({', '.join(toy2d.NAMES)}, digits, faces, {', '.join(BINARY_DIGITS)}), a .npy file or an image folder")
    builtin = spec in (*toy2d.NAMES, *BINARY_DIGITS, "digits", "faces")
    if builtin and categories is not None:
        # else silently dropped: the built-in sets are continuous, or binary (digits-binary*)
        raise EBMError(f"--categories declares a .npy file of integers 0..K-1; the built-in set {spec!r} is not one")
    if builtin and binary and spec not in BINARY_DIGITS:
        raise EBMError(f"--binary declares 0/1 data; the built-in set {spec!r} is continuous (the binary built-in "
                       f"sets: {', '.join(BINARY_DIGITS)})")
    if spec in toy2d.NAMES:
        if labels is not None:
            raise EBMError(f"--labels works with --data digits or a .npy data file; the built-in set {spec!r} "
                           "has no labels")
        train = toy2d.make(spec, 20000, torch.Generator().manual_seed(seed))
        test = toy2d.make(spec, n_test, torch.Generator().manual_seed(TEST_SEED))
        return DataSet(train, test, "vector", spec, {"builtin": spec})
    if spec in BINARY_DIGITS:
        if labels is not None:
            raise EBMError(f"--labels is not available for {spec!r}; use --data digits --labels builtin")
        pooled = spec.endswith("4x4")
        return mark_binary(DataSet(digits_binary("train", pooled), digits_binary("test", pooled), "vector", spec,
                                   {"builtin": spec}), [1, 4, 4] if pooled else [1, 8, 8])
    if spec == "digits":
        from ebmlab.data.images import DIGITS_RANGE, load_digits_labels, load_digits_uint8
        ds = DataSet(load_digits_uint8("train"), load_digits_uint8("test"), "image", "digits",
                     {"builtin": "digits"})
        if labels is not None:
            if labels != "builtin":
                raise EBMError("--data digits has its own labels: use --labels builtin")
            ds.y_train, ds.y_test, ds.n_classes = load_digits_labels("train"), load_digits_labels("test"), 10
        return _with_scaling(ds, Scaling.from_range(*DIGITS_RANGE))
    if spec == "faces":
        return _load_faces(labels)
    path = Path(spec)
    if categories is not None:
        if path.suffix != ".npy":
            raise EBMError(f"--categories needs a .npy file of integers 0..K-1, got {spec!r}")
        x = categorical_array(_load_npy(path), str(path))
        y = read_labels(labels, x.shape[0]) if labels is not None else None
        onehot, shape = encode_categorical(x, categories, str(path))
        return describe_categorical(_split(onehot, str(path), seed, test_fraction, y), categories, shape)
    if path.suffix == ".npy":
        rows = _streamable(path)
        if rows is not None:
            y = read_labels(labels, len(rows)) if labels is not None else None
            return _split_streamed(rows, str(path), seed, test_fraction, y)
        x = validate_array(_load_npy(path), str(path), keep_uint8=True)
        if x.ndim == 2 and x.dtype == torch.uint8:
            x = x.float()                              # vectors are stored in the model scale
        y = read_labels(labels, x.shape[0]) if labels is not None else None
        if binary is not False and (binary or is_binary(x)):   # detected (None) or declared (True)
            if binary:
                check_binary_data(x, str(path))
            x, image_shape = flatten_binary(x)
            return mark_binary(_split(x, str(path), seed, test_fraction, y), image_shape)
        ds = _split(x, str(path), seed, test_fraction, y)
        if ds.kind != "image":
            return ds
        return _with_scaling(ds, uint8_file_scaling(int(ds.train.max())) if ds.train.dtype == torch.uint8
                             else Scaling.infer(ds.train))
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
    if path.suffix == ".npz" and path.is_file():
        raise EBMError(f"{spec!r} is an .npz archive of named arrays; save the one to train on as a .npy: "
                       "np.save('x.npy', np.load(FILE)['NAME'])")
    if path.exists():
        raise EBMError(f"cannot read data {spec!r}: give a .npy file, an image folder or a built-in set")
    raise EBMError(f"data {spec!r} not found: not a file or folder, nor a built-in set "
                   f"({', '.join(toy2d.NAMES)}, digits, faces, {', '.join(BINARY_DIGITS)})")


def mark_binary(ds: DataSet, image_shape: list[int] | None) -> DataSet:
    """Record in ``describe`` (data.json's source) that the set is binary, and its image shape if any."""
    ds.describe["binary"] = True
    if image_shape is not None:
        ds.describe["image_shape"] = image_shape
    return ds



def _load_faces(labels: str | None) -> DataSet:
    """The built-in faces (data/faces.py: 80 train / 20 held-out face crops of scikit-image's lfw_subset)."""
    from ebmlab.data.faces import FACES_RANGE, load_faces_uint8
    if labels is not None:
        raise EBMError("the built-in set 'faces' has no labels")
    ds = DataSet(load_faces_uint8("train"), load_faces_uint8("test"), "image", "faces", {"builtin": "faces"})
    return _with_scaling(ds, Scaling.from_range(*FACES_RANGE))


def with_recorded_scaling(ds: DataSet, recorded: dict[str, Any] | None) -> DataSet:
    """``ds`` of an existing run, mapped to the model scale by the scaling the run recorded in data.json
    (``recorded``; None or vector data: ``ds`` unchanged). Its model saw the data through that map, which the
    rules of today need not reproduce (a uint8 .npy was once scaled by its observed min/max)."""
    if recorded is None or ds.scaling is None:
        return ds
    return _with_scaling(ds, Scaling.from_dict(recorded))


def _with_scaling(ds: DataSet, scaling: Scaling) -> DataSet:
    """Images live in [-1, 1] inside the model: ``ds.to_model`` converts per batch, and the scaling
    is stored (data.json) to map samples back. The stored tensors are left as they are."""
    ds.scaling = scaling
    ds.describe["scaling"] = scaling.to_dict()
    return ds


def _streamable(path: Path) -> NpyRows | None:
    """The file's rows on disk if it is a uint8 (N, C, H, W) C-ordered .npy of at least
    ``STREAM_MIN_BYTES``; None for anything else (loaded whole, with ``_load_npy``'s messages)."""
    try:
        shape, dtype, fortran, _ = read_npy_header(path)
    except (OSError, ValueError, SyntaxError):
        return None
    if dtype != np.uint8 or fortran or len(shape) != 4 or int(np.prod(shape, dtype=np.int64)) < STREAM_MIN_BYTES:
        return None
    check_shape(shape, str(path))
    return NpyRows(path)


def _split_streamed(rows: NpyRows, name: str, seed: int, test_fraction: float,
                    y: torch.Tensor | None = None) -> DataSet:
    """``_split`` for rows on disk: the same permutation, train = rows perm[n_test:] as an index view
    (read per batch), test = rows perm[:n_test] (the first ``MAX_TEST_ITEMS`` of them) in memory.

    The scaling is ``uint8_file_scaling`` of the training rows' largest value, as for a file loaded whole
    (read in chunks).
    """
    n = len(rows)
    n_test = _n_test(n, test_fraction, name)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    train = IndexedData(rows, perm[n_test:])
    test = IndexedData(rows, perm[:n_test][:MAX_TEST_ITEMS])[slice(None)]
    ds = DataSet(train, test, "image", name, {"path": name})
    if y is not None:
        ds.y_train, ds.y_test, ds.n_classes = y[perm[n_test:]], y[perm[:n_test]], int(y.max()) + 1
    # the max does not depend on the order: read the training rows in file order (long sequential reads)
    order = np.sort(perm[n_test:].numpy())
    hi = 0
    for start in range(0, order.shape[0], _SCAN_ROWS):
        hi = max(hi, int(rows.take(order[start:start + _SCAN_ROWS]).max()))
    return _with_scaling(ds, uint8_file_scaling(hi))


def uint8_file_scaling(largest: int) -> Scaling:
    """The scaling of a uint8 image .npy whose largest value is ``largest``: pixels 0..255, as an image folder
    (whose ``ebmlab prepare`` cache such a file often is), a uint8 array from Python and inpaint's PNGs read
    them; 0..1 when every value is 0 or 1 (0/1 images declared continuous, which 0..255 would crush to -1).
    Runs written when a uint8 .npy was scaled by its observed min/max keep that map (``with_recorded_scaling``)."""
    return Scaling.from_range(0.0, 1.0) if largest <= 1 else Scaling.from_range(0.0, 255.0)


def _load_npy(path: Path) -> np.ndarray:
    if path.is_dir():        # "does not exist" sent the user looking for a folder that is there
        raise EBMError(f"{str(path)!r} is a folder; give a .npy file (an array written by numpy.save)")
    if not path.is_file():
        raise EBMError(f"data file {str(path)!r} does not exist")
    # an empty file ended as "EOFError: No data left in file" (no file named) and a text file as numpy's advice
    # to load it with allow_pickle: say what the file is not
    with open(path, "rb") as fh:
        head = fh.read(6)
    if head != b"\x93NUMPY":
        what = "an empty file" if not head else "not in NumPy's .npy format"
        raise EBMError(f"{str(path)!r} is {what}; give an array written by numpy.save")
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
    check_shape(arr.shape, where)
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


def check_shape(shape: tuple[int, ...], where: str) -> None:
    """A data array's shape must be (N, d) or (N, C, H, W) with N >= 2 and no empty axis."""
    if len(shape) not in (2, 4):
        raise EBMError(f"{where}: data must have shape (N, d) for vectors or (N, C, H, W) for images, "
                       f"got {tuple(shape)}")
    if shape[0] < 2 or any(s == 0 for s in shape):
        raise EBMError(f"{where}: data set is empty or has a single point (shape {tuple(shape)}); need N >= 2")


def _n_test(n: int, test_fraction: float, name: str) -> int:
    """How many of n points are held out (at least 1, leaving at least 2 to train on)."""
    n_test = max(1, int(round(n * test_fraction)))
    if n - n_test < 2:     # one training point has no spread: standardisation and the support box break
        raise EBMError(f"{name}: too few points ({n}) to hold out a test set and train on at least 2")
    return n_test


def _split(x: torch.Tensor, name: str, seed: int, test_fraction: float, y: torch.Tensor | None = None) -> DataSet:
    """Shuffle with the seed's permutation and cut off the test set: test = x[perm[:n_test]],
    train = x[perm[n_test:]]. ``x`` (a CPU tensor the caller owns) is permuted **in place** and
    both splits are views of it, so no second full-size copy is made."""
    n = x.shape[0]
    n_test = _n_test(n, test_fraction, name)
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
                           f"row {i} is {arr[i].item()!r}")
    elif arr.dtype.kind not in "iu":
        raise EBMError(f"labels {spec!r}: labels must be integers (class numbers 0, 1, ...), got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        i = int(np.argmin(arr))
        raise EBMError(f"labels {spec!r}: labels must be >= 0 (class numbers 0, 1, ...); row {i} is {arr[i].item()!r}")
    if arr.size and arr.max() >= 100000:
        raise EBMError(f"labels {spec!r}: a label of {arr.max().item()!r} means over 100000 classes; "
                       "number the classes 0, 1, ..., K-1")
    return torch.from_numpy(arr.astype(np.int64))
