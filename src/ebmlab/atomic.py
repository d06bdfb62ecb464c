"""Atomic file writes: readers see the old file or the new one, never half of it.

The one writer used by checkpoints, plots, PNG grids and caches: a temporary file beside the target,
fsynced, renamed over it with ``os.replace``, then the folder fsynced. Files get the mode a plain
``open()`` would give (0666 & ~umask), not ``tempfile``'s 0600.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def current_umask() -> int:
    """The process umask (read from /proc where there is one: os.umask can only be read by setting it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def temp_file_beside(path: Path, prefix: str, suffix: str) -> tuple[int, str]:
    """``tempfile.mkstemp`` in ``path``'s folder, but with the mode a plain ``open()`` would give.

    mkstemp creates files 0600; renamed into place, a run directory would be unreadable to the
    group and others whatever the umask. Here the file gets 0666 & ~umask (0644 under umask 022).
    """
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=Path(path).parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    return fd, tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half of it.

    The file gets the mode ``open()`` would give (0666 & ~umask), not tempfile's 0600.
    """
    path = Path(path)
    fd, tmp = temp_file_beside(path, f".{path.name}.", ".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())
