"""``ebmlab prepare``: a folder of images -> one uint8 (N, C, S, S) ``.npy`` cache, written to disk as it goes.

An image folder is decoded and resized every time ``train --data FOLDER`` starts, and held whole in
memory; a prepared cache is resized once and ``train --data cache.npy`` reads it from disk a batch at
a time (``data/sources.py``). The folder rules are those of ``data/images.py`` (recursive, sorted
relative paths, EXIF rotation, transparency on white, bicubic resize of the shorter side to S and a
centre crop, 1 channel only when every image is grayscale); corrupt files and non-image files are
skipped and counted.

Crops (``crop=``):
- ``"center"``: the folder rule above, nothing cut first.
- ``"celeba"``: for the aligned CelebA images (``img_align_celeba/``, 178x218), first the box
  (left, upper, right, lower) = (15, 40, 163, 188), a 148x148 square around the face, then the
  bicubic resize (Pillow ``Image.Resampling.BICUBIC``, antialiased when shrinking) to S x S. The box
  is the "CelebA 64" convention of Larsen et al., "Autoencoding beyond pixels using a learned
  similarity metric" (ICML 2016; their code crops rows 40..218-30 and columns 15..178-15), which
  later generative-model code kept (e.g. NVAE's ``CropCelebA64``, Vahdat & Kautz 2020). An image of
  another size gets the same box scaled to its width and height.

Memory: rows are written through ``numpy.lib.format.open_memmap``, and the mapping is closed and
reopened at every progress save, so at most ``PROGRESS_EVERY`` images' pages belong to the process.

Resuming: the rows go into ``.<out>.partial`` beside the output and a small JSON progress file
``.<out>.progress.json`` records how many source files are done, with the arguments and the sorted
file list's hash; a rerun with the same arguments continues where the last saved progress left off
(rows decoded after it are decoded again, to the same bytes). The output appears only at the end,
by an atomic rename, so ``out`` is either absent or complete.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ebmlab.atomic import atomic_write_text, fsync_file, replace_atomically
from ebmlab.data.images import FolderReport, check_image_size, decode_errors, decode_image, scan_image_folder
from ebmlab.data.npyfile import NpyRows
from ebmlab.errors import EBMError

# aligned CelebA: image size and the face box in it (see the module docstring)
CELEBA_IMAGE = (178, 218)
CELEBA_BOX = (15, 40, 163, 188)
CROPS: dict[str, tuple[float, float, float, float] | None] = {
    "center": None,
    "celeba": (CELEBA_BOX[0] / CELEBA_IMAGE[0], CELEBA_BOX[1] / CELEBA_IMAGE[1],
               CELEBA_BOX[2] / CELEBA_IMAGE[0], CELEBA_BOX[3] / CELEBA_IMAGE[1]),
}
MAX_SIZE = 1024            # 1024x1024 RGB is 3 MB an image; anything larger is a typo, not a cache
PROGRESS_EVERY = 256       # source files between progress saves (an fsync each)
_FORMAT = 1                # version of the progress file


@dataclass
class PrepareReport:
    """What ``prepare_cache`` wrote: the cache's path and shape, what it skipped, where it resumed."""

    out: Path
    shape: tuple[int, int, int, int]
    folder: FolderReport
    resumed_at: int = 0        # source files already done by an earlier, interrupted run

    def summary(self) -> str:
        mb = int(np.prod(self.shape)) / 1e6
        resumed = f" (resumed after {self.resumed_at} files)" if self.resumed_at else ""
        return f"wrote {self.out}: uint8 {self.shape}, {mb:.1f} MB{resumed}; {self.folder.summary()}"


def prepare_cache(source: str | os.PathLike, size: Any, out: str | os.PathLike, crop: str = "center",
                  force: bool = False) -> PrepareReport:
    """Decode and resize every image under ``source`` once into ``out``, uint8 [N, C, size, size].

    Args:
        source: the image folder (searched recursively).
        size: side S of the square images, 1..``MAX_SIZE``.
        out: the ``.npy`` file to write.
        crop: ``"center"`` or ``"celeba"`` (see the module docstring).
        force: replace an existing ``out``.

    Raises:
        EBMError: a bad size or crop, ``out`` exists (without ``force``) or is not a ``.npy`` path, the
            source is not a folder or holds no image, or the disk has no room. Nothing is written then.
    """
    size = check_image_size(size)
    if size > MAX_SIZE:
        raise EBMError(f"--size {size} is too large for a cache; use at most {MAX_SIZE}")
    if crop not in CROPS:
        raise EBMError(f"unknown crop {crop!r}; choose one of {', '.join(CROPS)}")
    out = Path(out)
    if out.suffix != ".npy":
        raise EBMError(f"--out must be a .npy file (train reads caches by that suffix), got {str(out)!r}")
    if out.is_dir():
        raise EBMError(f"--out {str(out)!r} is a folder; give a file name ending in .npy")
    if out.exists() and not force:
        raise EBMError(f"{str(out)!r} already exists; pass --force to replace it")
    if not out.parent.is_dir():
        raise EBMError(f"the folder of --out, {str(out.parent)!r}, does not exist")
    root = Path(source)
    if not root.is_dir():
        raise EBMError(f"image folder {str(root)!r} does not exist or is not a folder")
    files, report = scan_image_folder(root)
    report.image_size = size
    if not files:
        raise EBMError(f"no image files in {str(root)!r} ({report.n_not_image} other files); prepare reads "
                       "png/jpg/jpeg/jpe/bmp/webp")
    names = [f.relative_to(root).as_posix() for f in files]
    key = {"format": _FORMAT, "source": str(root.resolve()), "size": size, "crop": crop, "n_files": len(files),
           "files_sha256": hashlib.sha256("\n".join(names).encode()).hexdigest()}
    partial = out.parent / f".{out.name}.partial"
    progress = out.parent / f".{out.name}.progress.json"
    shape = (len(files), 3, size, size)       # RGB while writing; all-grayscale sets keep one plane at the end
    state = _resumable_state(partial, progress, key, shape)
    if state is None:
        _check_room(out.parent, int(np.prod(shape)))
        np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=shape).flush()
        state = {"key": key, "done": 0, "written": 0, "all_gray": True, "n_unreadable": 0, "unreadable_files": []}
        _save(progress, state)
    resumed_at = state["done"]
    report.n_unreadable, report.unreadable_files = state["n_unreadable"], list(state["unreadable_files"])
    _fill(partial, progress, files, names, state, report, size, CROPS[crop])
    written, channels = state["written"], 1 if state["all_gray"] else 3
    if written == 0:
        partial.unlink(missing_ok=True)
        progress.unlink(missing_ok=True)
        raise EBMError(f"no readable image in {str(root)!r}: {report.n_unreadable} unreadable, "
                       f"{report.n_not_image} other files")
    _finish(partial, out, written, channels, size)
    progress.unlink(missing_ok=True)
    report.n_loaded, report.channels = written, channels
    return PrepareReport(out, (written, channels, size, size), report, resumed_at)


def _resumable_state(partial: Path, progress: Path, key: dict[str, Any],
                     shape: tuple[int, ...]) -> dict[str, Any] | None:
    """The saved progress of an interrupted run with the same arguments and files, or None (start over)."""
    try:
        state = json.loads(progress.read_text())
        rows = NpyRows(partial)
    except (OSError, ValueError, EBMError):
        return None
    if not isinstance(state, dict) or state.get("key") != key or rows.shape != shape or rows.dtype != np.uint8:
        return None
    ok = (isinstance(state.get("done"), int) and isinstance(state.get("written"), int)
          and 0 <= state["written"] <= state["done"] <= shape[0] and isinstance(state.get("all_gray"), bool)
          and isinstance(state.get("n_unreadable"), int) and isinstance(state.get("unreadable_files"), list))
    return state if ok else None


def _fill(partial: Path, progress: Path, files: list[Path], names: list[str], state: dict[str, Any],
          report: FolderReport, size: int, box: tuple[float, float, float, float] | None) -> None:
    """Decode files[state["done"]:] into the partial file's next rows, saving progress as it goes
    (and when interrupted: the rows before ``done`` are complete, so a rerun continues from there)."""
    skip = decode_errors()
    rows = np.lib.format.open_memmap(partial, mode="r+")
    try:
        for i in range(state["done"], len(files)):
            try:
                a, gray = decode_image(files[i], size, None, box)
            except skip:
                report.skip_unreadable(names[i])
                state["n_unreadable"], state["unreadable_files"] = report.n_unreadable, report.unreadable_files
            else:
                rows[state["written"]] = a            # a grayscale [1, S, S] fills all three planes
                state["written"] += 1
                state["all_gray"] = state["all_gray"] and gray
            state["done"] = i + 1
            if state["done"] % PROGRESS_EVERY == 0:
                rows = _checkpoint(rows, partial, progress, state)
    finally:
        # saved on any exit, Ctrl-C included: everything counted in ``state`` is in ``rows``
        rows.flush()
        del rows
        _save(progress, state)


def _checkpoint(rows: np.memmap, partial: Path, progress: Path, state: dict[str, Any]) -> np.memmap:
    """Flush the rows, save progress, and map the file afresh: dropping the old mapping hands its
    pages back to the page cache, so the process never holds more than a checkpoint's worth."""
    rows.flush()
    del rows
    _save(progress, state)
    return np.lib.format.open_memmap(partial, mode="r+")


def _finish(partial: Path, out: Path, written: int, channels: int, size: int) -> None:
    """Move the partial file to ``out`` — renamed as it is when every file was read and some were
    colour, else copied chunk by chunk into a file of the final shape first."""
    src = NpyRows(partial)
    if written == src.shape[0] and channels == src.shape[1]:
        fsync_file(partial)
        replace_atomically(partial, out)
        return
    final = out.parent / f".{out.name}.final"
    np.lib.format.open_memmap(final, mode="w+", dtype=np.uint8, shape=(written, channels, size, size)).flush()
    try:
        step = PROGRESS_EVERY
        for start in range(0, written, step):
            stop = min(start + step, written)
            dst = np.lib.format.open_memmap(final, mode="r+")
            dst[start:stop] = src.take(np.arange(start, stop))[:, :channels]
            dst.flush()
            del dst
        fsync_file(final)
        replace_atomically(final, out)
    except BaseException:
        final.unlink(missing_ok=True)
        raise
    partial.unlink()


def _save(progress: Path, state: dict[str, Any]) -> None:
    atomic_write_text(progress, json.dumps(state))


def _check_room(folder: Path, nbytes: int) -> None:
    """Refuse before writing anything when the cache cannot fit on the disk."""
    free = shutil.disk_usage(folder).free
    if nbytes > free:
        raise EBMError(f"the cache needs {nbytes / 1e9:.2f} GB but {str(folder)!r} has {free / 1e9:.2f} GB free")
