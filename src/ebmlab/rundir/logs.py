"""A run directory's two logs, one JSON object a line (JSON Lines):

    DIR/metrics.jsonl   one row per logged step: {"step": int, <stat>: float, ..., "lr", "seconds"}
    DIR/events.jsonl    things that happened to the run: {"event": "diverged" | "rollback" | "restart", ...}

Rows are appended with one ``write`` each, so a kill can tear at most the last line; readers stop
there. A resumed run first drops the metrics rows past the checkpoint it restored
(``truncate_metrics``), so its log matches an uninterrupted run's. With ``run_dir`` None (training
in memory) every writer does nothing.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ebmlab.atomic import atomic_write_text
from ebmlab.rundir.layout import open_for_append

METRICS_FILE = "metrics.jsonl"
EVENTS_FILE = "events.jsonl"


def append_metrics(run_dir: Path | None, row: dict[str, Any]) -> None:
    """Append one metrics row (must hold "step") to ``run_dir/metrics.jsonl``."""
    _append(run_dir, METRICS_FILE, row)


def append_event(run_dir: Path | None, row: dict[str, Any]) -> None:
    """Append one event (a dict with "event") to ``run_dir/events.jsonl``."""
    _append(run_dir, EVENTS_FILE, row)


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The metrics rows in order; [] without a log. Stops at a torn last line (a kill mid-write)."""
    path = Path(run_dir) / METRICS_FILE
    return [json.loads(line) for line in _complete_rows(path)] if path.exists() else []


def truncate_metrics(run_dir: Path | None, step: int) -> None:
    """Drop the metrics rows past ``step`` (and a torn last line), rewriting the file atomically."""
    if run_dir is None:
        return
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return
    keep = [line for line in _complete_rows(path) if json.loads(line)["step"] <= step]
    atomic_write_text(path, "".join(line + "\n" for line in keep))


def _complete_rows(path: Path) -> list[str]:
    """The lines of a JSONL log up to the first one that is not a whole row with a "step"."""
    rows = []
    for line in path.read_text().splitlines():
        try:
            json.loads(line)["step"]
        except (ValueError, KeyError, TypeError):
            break                      # a torn last line from a kill mid-write
        rows.append(line)
    return rows


def _append(run_dir: Path | None, name: str, row: dict[str, Any]) -> None:
    if run_dir is not None:
        with open_for_append(Path(run_dir) / name) as fh:      # never through a symlink
            fh.write(json.dumps(row) + "\n")
