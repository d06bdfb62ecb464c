"""PNG pictures of image batches (Pillow only): sample grids, chain strips, and reading one image.

Writes are atomic (``ebmlab.atomic``: a temporary file in the same folder, then a rename), so a crash never
leaves a half-written PNG behind.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ebmlab.data.images import GRAY_MODES, check_image_size, decode_image
from ebmlab.atomic import atomic_write_with
from ebmlab.data.scaling import Scaling
from ebmlab.errors import EBMError

# Tiles smaller than this are upscaled (nearest neighbour, so pixels stay crisp) until they are
# at least this big: an 8x8 digit becomes 32x32, which a viewer shows at a readable size.
MIN_TILE = 32


def _to_uint8(x: torch.Tensor, scaling: Scaling | None) -> np.ndarray:
    """[..., C, H, W] in model scale (or ``scaling``'s data scale) -> uint8 0..255, same shape."""
    x = x.detach().to("cpu", torch.float32)
    if scaling is not None:
        x = scaling.to_model(x)
    x = torch.nan_to_num(x, nan=0.0)
    return ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8).numpy()


def _tile(tiles: np.ndarray, upscale: int | None, padding: int, pad_value: int) -> np.ndarray:
    """tiles uint8 [R, K, C, H, W] -> one image [C, R*(h+p)+p, K*(w+p)+p]."""
    r, k, c, h, w = tiles.shape
    f = upscale if upscale is not None else max(1, math.ceil(MIN_TILE / max(h, w)))
    if f < 1:
        raise EBMError(f"upscale must be a positive integer, got {upscale}")
    if f > 1:
        tiles = tiles.repeat(f, axis=3).repeat(f, axis=4)
        h, w = h * f, w * f
    out = np.full((c, r * (h + padding) + padding, k * (w + padding) + padding), pad_value, dtype=np.uint8)
    for i in range(r):
        for j in range(k):
            y0, x0 = padding + i * (h + padding), padding + j * (w + padding)
            out[:, y0:y0 + h, x0:x0 + w] = tiles[i, j]
    return out


def _write_png(img: np.ndarray, path: str | os.PathLike) -> Path:
    """img uint8 [C, H, W] with C in {1, 3} -> PNG at ``path``, atomically."""
    from PIL import Image

    c = img.shape[0]
    if c not in (1, 3):
        raise EBMError(f"a PNG needs 1 (grayscale) or 3 (RGB) channels, got {c}")
    pil = Image.fromarray(np.ascontiguousarray(img[0] if c == 1 else img.transpose(1, 2, 0)))  # uint8: L or RGB
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_with(out, lambda tmp: pil.save(tmp, format="PNG"))


def save_grid_png(x: torch.Tensor, path: str | os.PathLike, nrow: int | None = None,
                  scaling: Scaling | None = None, upscale: int | None = None,
                  padding: int = 2, pad_value: int = 128) -> Path:
    """Write images x [N, C, H, W] as one grid PNG, ``nrow`` images per row (default ~sqrt(N)).

    Args:
        x: images in model scale [-1, 1]; or, when ``scaling`` is given, in that scaling's
            data scale (e.g. 0..16 digits). Values outside the range are clipped.
        path: output file; parent folders are created.
        upscale: integer nearest-neighbour zoom per tile; default makes tiles >= 32 px.
        padding, pad_value: grey separator lines between tiles.
    Returns the path written.
    """
    if x.ndim != 4 or x.shape[0] == 0:
        raise EBMError(f"save_grid_png needs a non-empty batch [N, C, H, W], got shape {tuple(x.shape)}")
    n = x.shape[0]
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    a = _to_uint8(x, scaling)
    pad = np.full((rows * nrow - n, *a.shape[1:]), pad_value, dtype=np.uint8)   # empty cells
    tiles = np.concatenate([a, pad]).reshape(rows, nrow, *a.shape[1:])
    return _write_png(_tile(tiles, upscale, padding, pad_value), path)


def save_strip_png(frames: torch.Tensor | Sequence[torch.Tensor], path: str | os.PathLike,
                   scaling: Scaling | None = None, upscale: int | None = None,
                   padding: int = 2, pad_value: int = 128) -> Path:
    """Write a chain trajectory: frames [T, N, C, H, W] (or a list of T tensors [N, C, H, W]).

    One row per chain, time running left to right (column t is frame t). Scale as in
    ``save_grid_png``. Returns the path written.
    """
    if not isinstance(frames, torch.Tensor):
        if len(frames) == 0:
            raise EBMError("save_strip_png needs at least one frame")
        frames = torch.stack([f.detach().cpu() for f in frames])
    if frames.ndim != 5 or frames.shape[0] == 0 or frames.shape[1] == 0:
        raise EBMError(f"save_strip_png needs frames [T, N, C, H, W], got shape {tuple(frames.shape)}")
    a = _to_uint8(frames, scaling).transpose(1, 0, 2, 3, 4)    # rows = chains, columns = time
    return _write_png(_tile(np.ascontiguousarray(a), upscale, padding, pad_value), path)


def load_image_as_tensor(path: str | os.PathLike, channels: int, image_size: int,
                         resize: bool = False, convert: bool = False) -> torch.Tensor:
    """Read one image file as float32 [1, C, S, S] in 0..255 (its data scale).

    Map it to the model with ``Scaling.from_range(0, 255).to_model(x)``. Transparency is
    composited on white, as in the folder loader.

    Args:
        channels: the model's C (1 or 3). image_size: the model's S.
        resize: if the file is not S x S, resize its shorter side and centre-crop (else error).
        convert: allow grayscale <-> RGB conversion when the file's channels differ (else error).
    Raises:
        EBMError: unreadable file, or channels/size that do not match and are not allowed to be fixed.
    """
    image_size = check_image_size(image_size)
    if channels not in (1, 3):
        raise EBMError(f"channels must be 1 or 3, got {channels!r}")
    p = Path(path)
    if not p.is_file():
        raise EBMError(f"image file {str(p)!r} does not exist")
    import warnings
    from PIL import Image
    try:
        with warnings.catch_warnings():
            # a picture past PIL's pixel limit (a "decompression bomb": a tiny PNG that decodes to
            # gigabytes) is refused in one line, and so is one in the warning band below it
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                size, file_c = im.size, (1 if im.mode in GRAY_MODES else 3)
            if file_c != channels and not convert:
                raise EBMError(f"{str(p)!r} has {file_c} channel(s) but the model takes {channels}; convert it "
                               f"to {'grey' if channels == 1 else 'RGB'}, or let ebmlab do it: --convert "
                               f"(ebmlab inpaint) / convert=True")
            if size != (image_size, image_size) and not resize:
                raise EBMError(f"{str(p)!r} is {size[0]}x{size[1]} but the model takes {image_size}x{image_size}; "
                               f"resize it, or let ebmlab scale its shorter side to {image_size} and centre-crop: "
                               "--resize (ebmlab inpaint) / resize=True")
            a, _ = decode_image(p, image_size if resize else None, channels)
    except EBMError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise EBMError(f"image {str(p)!r} is too large to decode safely (more than {Image.MAX_IMAGE_PIXELS} "
                       "pixels: a decompression bomb?); shrink it first") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise EBMError(f"cannot read image {str(p)!r} ({why})") from e
    return torch.from_numpy(a.astype(np.float32))[None]


def save_labelled_row(x: torch.Tensor, labels: Sequence[str], path: str | os.PathLike,
                      scaling: Scaling | None = None, tile_px: int = 160) -> Path:
    """Images x [K, C, H, W] side by side, each under its label ("original | masked | filled"), at a
    readable size: each tile ``tile_px`` pixels wide (nearest-neighbour zoom, so pixels stay crisp).

    Scale as in ``save_grid_png``. Returns the path written."""
    if x.ndim != 4 or x.shape[0] != len(labels) or x.shape[0] == 0:
        raise EBMError(f"save_labelled_row needs [K, C, H, W] with one label per image, got {tuple(x.shape)} "
                       f"and {len(labels)} labels")
    from PIL import Image, ImageDraw, ImageFont
    a = _to_uint8(x, scaling)                                   # [K, C, H, W]
    k, c, h, w = a.shape
    f = max(1, math.ceil(tile_px / max(h, w)))
    tiles = a.repeat(f, axis=2).repeat(f, axis=3)
    th, tw, pad, head = h * f, w * f, 8, 28
    mode = "L" if c == 1 else "RGB"                             # a grey model's picture stays grey
    canvas = Image.new(mode, (k * (tw + pad) + pad, th + head + pad), "white")
    draw = ImageDraw.Draw(canvas)
    try:
        font = ImageFont.load_default(size=16)
    except TypeError:                       # Pillow < 10.1: the default bitmap font has no size
        font = ImageFont.load_default()
    for i, label in enumerate(labels):
        tile = tiles[i]
        img = Image.fromarray(np.ascontiguousarray(tile[0] if c == 1 else tile.transpose(1, 2, 0)))
        x0 = pad + i * (tw + pad)
        canvas.paste(img.convert(mode), (x0, head))
        width = draw.textlength(label, font=font)
        draw.text((x0 + (tw - width) / 2, 5), label, fill="black", font=font)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_with(out, lambda tmp: canvas.save(tmp, format="PNG"))
