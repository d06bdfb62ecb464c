"""Binary data {0, 1}^d: detection, the check of data declared binary, and the built-in binarised digits.

A binary set is stored as float32 vectors [N, d] of 0/1 (binary images (N, C, H, W) are flattened,
their shape kept in ``describe["image_shape"]`` so samples can be drawn as pictures). Inside the model
nothing is rescaled: chains move on {0, 1}^d with the discrete samplers.
"""
from __future__ import annotations

import numpy as np
import torch

from ebmlab.errors import EBMError

# the built-in sets: sklearn's 8x8 digits (pixels 0..16) thresholded at the middle of the range, and
# the same pooled 2x2 (max) to 4x4 = 16 bits, small enough for an exact likelihood by enumeration
BINARY_DIGITS = ("digits-binary", "digits-binary-4x4")
DIGITS_THRESHOLD = 8   # pixel > 8 (of 0..16) is on


def is_binary(x: torch.Tensor) -> bool:
    """Whether every value of x is exactly 0 or 1."""
    return bool(((x == 0) | (x == 1)).all())


def check_binary_data(x: torch.Tensor, where: str) -> None:
    """EBMError naming the first value that is not 0 or 1 and its index (row, then coordinates)."""
    bad = ~((x == 0) | (x == 1))
    if bool(bad.any()):
        flat = int(bad.reshape(-1).nonzero()[0, 0])
        idx = np.unravel_index(flat, tuple(x.shape))
        value = x.reshape(-1)[flat].item()
        raise EBMError(f"{where}: data declared binary has a value other than 0/1: {value!r} at index "
                       f"{tuple(int(i) for i in idx)} (row {int(idx[0])})")


def flatten_binary(x: torch.Tensor) -> tuple[torch.Tensor, list[int] | None]:
    """(float32 [N, d], the image shape [C, H, W] or None): binary images become vectors."""
    shape = list(x.shape[1:]) if x.ndim == 4 else None
    return x.reshape(x.shape[0], -1).float(), shape


def digits_binary(split: str, pooled: bool) -> torch.Tensor:
    """Binarised sklearn digits of ``split`` as float [N, 64] (or [N, 16] pooled 2x2 by max)."""
    from ebmlab.data.images import load_digits_uint8
    x = (load_digits_uint8(split).float() > DIGITS_THRESHOLD).float()      # [N, 1, 8, 8]
    if pooled:
        x = torch.nn.functional.max_pool2d(x, 2)
    return x.reshape(x.shape[0], -1)
