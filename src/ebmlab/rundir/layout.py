"""The run directory's file names, the marker that says "ebmlab made this folder", and safe opening.

Layout::

    DIR/.ebmlab-run          marker: {"format_version": 1, "kind": "run" | "composite"}, written at creation
    DIR/.ebmlab-lock         the training process's flock (ebmlab.rundir.lock)
    DIR/config.json          the RunConfig
    DIR/data.json            data description: kind, shape, scaling, support box (composites: the spec)
    DIR/metrics.jsonl        one JSON row per logged step
    DIR/metrics.csv          the same rows as a CSV table
    DIR/tb/                  TensorBoard event files (rundir.tensorboard)
    DIR/events.jsonl         divergences, rollbacks, restarts
    DIR/*.png                pictures (plot.png, samples.png, curves.png, traces.png, energy_hist.png)
    DIR/checkpoints/         LATEST + step-NNNNNNN/ folders (ebmlab.rundir.checkpoint)

``--force`` deletes a folder only when ``prepare_run_dir`` can tell ebmlab made it: the marker is
there with a format this ebmlab knows. Folders written before the marker existed (older ebmlab) are
accepted when they hold data.json and nothing but the files listed above (and the temporary files
of an interrupted atomic write); anything else in the folder means it may be the user's, and
``--force`` is refused with the entries that would have been lost.
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
from pathlib import Path
from typing import IO, Any

from ebmlab.atomic import atomic_write_text
from ebmlab.errors import EBMError
from ebmlab.rundir.lock import LOCK_FILE, forget, lock_holder

MARKER = ".ebmlab-run"
MARKER_FORMAT = 1
RUN_KINDS = ("run", "composite")
CONFIG = "config.json"
DATA = "data.json"
METRICS = "metrics.jsonl"
EVENTS = "events.jsonl"
CHECKPOINTS = "checkpoints"
LATEST = "LATEST"
PICTURES = ("plot.png", "samples.png", "samples-trajectory.png", "curves.png", "traces.png", "energy_hist.png")
# every name ebmlab itself writes at the top of a run directory
RUN_FILES = (MARKER, LOCK_FILE, CONFIG, DATA, METRICS, EVENTS, CHECKPOINTS, *PICTURES, "metrics.csv", "tb")
# the temporary file of an atomic write killed half-way: ".NAME.<random>.tmp" (ebmlab.atomic)
_TEMP = re.compile(r"^\.(.+)\.[A-Za-z0-9_]+\.tmp$")
_CHECKPOINT_ENTRY = re.compile(r"^(LATEST|step-\d{7,}|\.step-\d{7,}\.[A-Za-z0-9_]+|\.LATEST\.[A-Za-z0-9_]+\.tmp)$")


def write_marker(run_dir: Path, kind: str) -> None:
    """Mark ``run_dir`` as made by ebmlab (``kind``: "run" or "composite")."""
    if kind not in RUN_KINDS:
        raise ValueError(f"kind must be one of {RUN_KINDS}, got {kind!r}")
    atomic_write_text(Path(run_dir) / MARKER, json.dumps({"format_version": MARKER_FORMAT, "kind": kind}))


def read_marker(run_dir: Path) -> dict[str, Any] | None:
    """The marker's contents, or None when there is no valid marker (absent, a link, not ours)."""
    p = Path(run_dir) / MARKER
    try:
        st = os.lstat(p)
        if not stat.S_ISREG(st.st_mode) or st.st_size > 4096:
            return None
        m = json.loads(p.read_text())
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(m, dict) or m.get("format_version") != MARKER_FORMAT or m.get("kind") not in RUN_KINDS:
        return None
    return m


def _is_legacy_run(entries: list[Path]) -> bool:
    """A run written by ebmlab before the marker: data.json and nothing but ebmlab's own files."""
    names = {p.name for p in entries}
    if DATA not in names:
        return False
    for p in entries:
        if not _known(p):
            return False
        if p.is_symlink():
            return False
        if p.name == CHECKPOINTS:
            if not p.is_dir() or not all(_CHECKPOINT_ENTRY.match(q.name) for q in p.iterdir()):
                return False
        elif p.name == "tb":           # TensorBoard's event files and nothing else
            if not p.is_dir() or not all(q.name.startswith("events.out.tfevents.") for q in p.iterdir()):
                return False
        elif p.is_dir():
            return False
    return True


def _known(p: Path) -> bool:
    t = _TEMP.match(p.name)
    return p.name in RUN_FILES or bool(t and t.group(1) in RUN_FILES)


def _describe(entries: list[Path], limit: int = 3) -> str:
    """"3 entries (src/, notes.txt, …)": what would be lost, the entries ebmlab never writes first."""
    ordered = sorted(entries, key=lambda p: (_known(p), p.name))
    shown = [p.name + ("/" if p.is_dir() and not p.is_symlink() else "") for p in ordered[:limit]]
    more = ", …" if len(entries) > limit else ""
    return f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'} ({', '.join(shown)}{more})"


def prepare_run_dir(out: Path, force: bool, kind: str = "run") -> None:
    """Create the run directory ``out`` (with its marker); an existing non-empty one only with ``force``.

    ``force`` replaces only a folder ebmlab made (see the module docstring) that no other process is
    training; everything else is refused in one line naming what would have been lost.
    """
    out = Path(out)
    if out.is_symlink():
        raise EBMError(f"--out {str(out)!r} is a symbolic link; give the real folder")
    if out.exists() and not out.is_dir():
        raise EBMError(f"--out {str(out)!r} exists and is not a directory")
    entries = list(out.iterdir()) if out.exists() else []
    if entries:
        ours = read_marker(out) is not None or _is_legacy_run(entries)
        if not force and not ours:
            # --resume and --force both refuse a folder ebmlab did not make: advise neither
            raise EBMError(f"{str(out)!r} already exists and is not an ebmlab run directory (it holds {_describe(entries)}); "
                           "choose another --out (ebmlab never replaces a folder it did not make)")
        if not force:
            resume = "use --resume to continue it or " if kind == "run" else ""     # a composite is never trained
            raise EBMError(f"run directory {str(out)!r} already exists; {resume}use --force to replace it")
        if not ours:
            raise EBMError(f"{str(out)!r} holds {_describe(entries)} and no {MARKER} marker: it is not an "
                           "ebmlab run directory; refusing to replace it even with --force")
        pid = lock_holder(out)
        if pid is not None:
            raise EBMError(f"{out} is being trained by process {pid or '?'}; refusing to replace it "
                           "(wait for it to finish or stop it)")
        forget(out)
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, kind)


def refuse_symlinks(run_dir: Path) -> None:
    """EBMError if a file ebmlab writes into ``run_dir`` is a symbolic link (writes could land outside the run)."""
    for name in (CHECKPOINTS, METRICS, EVENTS, CONFIG, DATA, LOCK_FILE):
        p = Path(run_dir) / name
        if p.is_symlink():
            raise EBMError(f"{p} is a symbolic link; ebmlab writes into it and refuses to follow links out "
                           "of a run directory (replace the link with the real file or folder)")


def open_for_append(path: str | os.PathLike) -> IO[str]:
    """Open ``path`` for appending text without following a symbolic link at its last component.

    ``O_NOFOLLOW``: a ``metrics.jsonl`` replaced by a link to a file elsewhere (or a dangling link)
    is refused instead of appended to (or created) outside the run.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as e:
        if e.errno == errno.ELOOP:         # what O_NOFOLLOW answers for a link
            raise EBMError(f"{path} is a symbolic link; refusing to append to it (writes would land "
                           "outside the run directory)") from None
        raise
    return os.fdopen(fd, "a")
