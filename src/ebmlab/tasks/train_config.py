"""What ``ebmlab train --print-config`` does: the RunConfig a run would train with, writing nothing.

The same resolution as ``ebmlab.training.api.start_run`` (preset picked from the data unless named,
then a ``--config`` file's settings, then the flags) or, with ``--resume``, the run's own
``config.json`` with a new ``--steps``; the data are read (the preset follows their kind and shape)
but no run directory, lock or log is touched.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ebmlab.rundir.checkpoint import read_json
from ebmlab.rundir.config import RunConfig
from ebmlab.training.api import config_device, data_spec, dataset_from, extended_config, resolve_labels_path
from ebmlab.training.presets import resolve_config


def resolved_config(data: str | None, settings: dict[str, Any], resume: str | None = None) -> RunConfig:
    """The resolved RunConfig of ``ebmlab train --data DATA <settings>`` (or ``--resume RUN``).

    Args:
        data: the ``--data`` value (built-in name, .npy file or image folder); ignored with ``resume``.
        settings: RunConfig keys from a ``--config`` file and the flags (flags last; None = not given).
        resume: a run directory: its config.json, with ``settings["steps"]`` when given.
    """
    if resume is not None:
        config = RunConfig.from_dict(read_json(Path(resume) / "config.json", "run configuration (config.json)"))
        steps = settings.get("steps")
        return extended_config(Path(resume), config, steps) if steps is not None else config
    spec = data_spec(data)
    settings = dict(settings)
    resolve_labels_path(settings)                           # as start_run records it in config.json
    first = resolve_config(spec, dict(settings))            # validates the flags before any data is read
    config_device(first)
    config = resolve_config(spec, dict(settings), dataset=dataset_from(spec, first))
    return config.replace(device=str(config_device(config)))
