"""A run directory's header: config.json and data.json, written once when the run starts.

Together with the newest checkpoint's weights they are everything ``ebmlab.load`` needs
(``rundir.build.build_model_from_run`` reads them back).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ebmlab.atomic import atomic_write_text
from ebmlab.rundir.checkpoint import FORMAT_VERSION
from ebmlab.rundir.config import RunConfig


def write_run_header(run_dir: Path, config: RunConfig, data_desc: dict[str, Any]) -> None:
    """config.json (the RunConfig) and data.json (``data_desc`` stamped with the checkpoint format version)."""
    config.save_json(run_dir / "config.json")
    atomic_write_text(run_dir / "data.json",
                      json.dumps({"format_version": FORMAT_VERSION, **data_desc}, indent=2))
