"""Image data sources: the built-in 8x8 digits, a folder of image files, and a .npy array.

All loaders return images as [N, C, H, W] tensors **in their own data scale** (digits 0..16,
files 0..255 as uint8, .npy as stored); ``ebmlab.data.scaling.Scaling`` maps them to the model
scale [-1, 1] and back. Keeping the raw scale here means a run can always write samples back
in the convention of its input, and lets a training set stay uint8 in memory (a quarter of
float32): ``DataSet.to_model`` converts one batch at a time.

Folder rules (documented once, here):
- searched recursively, files in sorted relative-path order (deterministic); symbolic links to folders are
  not followed (counted in the report, by name), a dangling link counts as an unreadable file;
- files with an extension in ``IMAGE_EXTENSIONS`` are decoded; anything else is counted as
  "not an image" and skipped; a file that fails to decode (corrupt, truncated) is counted as
  "unreadable" and skipped;
- EXIF orientation is applied; transparency (RGBA, LA, palette with transparency) is
  composited onto a **white** background, as a viewer would show it;
- channels: 1 if every image is grayscale (modes 1, L, LA, I, I;16, F), else 3; ``channels=``
  forces either; a 16-bit grey PNG is scaled to 8 bits (v -> round(v / 257)), not clipped;
- each image is resized so its shorter side is ``image_size`` (bicubic) and centre-cropped to
  ``image_size x image_size``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ebmlab.errors import EBMError
from ebmlab.data.scaling import Scaling

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".webp"})
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
DIGITS_RANGE = (0.0, 16.0)   # sklearn digits pixel values are integers 0..16
_MAX_NAMES = 5               # how many skipped file names a report keeps


def decode_errors() -> tuple[type[BaseException], ...]:
    """Pillow's ways of saying "not a decodable image" (corrupt, truncated, not an image at all): a
    file raising one of these is skipped and counted; anything else is a bug and propagates.
    A function so that importing this module does not import Pillow."""
    from PIL import Image
    return (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


# ---------------------------------------------------------------------------------------
# built-in digits
# ---------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _digits_split(seed: int, test_fraction: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.images.astype(np.float32)[:, None]           # [1797, 1, 8, 8], values 0..16
    y = d.target.astype(np.int64)
    # stratified so both splits hold every class in the same proportion
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return {"train": (xtr, ytr), "test": (xte, yte), "all": (x, y)}


def _digits(split: str, seed: int, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    if split not in ("train", "test", "all"):
        raise EBMError(f"unknown digits split {split!r}; choose 'train', 'test' or 'all'")
    if not 0.0 < test_fraction < 1.0:
        raise EBMError(f"test_fraction must be in (0, 1), got {test_fraction}")
    return _digits_split(int(seed), float(test_fraction))[split]


def load_digits_images(split: str = "train", seed: int = 0, test_fraction: float = 0.2,
                       model_scale: bool = False) -> torch.Tensor:
    """scikit-learn's 8x8 handwritten digits as float32 [N, 1, 8, 8].

    Args:
        split: ``"train"`` (80 %, 1437 images), ``"test"`` (20 %, 360) or ``"all"`` (1797).
        seed: seed of the fixed, stratified train/test split (same seed, same split).
        test_fraction: share of the test split.
        model_scale: return values in [-1, 1] instead of the raw 0..16.
    """
    x = torch.from_numpy(_digits(split, seed, test_fraction)[0].copy())
    return Scaling.from_range(*DIGITS_RANGE).to_model(x) if model_scale else x


def load_digits_uint8(split: str = "train", seed: int = 0, test_fraction: float = 0.2) -> torch.Tensor:
    """The same images as ``load_digits_images`` stored as uint8 [N, 1, 8, 8] (values 0..16, exact).

    What ``--data digits`` trains on: the integers 0..16 convert back to exactly the float32
    values of ``load_digits_images`` (per batch, by ``Scaling.from_range(0, 16).to_model``).
    """
    x = _digits(split, seed, test_fraction)[0]
    u = x.astype(np.uint8)
    if not np.array_equal(u, x):      # sklearn's digits are integers 0..16; anything else is a bug
        raise EBMError("scikit-learn's digits are not integers 0..16; cannot store them as uint8")
    return torch.from_numpy(u)


def load_digits_labels(split: str = "train", seed: int = 0, test_fraction: float = 0.2) -> torch.Tensor:
    """Class labels int64 [N] aligned with ``load_digits_images(split, seed, test_fraction)``."""
    return torch.from_numpy(_digits(split, seed, test_fraction)[1].copy())


# ---------------------------------------------------------------------------------------
# folders of image files
# ---------------------------------------------------------------------------------------
@dataclass
class FolderReport:
    """What ``load_image_folder`` read and skipped (put ``summary()`` in the log)."""

    root: str
    n_loaded: int = 0
    n_unreadable: int = 0
    n_not_image: int = 0
    unreadable_files: list[str] = field(default_factory=list)   # first few, relative paths
    not_image_files: list[str] = field(default_factory=list)
    channels: int = 0
    image_size: int = 0
    n_linked_folders: int = 0                                   # symlinks to folders: not searched
    linked_folders: list[str] = field(default_factory=list)

    @property
    def left_out(self) -> bool:
        """True when some file or linked folder under the root did not make it into the training set."""
        return bool(self.n_unreadable or self.n_not_image or self.n_linked_folders)

    def summary(self) -> str:
        s = f"loaded {self.n_loaded} images ({self.channels}x{self.image_size}x{self.image_size}) from {self.root}"
        if self.n_unreadable:
            s += f"; skipped {self.n_unreadable} unreadable ({', '.join(self.unreadable_files)}" \
                 f"{', ...' if self.n_unreadable > len(self.unreadable_files) else ''})"
        if self.n_not_image:
            s += f"; skipped {self.n_not_image} non-image files ({', '.join(self.not_image_files)}" \
                 f"{', ...' if self.n_not_image > len(self.not_image_files) else ''})"
        if self.n_linked_folders:
            s += f"; did not search {self.n_linked_folders} symlinked folder(s) ({', '.join(self.linked_folders)}" \
                 f"{', ...' if self.n_linked_folders > len(self.linked_folders) else ''}): links to folders are " \
                 "not followed"
        return s

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def skip_unreadable(self, name: str) -> None:
        """Count one file that failed to decode (the first few names are kept)."""
        self.n_unreadable += 1
        if len(self.unreadable_files) < _MAX_NAMES:
            self.unreadable_files.append(name)


def scan_image_folder(root: Path) -> tuple[list[Path], FolderReport]:
    """(the image files under ``root`` in sorted relative-path order, a report counting the other files).

    The folder rules of the module docstring: recursive, deterministic order, by extension.
    """
    report = FolderReport(root=str(root))
    candidates = []
    entries = sorted(root.rglob("*"))
    for link in (p for p in entries if p.is_symlink() and p.is_dir()):
        # rglob does not descend into them (a link cycle would never end); said, not silently dropped
        report.n_linked_folders += 1
        if len(report.linked_folders) < _MAX_NAMES:
            report.linked_folders.append(link.relative_to(root).as_posix())
    # a dangling symlink is kept as a file: decoding it fails, so it is counted as unreadable, by name
    for file in (p for p in entries if p.is_file() or (p.is_symlink() and not p.exists())):
        if file.suffix.lower() in IMAGE_EXTENSIONS:
            candidates.append(file)
        else:
            report.n_not_image += 1
            if len(report.not_image_files) < _MAX_NAMES:
                report.not_image_files.append(file.relative_to(root).as_posix())
    return candidates, report


def check_image_size(image_size: Any) -> int:
    """Return ``image_size`` as an int, or raise EBMError if it is not a positive integer."""
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size <= 0:
        raise EBMError(f"image size must be a positive integer (e.g. 32 or 64), got {image_size!r}")
    return int(image_size)


def _check_channels(channels: Any) -> int | None:
    if channels is None:
        return None
    if isinstance(channels, bool) or channels not in (1, 3):
        raise EBMError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    return int(channels)


def decode_image(path: str | os.PathLike, image_size: int | None = None,
                 channels: int | None = None,
                 crop_box: tuple[float, float, float, float] | None = None) -> tuple[np.ndarray, bool]:
    """Decode one file to uint8 [C, H, W] following the folder rules above.

    Returns ``(array, is_gray)`` where ``is_gray`` says whether the file itself was grayscale.
    ``channels=None`` keeps 1 channel for grayscale files and 3 for the rest. ``image_size=None``
    keeps the original size. ``crop_box`` (left, upper, right, lower) as fractions of the width and
    height: cut that box out first (after the EXIF rotation, before the resize). Raises
    ``OSError``/``ValueError`` from Pillow on a bad file (``decode_errors()``).
    """
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im.load()                                   # decode now: truncated files fail here
        im = ImageOps.exif_transpose(im)
        is_gray = im.mode in GRAY_MODES
        if im.mode == "I" or im.mode.startswith("I;16"):
            im = _sixteen_bit_to_l(im)
        if im.mode == "P" or im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info:
            im = im.convert("RGBA")
            white = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(white, im)    # transparent areas show as white
        want = channels if channels is not None else (1 if is_gray else 3)
        im = im.convert("L" if want == 1 else "RGB")
        if crop_box is not None:
            w, h = im.size
            l, u, r, b = crop_box
            im = im.crop((round(l * w), round(u * h), round(r * w), round(b * h)))
        if image_size is not None:
            # shorter side -> image_size, then centre crop; ImageOps.fit does both at once
            im = ImageOps.fit(im, (image_size, image_size), method=Image.Resampling.BICUBIC,
                              centering=(0.5, 0.5))
        a = np.asarray(im, dtype=np.uint8)
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    return np.ascontiguousarray(a), is_gray


def _sixteen_bit_to_l(im: Any) -> Any:
    """A 16-bit grey image (Pillow mode I;16 or I: a 16-bit PNG) as 8-bit L, each value v -> round(v / 257).

    Why not ``im.convert("L")``: Pillow clips those values at 255 instead of scaling them, so a 16-bit
    picture came out white wherever it was brighter than 255/65535. A grey value the file marks
    transparent (PNG tRNS) becomes white, as the transparency rule of the module docstring says."""
    from PIL import Image
    wide = np.asarray(im, dtype=np.int64)
    narrow = np.clip(np.round(wide / 257.0), 0, 255).astype(np.uint8)
    transparent = im.info.get("transparency")
    if isinstance(transparent, int):
        narrow[wide == transparent] = 255
    return Image.fromarray(narrow, "L")


def load_image_folder(path: str | os.PathLike, image_size: int, channels: int | None = None,
                      max_images: int | None = None) -> tuple[torch.Tensor, FolderReport]:
    """Every readable image under ``path`` as uint8 [N, C, image_size, image_size] (0..255).

    uint8 keeps a CelebA-sized folder at a quarter of the float32 memory; convert per batch with
    ``Scaling.from_range(0, 255).to_model``. See the module docstring for the rules.

    Args:
        path: the folder (searched recursively).
        image_size: side of the square output; a positive integer.
        channels: 1 or 3 to force grayscale/RGB; None picks 1 only if every image is grayscale.
        max_images: stop after this many readable images (handy for a quick run).

    Raises:
        EBMError: the folder does not exist, holds no readable image, or a bad size/channels.
    """
    image_size = check_image_size(image_size)
    channels = _check_channels(channels)
    root = Path(path)
    if not root.is_dir():
        raise EBMError(f"image folder {str(root)!r} does not exist or is not a folder")
    candidates, report = scan_image_folder(root)
    report.image_size = image_size
    if max_images is not None:
        if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images <= 0:
            raise EBMError(f"max_images must be a positive integer, got {max_images!r}")
    # Preallocated uint8 buffer (no list-then-stack copy: a CelebA folder is GBs). Without forced
    # channels it holds RGB; grayscale files broadcast into all 3 planes, and if every file was
    # grayscale the first plane is all we keep.
    cap = len(candidates) if max_images is None else min(len(candidates), max_images)
    buf = np.empty((cap, channels or 3, image_size, image_size), dtype=np.uint8)
    n, all_gray = 0, True
    for file in candidates:
        if n >= cap:
            break
        try:
            a, gray = decode_image(file, image_size, channels)
        except decode_errors():
            report.skip_unreadable(file.relative_to(root).as_posix())
            continue
        buf[n] = a
        all_gray &= gray
        n += 1
    if n == 0:
        raise EBMError(f"no readable image ({'/'.join(sorted(e[1:] for e in IMAGE_EXTENSIONS))}) in folder "
                       f"{str(root)!r}: {report.n_unreadable} unreadable, {report.n_not_image} other files")
    c = channels if channels is not None else (1 if all_gray else 3)
    x = buf[:n] if c == buf.shape[1] else np.ascontiguousarray(buf[:n, :c])
    report.n_loaded, report.channels = n, c
    return torch.from_numpy(x), report


# ---------------------------------------------------------------------------------------
# .npy arrays
# ---------------------------------------------------------------------------------------
def load_npy_images(path: str | os.PathLike) -> torch.Tensor:
    """Images from a ``.npy`` of shape (N, C, H, W) (or (N, H, W), read as C = 1).

    uint8 arrays stay uint8 (``Scaling.infer`` then knows the range is 0..255); everything else
    becomes float32. Pickled object arrays are refused (``allow_pickle=False``).
    """
    p = Path(path)
    if not p.is_file():
        raise EBMError(f"file {str(p)!r} does not exist")
    try:
        a = np.load(p, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise EBMError(f"cannot read {str(p)!r} as a .npy array ({str(e).splitlines()[0]})") from e
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "uifb":
        raise EBMError(f"{str(p)!r} must hold a numeric array, got dtype {getattr(a, 'dtype', type(a))}")
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise EBMError(f"image data must have shape (N, C, H, W); {str(p)!r} has shape {a.shape}")
    if a.shape[0] == 0:
        raise EBMError(f"{str(p)!r} holds no images (N = 0)")
    if a.shape[-1] in (1, 3, 4) and a.shape[1] not in (1, 3, 4):
        raise EBMError(f"{str(p)!r} has shape {a.shape}, which looks like (N, H, W, C); "
                       "save it as (N, C, H, W), e.g. np.transpose(x, (0, 3, 1, 2))")
    if a.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(a))
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise EBMError(f"{str(p)!r} contains NaN or infinite values; clean them before training")
    return torch.from_numpy(np.ascontiguousarray(a))
