"""``DataSet``: the train/test split every data source produces and the trainer reads.

Its own module so that the sources that build one (``sources`` for files and built-in sets, ``stream`` for a
user's Dataset and for large ``.npy`` files read from disk) can import it without importing each other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ebmlab.data.scaling import Scaling


@dataclass
class DataSet:
    """train: [N, *event]; test: [M, *event]; ``describe`` is JSON-able and goes into data.json.

    **Stored scale.** Image sets keep the values of their source — uint8 for image folders (0..255),
    the built-in digits (0..16) and uint8 ``.npy`` files, float32 for other ``.npy`` files — and
    ``scaling`` maps them to the model scale [-1, 1]. Read them through ``to_model``, one batch at a
    time (the trainer does this per step): a CelebA-sized folder then costs 12 KB per 64x64 RGB
    image instead of 49 KB as float32 (uint8 images passed to the Python API too, mapped from 0..255).
    Vector sets and float arrays passed to the Python API are stored as the model sees them
    (``scaling`` None, ``to_model`` returns its argument).

    Labelled data (conditional models, JEM) also has ``y_train`` [N] / ``y_test`` [M] (int64 in
    0..n_classes-1), split with the same permutation as the points.
    """

    train: torch.Tensor
    test: torch.Tensor
    kind: str                        # "vector" or "image"
    name: str
    describe: dict[str, Any] = field(default_factory=dict)
    y_train: torch.Tensor | None = None
    y_test: torch.Tensor | None = None
    n_classes: int | None = None
    scaling: Scaling | None = None   # stored scale -> model scale; None: stored in the model scale

    @property
    def event_shape(self) -> tuple[int, ...]:
        return tuple(self.train.shape[1:])

    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        """Stored values (a batch of ``train``/``test``, on any device) -> the float32 model scale.

        Elementwise, so converting a batch gives bit for bit the values a whole-set conversion gives.
        """
        return x if self.scaling is None else self.scaling.to_model(x)
