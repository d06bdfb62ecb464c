"""The built-in ``faces`` set: the 100 face crops of scikit-image's ``data.lfw_subset()``.

``lfw_subset`` ships inside the scikit-image wheel (nothing is downloaded): 200 grayscale 25x25 crops
from Labeled Faces in the Wild (Huang et al. 2007), floats in [0, 1]; the first 100 are faces, the last
100 are non-faces (patches of the same photos without a face). ebmlab keeps only the faces.

Storage: uint8 [N, 1, 25, 25], ``round(255 * x)`` (the floats are not exact multiples of 1/255; the
rounding moves a pixel by at most 0.5/255), scaled to [-1, 1] by ``Scaling.from_range(0, 255)``.

The split is fixed and does not depend on any seed: face i (0..99, in ``lfw_subset`` order) is
**held out when i % 5 == 4** (i = 4, 9, ..., 99: 20 faces), the other 80 are the training set.
Every fifth face, rather than the last 20, so that the held-out faces are spread over the set's order.

scikit-image is an optional dependency (``pip install ebmlab[faces]``); without it ``--data faces``
is one EBMError line naming the extra.
"""
from __future__ import annotations

import numpy as np
import torch

from ebmlab.errors import EBMError

N_FACES = 100                 # lfw_subset(): rows 0..99 are faces, 100..199 non-faces
FACE_SIZE = 25
HELD_OUT_EVERY = 5            # face i is held out when i % 5 == 4
FACES_RANGE = (0.0, 255.0)
MISSING = "--data faces needs scikit-image, which ships the face images: pip install ebmlab[faces]"


def lfw_subset() -> np.ndarray:
    """scikit-image's ``lfw_subset()``: float64 [200, 25, 25] in [0, 1] (faces first, then non-faces).

    Raises EBMError (naming the ``faces`` extra) when scikit-image is not installed."""
    try:
        from skimage import data as skdata
    except ImportError:
        raise EBMError(MISSING) from None
    return np.asarray(skdata.lfw_subset())


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Images in [0, 1] [..., H, W] -> uint8 0..255 (rounded)."""
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def held_out_mask() -> np.ndarray:
    """bool [100]: True for the 20 held-out faces (index % 5 == 4)."""
    return np.arange(N_FACES) % HELD_OUT_EVERY == HELD_OUT_EVERY - 1


def load_faces_uint8(split: str = "train") -> torch.Tensor:
    """The faces as uint8 [N, 1, 25, 25]: ``"train"`` (80), ``"test"`` (the 20 held out) or ``"all"`` (100)."""
    if split not in ("train", "test", "all"):
        raise EBMError(f"unknown faces split {split!r}; choose 'train', 'test' or 'all'")
    faces = to_uint8(lfw_subset()[:N_FACES])[:, None]
    if split != "all":
        keep = held_out_mask() if split == "test" else ~held_out_mask()
        faces = faces[keep]
    return torch.from_numpy(np.ascontiguousarray(faces))


def load_non_faces_uint8() -> torch.Tensor:
    """The 100 non-face patches of ``lfw_subset`` as uint8 [100, 1, 25, 25] (for face-vs-non-face checks)."""
    return torch.from_numpy(np.ascontiguousarray(to_uint8(lfw_subset()[N_FACES:])[:, None]))
