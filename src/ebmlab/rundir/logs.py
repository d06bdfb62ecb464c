"""A run directory's logs, one JSON object a line (JSON Lines), and a CSV copy of the metrics:

    DIR/metrics.jsonl   one row per logged step: {"step": int, <stat>: float, ..., "lr", "seconds"}
    DIR/metrics.csv     the same rows as a table (spreadsheets, pandas.read_csv): one column per key,
                        in the order the keys first appear; a key a row lacks is an empty cell
    DIR/events.jsonl    things that happened to the run: {"event": "diverged" | "rollback" | "restart", ...}

metrics.jsonl is the record; metrics.csv is derived from it. A row is appended to the CSV when its
keys fit the CSV's header, otherwise (a new key, a missing or older CSV) the CSV is rewritten from
metrics.jsonl, so the two always hold the same rows. TensorBoard's copy is ``rundir.tensorboard``'s.

Rows are appended with one ``write`` each, so a kill can tear at most the last line; readers stop
there. A resumed run first drops the metrics rows past the checkpoint it restored
(``truncate_metrics``), so its log matches an uninterrupted run's. With ``run_dir`` None (training
in memory) every writer does nothing.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ebmlab.atomic import atomic_write_text
from ebmlab.rundir.layout import open_for_append

METRICS_FILE = "metrics.jsonl"
METRICS_CSV = "metrics.csv"
EVENTS_FILE = "events.jsonl"


def append_metrics(run_dir: Path | None, row: dict[str, Any]) -> None:
    """Append one metrics row (must hold "step") to ``run_dir/metrics.jsonl`` and ``metrics.csv``."""
    _append(run_dir, METRICS_FILE, row)
    if run_dir is not None:
        _append_csv(Path(run_dir), row)


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
    write_csv(Path(run_dir), [json.loads(line) for line in keep])


def read_csv(run_dir: Path) -> list[dict[str, str]]:
    """metrics.csv's rows as dicts of strings ({} cells left out); [] without the file."""
    path = Path(run_dir) / METRICS_CSV
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return [{k: v for k, v in r.items() if v != ""} for r in csv.DictReader(fh)]


def write_csv(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite ``run_dir/metrics.csv`` (atomically) from ``rows``: columns in first-seen key order."""
    columns: dict[str, None] = {}
    for r in rows:
        columns.update(dict.fromkeys(r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), restval="", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(Path(run_dir) / METRICS_CSV, buf.getvalue())


def _append_csv(run_dir: Path, row: dict[str, Any]) -> None:
    path = run_dir / METRICS_CSV
    header: list[str] = []
    if path.exists() and not path.is_symlink():
        with open(path, newline="") as fh:
            header = next(csv.reader(fh), [])
    if not header or not set(row) <= set(header):
        # a first row, a new key or a CSV older than its JSONL: rebuild from the record
        write_csv(run_dir, read_metrics(run_dir))
        return
    buf = io.StringIO()
    csv.DictWriter(buf, fieldnames=header, restval="", lineterminator="\n").writerow(row)
    with open_for_append(path) as fh:
        fh.write(buf.getvalue())


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
