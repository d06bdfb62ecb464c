"""A user's ``torch.utils.data.Dataset`` or ``DataLoader`` as training data, without loading it whole.

``IndexedData`` makes a map-style dataset look like the stored tensor the trainer indexes: it has
``shape``, ``dtype`` and ``device``, and ``data[idx]`` (idx a LongTensor of rows) fetches and stacks
only those items. It also serves the rows of a large ``.npy`` file on disk (``data.npyfile.NpyRows``,
what ``--data cache.npy`` streams), reading each batch's rows in one pass. The trainer draws every batch's indices from its own generator, so the order — and
hence ``--resume`` — is exact whatever the dataset is. A ``DataLoader`` contributes its dataset and
its batch size; its own sampler/shuffle is not used (ebmlab's generator decides the order, for exact
resume), which ``dataset_from_torch`` says in its description.

Items may be ``x`` or ``(x, y)`` (y an integer class); x must be a tensor (or array) of one fixed
shape: [d] for vectors or [C, H, W] for images. Float values are used as given (in float32, no
rescaling), like arrays passed to the Python API; uint8 images are mapped from 0..255 to [-1, 1] per
batch, like image folders.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from ebmlab.data.scaling import Scaling
from ebmlab.data.dataset import DataSet
from ebmlab.data.npyfile import NpyRows
from ebmlab.errors import EBMError

# held-out items of a streamed set are materialised (evaluation wants them at once): at most this many
MAX_TEST_ITEMS = 5000


class IndexedData:
    """Rows ``indices`` of a map-style dataset, indexable like a tensor [N, *event].

    Args:
        dataset: any object with ``__len__`` and ``__getitem__(int)`` returning ``x`` or ``(x, y)``.
        indices: int64 [N], the dataset rows this view covers (e.g. the training split).
    """

    def __init__(self, dataset: Any, indices: torch.Tensor) -> None:
        self.dataset = dataset
        self.indices = indices.to(torch.int64)
        first = _as_tensor(_item_x(dataset[int(self.indices[0])]), 0)
        self.event_shape = tuple(first.shape)
        self.dtype = first.dtype
        if isinstance(dataset, TensorDataset) and dataset.tensors[0].dtype != first.dtype:
            raise EBMError(f"a TensorDataset's data must be float32 (or uint8 images), got {dataset.tensors[0].dtype}; "
                           "convert it with .float()")
        self.device = torch.device("cpu")
        # a TensorDataset is already a tensor: index it directly instead of item by item
        self._tensor = dataset.tensors[0] if isinstance(dataset, TensorDataset) else None
        # rows of a .npy file on disk: one read per batch (per run of consecutive rows), not per item
        self._rows = dataset if isinstance(dataset, NpyRows) else None
        if self._tensor is not None and self._tensor.is_floating_point() and not bool(torch.isfinite(self._tensor).all()):
            raise EBMError("the TensorDataset's data contains NaN or Inf; remove or impute those rows")

    @property
    def shape(self) -> torch.Size:
        return torch.Size((self.indices.shape[0], *self.event_shape))

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __getitem__(self, idx: torch.Tensor | slice | int) -> torch.Tensor:
        """Rows ``idx`` (LongTensor, slice or int) of this view, stacked: [b, *event]."""
        rows = self.indices[idx]
        if self._tensor is not None:
            return self._tensor[rows]
        if self._rows is not None:
            got = torch.from_numpy(self._rows.take(rows.reshape(-1).numpy()))
            return got[0] if rows.ndim == 0 else got
        if rows.ndim == 0:
            return self._fetch(int(rows))
        return self._fetch_batch(rows.tolist())

    def labels(self) -> torch.Tensor | None:
        """int64 [N] labels when the items are (x, y) pairs, else None (reads every item's y once)."""
        first = self.dataset[int(self.indices[0])]
        if not isinstance(first, (tuple, list)) or len(first) < 2:
            return None
        ys = [_label(self.dataset[i], i) for i in self.indices.tolist()]
        return torch.tensor(ys, dtype=torch.int64)

    def split(self, size: int) -> Iterator[torch.Tensor]:
        """Consecutive chunks of at most ``size`` rows, like ``Tensor.split``: one pass, one chunk in memory."""
        for start in range(0, len(self), size):
            yield self[slice(start, start + size)]

    def to(self, *args: Any, **kwargs: Any) -> "IndexedData":
        return self     # rows are fetched on the host and moved per batch by the trainer

    def cpu(self) -> "IndexedData":
        return self

    def detach(self) -> "IndexedData":
        return self

    def _fetch_batch(self, rows: list[int]) -> torch.Tensor:
        """Items ``rows`` stacked [b, *event]: one stack and one finiteness check for the batch (per-item
        checks cost ~10x the fetch itself); an item of another shape or dtype is found and named."""
        items = [_item_x(self.dataset[i]) for i in rows]
        try:
            if isinstance(items[0], np.ndarray):
                batch = torch.from_numpy(np.stack(items))
            else:
                batch = torch.stack(items)
        except (TypeError, ValueError, RuntimeError):
            return torch.stack([self._fetch(i) for i in rows])     # names the item that differs
        if tuple(batch.shape[1:]) != self.event_shape or not _same_kind(batch.dtype, self.dtype):
            return torch.stack([self._fetch(i) for i in rows])
        batch = batch if batch.dtype in (torch.float32, torch.uint8) else batch.float()
        if batch.is_floating_point() and not bool(torch.isfinite(batch).all()):
            return torch.stack([self._fetch(i) for i in rows])     # names the first bad item
        return batch

    def _fetch(self, i: int) -> torch.Tensor:
        x = _as_tensor(_item_x(self.dataset[i]), i)
        if tuple(x.shape) != self.event_shape or x.dtype != self.dtype:
            raise EBMError(f"dataset item {i} has shape {tuple(x.shape)} and dtype {x.dtype}, but item "
                           f"{int(self.indices[0])} has {self.event_shape} and {self.dtype}; every item must "
                           "have the same shape and dtype")
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            raise EBMError(f"dataset item {i} contains NaN or Inf; remove or impute it")
        return x


def unwrap_loader(data: Any) -> tuple[Any, int | None]:
    """(the map-style dataset, the loader's batch size or None) of a Dataset or DataLoader."""
    batch_size = None
    if isinstance(data, DataLoader):
        batch_size = data.batch_size
        data = data.dataset
    if isinstance(data, IterableDataset):
        raise EBMError("an IterableDataset has no indices, so ebmlab cannot hold out a test split or resume it "
                       "exactly; wrap it in a map-style Dataset (with __len__ and __getitem__)")
    if not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
        raise EBMError(f"data of type {type(data).__name__} is not a map-style Dataset (needs __len__ and __getitem__)")
    return data, batch_size


def is_torch_data(data: Any) -> bool:
    """Whether ``data`` is a ``torch.utils.data.Dataset`` or ``DataLoader``."""
    return isinstance(data, (Dataset, DataLoader))


def _same_kind(stored: torch.dtype, first: torch.dtype) -> bool:
    """Whether a raw item dtype converts to the view's dtype (float64 items become float32)."""
    return stored == first or (stored.is_floating_point and first == torch.float32)


def _item_x(item: Any) -> Any:
    return item[0] if isinstance(item, (tuple, list)) else item


def _label(item: Any, i: int) -> int:
    y = item[1]
    if isinstance(y, torch.Tensor):
        if y.numel() != 1 or y.is_floating_point():
            raise EBMError(f"dataset item {i}: the label must be one integer, got {y!r}")
        y = int(y)
    if isinstance(y, (bool, float)) or not isinstance(y, (int, np.integer)) or y < 0:
        raise EBMError(f"dataset item {i}: the label must be an integer >= 0, got {y!r}")
    return int(y)


def _as_tensor(x: Any, i: int) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        if type(x).__module__.startswith("PIL."):
            # what a torchvision ImageFolder yields without a transform
            raise EBMError(f"dataset item {i} is a PIL image; items must be tensors (x or (x, y)): give the Dataset "
                           "transform=torchvision.transforms.PILToTensor() (uint8 [C, H, W], mapped from 0..255)")
        raise EBMError(f"dataset item {i} is a {type(x).__name__}; items must be tensors (x or (x, y))")
    if x.ndim not in (1, 3):
        raise EBMError(f"dataset item {i} has shape {tuple(x.shape)}; items must be vectors [d] or images [C, H, W]")
    if x.dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8):
        raise EBMError(f"dataset item {i} has dtype {x.dtype}; use float32 (or uint8 images)")
    x = x.detach().cpu()
    # the model computes in float32; uint8 images stay uint8 and are scaled per batch like image folders
    return x if x.dtype in (torch.float32, torch.uint8) else x.float()


def dataset_from_torch(data: Any, seed: int, test_fraction: float, labelled: bool = False) -> tuple[DataSet, int | None]:
    """A ``DataSet`` whose training split streams from a Dataset/DataLoader; (it, the loader's batch size).

    The held-out split is the first ``round(N * test_fraction)`` rows of a seeded permutation, at most
    ``MAX_TEST_ITEMS`` of them materialised as a tensor (evaluation reads it at once); the training
    split is every other row, read a batch at a time. ``labelled``: read the items' y (conditional
    objectives); EBMError when the items have none.
    """
    dataset, batch_size = unwrap_loader(data)
    n = len(dataset)
    n_test = max(1, int(round(n * test_fraction)))
    if n - n_test < 2:
        raise EBMError(f"the dataset has {n} items: too few to hold out a test set and train on at least 2")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    train = IndexedData(dataset, perm[n_test:])
    test_view = IndexedData(dataset, perm[:n_test][:MAX_TEST_ITEMS])
    kind = "vector" if len(train.event_shape) == 1 else "image"
    describe = {"path": f"<{type(dataset).__name__}>", "length": n,
                "order": "drawn by ebmlab's generator (a DataLoader's own sampler is not used)"}
    ds = DataSet(train, test_view[slice(None)], kind, type(dataset).__name__, describe)
    if labelled:
        y_train = train.labels()
        if y_train is None:
            raise EBMError("this objective needs labelled data: the dataset's items must be (x, y) pairs")
        ds.y_train, ds.y_test = y_train, test_view.labels()
        ds.n_classes = int(max(int(y_train.max()), int(ds.y_test.max()))) + 1
    if train.dtype == torch.uint8:
        ds.scaling = Scaling.from_range(0.0, 255.0)
        ds.describe["scaling"] = ds.scaling.to_dict()
    return ds, batch_size
