"""TensorBoard event files of a run: ``DIR/tb/events.out.tfevents.*``, read by ``tensorboard --logdir DIR``.

They hold the same scalars as ``metrics.jsonl`` (one tag per key, ``metrics/<key>``, at the row's
step) and the run's pictures (``pictures/plot`` or ``pictures/samples``) each time they are redrawn.

On by default whenever the ``tensorboard`` package is importable (``pip install ebmlab[tensorboard]``):
writing costs a few hundred bytes a row and nothing when nobody looks, while a flag nobody knows
about would leave the files missing exactly when someone wants them. ``--no-tensorboard`` (config
``tensorboard = false``) turns it off; ``--tensorboard`` without the package is an error.

Resume: event files are append-only, so a resumed run (or a divergence rollback) opens a new file
with ``purge_step`` = the restored step + 1. TensorBoard's readers then drop every event of the
older files at or past that step (its "orphaned data" purge), so the rows logged after the last
checkpoint by the killed process are not shown twice — the same rows ``truncate_metrics`` drops
from metrics.jsonl.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from ebmlab.errors import EBMError

TB_DIR = "tb"


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package can be imported (without importing it)."""
    return importlib.util.find_spec("tensorboard") is not None


def require_tensorboard() -> None:
    """EBMError naming the extra when TensorBoard logging is asked for and the package is missing."""
    if not tensorboard_available():
        raise EBMError("--tensorboard needs the tensorboard package: pip install 'ebmlab[tensorboard]' "
                       "(or train with --no-tensorboard)")


class TensorBoardLog:
    """A run's TensorBoard writer, opened lazily at the first write (so a run that logs nothing writes no file).

    Args:
        run_dir: the run directory; event files go to ``run_dir/tb``.
        purge_step: drop older files' events at steps >= this (a resumed run: restored step + 1).
    """

    def __init__(self, run_dir: Path, purge_step: int | None = None) -> None:
        self.log_dir = Path(run_dir) / TB_DIR
        self._purge = purge_step
        self._writer: Any = None

    def _open(self) -> Any:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter
            # flush_secs: the files follow the run within a few seconds; checkpoints flush too
            self._writer = SummaryWriter(str(self.log_dir), purge_step=self._purge, flush_secs=10)
        return self._writer

    def restart_at(self, step: int) -> None:
        """The run went back to ``step`` (resume, rollback): later events come from a new file that purges the old ones past it."""
        self.close()
        self._purge = step + 1

    def scalars(self, row: dict[str, Any]) -> None:
        """One metrics row ({"step": int, key: float, ...}) as scalars ``metrics/<key>`` at its step."""
        w = self._open()
        step = int(row["step"])
        for k, v in row.items():
            if k != "step" and isinstance(v, (int, float)):
                w.add_scalar(f"metrics/{k}", float(v), step)

    def image(self, tag: str, png: Path, step: int) -> None:
        """The picture file ``png`` (as written for the run) as image ``pictures/<tag>`` at ``step``."""
        import numpy as np
        from PIL import Image
        with Image.open(png) as im:
            pixels = np.asarray(im.convert("RGB"))          # [H, W, 3] uint8
        self._open().add_image(f"pictures/{tag}", pixels, step, dataformats="HWC")

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def open_tensorboard(run_dir: Path | None, enabled: bool) -> TensorBoardLog | None:
    """The run's TensorBoard log, or None (no run directory, turned off, or the package missing)."""
    if run_dir is None or not enabled or not tensorboard_available():
        return None
    return TensorBoardLog(run_dir)
