"""Turn ``--data`` into train/test tensors: a built-in 2-D set, digits, a ``.npy`` file or an image folder."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import EBMError
from . import toy2d
from .scaling import Scaling

# the held-out set of a built-in 2-D set is the same for every run, so NLLs are comparable
TEST_SEED = 12345


@dataclass
class DataSet:
    """train: [N, *event]; test: [M, *event]; ``describe`` is JSON-able and goes into data.json."""

    train: torch.Tensor
    test: torch.Tensor
    kind: str                        # "vector" or "image"
    name: str
    describe: dict[str, Any] = field(default_factory=dict)

    @property
    def event_shape(self) -> tuple[int, ...]:
        return tuple(self.train.shape[1:])


def load_data(spec: str, seed: int = 0, n_test: int = 5000, test_fraction: float = 0.1,
              image_size: int | None = None) -> DataSet:
    """Resolve ``spec`` (a built-in name or a path) into a validated ``DataSet``."""
    if not spec:
        raise EBMError("no data given; pass --data with a built-in set "
                       f"({', '.join(toy2d.NAMES)}, digits), a .npy file or an image folder")
    if spec in toy2d.NAMES:
        train = toy2d.make(spec, 20000, torch.Generator().manual_seed(seed))
        test = toy2d.make(spec, n_test, torch.Generator().manual_seed(TEST_SEED))
        return DataSet(train, test, "vector", spec, {"builtin": spec})
    if spec == "digits":
        from .images import load_digits_images
        return _to_model_scale(DataSet(load_digits_images("train"), load_digits_images("test"), "image",
                                       "digits", {"builtin": "digits"}), Scaling.from_range(0.0, 16.0))
    path = Path(spec)
    if path.suffix == ".npy":
        ds = _split(validate_array(_load_npy(path), str(path)), str(path), seed, test_fraction)
        return _to_model_scale(ds, Scaling.infer(ds.train)) if ds.kind == "image" else ds
    if path.is_dir():
        from .images import load_image_folder
        if image_size is None:
            raise EBMError("an image folder needs --image-size (for example 32 or 64)")
        x, report = load_image_folder(path, image_size)
        ds = _split(validate_array(x, str(path)), str(path), seed, test_fraction)
        ds.describe["folder_report"] = report.to_dict()
        return _to_model_scale(ds, Scaling.from_range(0.0, 255.0))
    if path.exists():
        raise EBMError(f"cannot read data {spec!r}: give a .npy file, an image folder or a built-in set")
    raise EBMError(f"data {spec!r} not found: not a file or folder, nor a built-in set "
                   f"({', '.join(toy2d.NAMES)}, digits)")


def _to_model_scale(ds: DataSet, scaling: Scaling) -> DataSet:
    """Images live in [-1, 1] inside the model; the scaling is stored to map samples back."""
    ds.train, ds.test = scaling.to_model(ds.train), scaling.to_model(ds.test)
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


def validate_array(x: np.ndarray | torch.Tensor, where: str) -> torch.Tensor:
    """Check a data array: shape (N, d) or (N, C, H, W), N >= 2, numeric and finite."""
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
    if arr.dtype.kind == "f" and np.isfinite(arr).all() and (np.abs(arr) > np.finfo(np.float32).max).any():
        raise EBMError(f"{where}: data has values beyond the float32 range (|x| > 3.4e38); rescale it")
    arr = arr.astype(np.float32)
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise EBMError(f"{where}: data contains NaN or Inf in {len(rows)} row(s) (first: row {rows[0]}); "
                       "remove or impute them")
    return torch.from_numpy(arr)


def _split(x: torch.Tensor, name: str, seed: int, test_fraction: float) -> DataSet:
    n = x.shape[0]
    n_test = max(1, int(round(n * test_fraction)))
    if n - n_test < 2:     # one training point has no spread: standardisation and the support box break
        raise EBMError(f"{name}: too few points ({n}) to hold out a test set and train on at least 2")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    kind = "vector" if x.ndim == 2 else "image"
    return DataSet(x[perm[n_test:]], x[perm[:n_test]], kind, name, {"path": name})
