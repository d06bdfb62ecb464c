"""``ebmlab.load``: a run directory's trained model as an ``nn.Module``."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ebmlab.rundir.build import build_model_from_run
from ebmlab.rundir.export import is_export, load_export


def load(run_dir: str | Path, device: str | torch.device = "cpu", network: nn.Module | None = None,
         trust_code: bool = False) -> nn.Module:
    """Load the trained model of a run directory (or of an ``ebmlab export`` file: the .safetensors or
    its .json card) as an ``nn.Module`` in eval mode.

    Returns an ``EnergyModel``, a ``ConditionalEnergyModel`` (runs trained with labels) or a composed
    model (``ebmlab compose``). Reads config.json, data.json and the newest checkpoint's
    model.safetensors; nothing is ever unpickled.

    A run of your own network: pass ``network=YourNet(...)`` (an instance built like the trained one;
    its weights are replaced by the run's, nothing is imported), or ``trust_code=True`` to import the
    class recorded in config.json and build it with the recorded constructor arguments — that runs
    the module's code, so only for code you trust. Weights whose names or shapes differ from
    ``network`` are a one-line ``EBMError`` naming the first mismatches.
    """
    if is_export(Path(run_dir)):
        return load_export(run_dir, device=device, network=network, trust_code=trust_code)[0]
    return build_model_from_run(Path(run_dir), device=device, network=network, trust_code=trust_code)
