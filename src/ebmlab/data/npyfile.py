"""Rows of a large ``.npy`` file read from disk on demand, never the whole array.

What ``--data cache.npy`` trains on when the file is a big uint8 image array (an ``ebmlab prepare``
cache): ``NpyRows`` is a map-style dataset over the file's rows, and ``take(rows)`` reads just the
rows of one batch. ``data.stream.IndexedData`` wraps it into the tensor-like view the trainer indexes.

Why plain reads and not ``np.load(path, mmap_mode="r")``: every page touched through a memory map
stays in the process's resident set until the kernel needs it back, so one pass over the file (the
data fingerprint, the observed value range) would make a 2 GB cache count as 2 GB of the process's
memory. ``readinto`` at an offset goes through the page cache, which the kernel shares and reclaims
freely and does not charge to the process; only the batch being read is held. The header is parsed
with numpy's own reader (``numpy.lib.format``), so anything ``np.load`` accepts is read the same way.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ebmlab.errors import EBMError


def read_npy_header(path: str | os.PathLike) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """(shape, dtype, fortran_order, data offset in bytes) of a ``.npy`` file, reading only its header.

    Raises ``ValueError``/``OSError`` for a file that is not a ``.npy`` (the caller falls back to
    ``np.load``'s own messages).
    """
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:       # 3.0 only changes the header's text encoding; np.load handles it
            raise ValueError(f".npy format version {version} is not read here")
        return tuple(int(s) for s in shape), np.dtype(dtype), bool(fortran), fh.tell()


class NpyRows:
    """The rows of a C-ordered ``.npy`` file as a map-style dataset: ``rows[i]`` is a tensor [*row].

    Args:
        path: the file. Its header is read once here; the data are read by ``take`` per call.

    Raises:
        EBMError: the file is Fortran-ordered (its rows are not contiguous on disk), of an object
            dtype, or shorter than its header says (truncated, or changed while being written).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        shape, dtype, fortran, offset = read_npy_header(self.path)
        if fortran or dtype.hasobject or len(shape) < 1:
            raise EBMError(f"{str(self.path)!r}: only C-ordered numeric .npy arrays can be read row by row")
        self.shape, self.dtype, self.offset = shape, dtype, offset
        self.row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        need = offset + shape[0] * self.row_bytes
        if self.path.stat().st_size < need:
            raise EBMError(f"{str(self.path)!r} is truncated: its header announces {shape[0]} rows of shape "
                           f"{shape[1:]} ({need} bytes) but the file has {self.path.stat().st_size}")

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        """Row ``i`` as a tensor [*row] of the file's dtype."""
        return torch.from_numpy(self.take(np.array([int(i)]))[0])

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (int [b], any order, repeats allowed) as an array [b, *row], in that order.

        Reads in file order, one read per run of consecutive rows, so a sorted range is one read.
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.empty((rows.shape[0], *self.shape[1:]), dtype=self.dtype)
        if rows.shape[0] == 0:
            return out
        n = self.shape[0]
        if rows.min() < -n or rows.max() >= n:
            raise IndexError(f"row index out of range for {n} rows")
        rows = np.where(rows < 0, rows + n, rows)
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        flat = out.reshape(rows.shape[0], -1).view(np.uint8)          # [b, row_bytes]
        # runs of consecutive row numbers in the sorted list: each run is one contiguous read
        starts = np.flatnonzero(np.diff(ordered, prepend=ordered[0] - 2) != 1)
        ends = np.append(starts[1:], ordered.shape[0])
        with open(self.path, "rb", buffering=0) as fh:
            for a, b in zip(starts.tolist(), ends.tolist()):
                buf = np.empty((b - a) * self.row_bytes, dtype=np.uint8)
                fh.seek(self.offset + int(ordered[a]) * self.row_bytes)
                got = fh.readinto(memoryview(buf))
                if got != buf.nbytes:
                    raise EBMError(f"{str(self.path)!r} ended early while reading rows (was it changed "
                                   "or truncated during training?)")
                flat[order[a:b]] = buf.reshape(b - a, self.row_bytes)
        return out
