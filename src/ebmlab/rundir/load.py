"""``ebmlab.load``: a run directory's trained model as an ``nn.Module``."""
from __future__ import annotations

from pathlib import Path

import torch

from ebmlab.rundir.build import build_model_from_run


def load(run_dir: str | Path, device: str | torch.device = "cpu"):
    """Load the trained model of a run directory as an ``nn.Module`` (``EnergyModel`` or a composite).

    Reads config.json, data.json and the newest checkpoint's model.safetensors; nothing else.
    """
    return build_model_from_run(Path(run_dir), device=device)
