"""What ``ebmlab runs [DIR]`` does: list the run directories under a folder. Reads only, never writes.

One row per run directory (a folder with ebmlab's marker, or an older run with data.json and
config.json), found by walking DIR without entering a run (its checkpoints are not runs):

    path     the run directory
    kind     "run" or "composite"
    objective  the run's training objective (cd, dsm, ssm, nce, drl, conditional, jem; config.json);
             None for a composite
    status   "training" (another process holds the run's lock: ebmlab.rundir.lock), "finished"
             (the newest checkpoint is at the configured step count), "diverged" (stopped by the
             divergence guard, events.jsonl, with no checkpoint written since: resuming repeats it
             unless its settings change), "partial" (stopped or killed before the end: ``ebmlab
             train --resume`` continues it), "damaged" (its files cannot be read; ``error`` says why)
             or "-" for a composite (it is never trained)
    step     the newest checkpoint's step (0 without one); ``total`` the configured steps
    metric   the last metrics.jsonl row's key number: "gap" (f(data) - f(negatives)), else "loss"
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from ebmlab.errors import EBMError
from ebmlab.rundir.checkpoint import latest_checkpoint, read_json
from ebmlab.rundir.layout import CONFIG, DATA, EVENTS, METRICS, read_marker
from ebmlab.rundir.lock import lock_holder
from ebmlab.rundir.logs import read_metrics

# the metrics.jsonl column shown, first present wins: gap tracks how well the chains match the data
KEY_METRICS = ("gap", "loss")
# the trainer's bookkeeping columns, never the key number
_BOOKKEEPING = ("step", "lr", "seconds")


def list_runs(root: str | os.PathLike = "runs") -> list[dict[str, Any]]:
    """One dict per run directory under ``root`` (``root`` itself included), sorted by path.

    Keys: ``path``, ``kind``, ``objective``, ``status``, ``step``, ``total``, ``metric`` (name or None),
    ``value`` (float or None), ``error`` (None unless the status is "damaged").
    """
    root = Path(root)
    if not root.is_dir():
        raise EBMError(f"{str(root)!r} is not a folder (give the folder that holds your run directories)")
    rows = []
    for here, dirs, _ in os.walk(root):           # os.walk does not follow symbolic links to folders
        d = Path(here)
        kind = _run_kind(d)
        if kind is None:
            dirs.sort()
            continue
        dirs.clear()                              # a run's subfolders (checkpoints/) are not runs
        rows.append(describe_run(d, kind))
    return sorted(rows, key=lambda r: r["path"])


def _run_kind(d: Path) -> str | None:
    marker = read_marker(d)
    if marker is not None:
        return marker["kind"]
    if (d / DATA).is_file() and (d / CONFIG).is_file():      # written before the marker existed
        return "run"
    return None


def describe_run(d: Path, kind: str) -> dict[str, Any]:
    """The listing row of one run directory ``d`` (``kind``: "run" or "composite")."""
    row: dict[str, Any] = {"path": str(d), "kind": kind, "objective": None, "status": "-", "step": None, "total": None,
                           "metric": None, "value": None, "error": None}
    if kind == "composite":
        return row
    try:
        config = read_json(d / CONFIG, "run configuration (config.json)")
        total = config.get("steps") if isinstance(config, dict) else None
        ck = latest_checkpoint(d)
        step = int(ck.name.split("-")[1]) if ck is not None else 0
        metrics = read_metrics(d) if (d / METRICS).is_file() else []
        diverged_at = _diverged_at(d)
    except (EBMError, OSError, ValueError, UnicodeDecodeError) as e:
        row.update(status="damaged", error=" ".join(str(e).split()))
        return row
    objective = config.get("objective", "cd") if isinstance(config, dict) else None
    row.update(step=step, total=total if isinstance(total, int) else None,
               objective=objective if isinstance(objective, str) else None)
    if lock_holder(d) is not None:
        row["status"] = "training"
    elif row["total"] is not None and step >= row["total"]:
        row["status"] = "finished"
    else:
        # a divergence after the newest checkpoint: the run stopped there and nothing was trained since
        row["status"] = "diverged" if diverged_at is not None and diverged_at > step else "partial"
    if metrics:
        row["metric"], row["value"] = _key_metric(metrics[-1])
    return row


def _diverged_at(d: Path) -> int | None:
    """The step of the last event of events.jsonl when it is a divergence that stopped the run, else None
    (a rollback, or a restart after it, means training went on)."""
    path = d / EVENTS
    if not path.is_file():
        return None
    last = None
    for line in path.read_text().splitlines():
        try:
            last = json.loads(line)
        except ValueError:          # a torn last line (a kill mid-write)
            continue
    if isinstance(last, dict) and last.get("event") == "diverged" and isinstance(last.get("step"), int):
        return last["step"]
    return None


def _key_metric(last: dict[str, Any]) -> tuple[str | None, float | None]:
    names = [k for k in KEY_METRICS if k in last] + [k for k in last if k not in _BOOKKEEPING]
    for name in names:
        if isinstance(last[name], (int, float)):
            return name, float(last[name])
    return None, None


def format_rows(rows: list[dict[str, Any]]) -> list[str]:
    """The listing as aligned text lines: path, kind, objective, status, step/total, key metric."""
    if not rows:
        return []
    width = max(len(r["path"]) for r in rows)
    lines = []
    for r in rows:
        steps = "-" if r["step"] is None else f"{r['step']}/{r['total'] if r['total'] is not None else '?'}"
        metric = f"{r['metric']} {r['value']:+.4g}" if r["metric"] is not None else ""
        if r["error"]:
            metric = r["error"]
        objective = r.get("objective") or "-"
        lines.append(f"{r['path']:<{width}}  {r['kind']:<9}  {objective:<11}  {r['status']:<8}  {steps:>13}  "
                     f"{metric}".rstrip())
    return lines


def to_json(rows: list[dict[str, Any]]) -> str:
    """The listing as a JSON array (a nan or infinite value becomes null: JSON has neither)."""
    clean = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()} for r in rows]
    return json.dumps(clean, indent=2)
