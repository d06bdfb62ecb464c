"""A chain trajectory figure with its steps labelled: one row per chain, one column per saved step,
"step t" written above each column (the figure of Nijkamp et al. 2019, Fig. 1: noise -> images).

Pillow only (its built-in bitmap font, so nothing is looked up on the system); written atomically.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ebmlab.atomic import atomic_write_with
from ebmlab.errors import EBMError

# tiles are upscaled (nearest neighbour) to at least this many pixels, so a 25x25 face or an 8x8
# digit is large enough for the label above it to fit
MIN_TILE = 48
HEADER = 14          # pixels of the label row (Pillow's default bitmap font is ~11 px high)


def save_labelled_trajectory_png(frames: torch.Tensor | Sequence[torch.Tensor], steps: Sequence[int],
                                 path: str | os.PathLike, padding: int = 2, pad_value: int = 128) -> Path:
    """Write frames [T, N, C, H, W] (model scale [-1, 1]; C = 1 or 3) as rows = chains, columns = time,
    with ``steps[t]`` written above column t. Returns the path written."""
    from PIL import Image, ImageDraw

    if not isinstance(frames, torch.Tensor):
        frames = torch.stack([f.detach().cpu() for f in frames]) if len(frames) else torch.empty(0)
    if frames.ndim != 5 or frames.shape[0] == 0 or frames.shape[1] == 0 or frames.shape[2] not in (1, 3):
        raise EBMError(f"a trajectory figure needs frames [T, N, 1 or 3, H, W], got shape {tuple(frames.shape)}")
    t, n, c, h, w = frames.shape
    if len(steps) != t:
        raise EBMError(f"a trajectory figure needs one step label per frame: {len(steps)} labels, {t} frames")
    f = max(1, -(-MIN_TILE // max(h, w)))
    a = ((frames.detach().float().nan_to_num(0.0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    a = a.repeat(f, axis=3).repeat(f, axis=4)
    th, tw = h * f, w * f
    H = HEADER + n * (th + padding) + padding
    W = t * (tw + padding) + padding
    canvas = np.full((H, W, 3), 255, dtype=np.uint8)
    canvas[HEADER:] = pad_value
    for j in range(t):
        for i in range(n):
            y0, x0 = HEADER + padding + i * (th + padding), padding + j * (tw + padding)
            tile = a[j, i].transpose(1, 2, 0)
            canvas[y0:y0 + th, x0:x0 + tw] = tile if c == 3 else tile.repeat(3, axis=2)
    im = Image.fromarray(canvas)
    draw = ImageDraw.Draw(im)
    for j, s in enumerate(steps):
        draw.text((padding + j * (tw + padding) + 2, 1), f"t={int(s)}", fill=(0, 0, 0))
    out = Path(path)
    return atomic_write_with(out, lambda tmp: im.save(tmp, format="PNG"))
