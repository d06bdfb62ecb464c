"""Atomic file writes: readers see the old file or the new one, never half of it.

The one writer used by checkpoints, plots, PNG grids and caches: a temporary file beside the target,
fsynced, renamed over it with ``os.replace``, then the folder fsynced. Files get the mode a plain
``open()`` would give (0666 & ~umask), not ``tempfile``'s 0600.

``atomic_write_bytes`` / ``atomic_write_text`` write data we hold; ``atomic_write_with`` lets another
library write the temporary file by path (matplotlib ``savefig``, PIL ``save``, safetensors
``save_file``); ``replace_atomically`` is the one rename, also used for whole checkpoint folders.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def fsync_dir(path: Path) -> None:
    """fsync a folder, so that a rename or a new entry in it is on disk (a no-op where folders can't be opened)."""
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


def fsync_file(path: Path) -> None:
    """Flush a file written by someone else (a library that took only its path) to disk."""
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def replace_atomically(src: Path, dst: Path) -> None:
    """Rename ``src`` (a file or a folder, already fsynced) over ``dst``, then fsync the folder so the
    rename itself survives a power cut. The only ``os.replace`` in ebmlab; called by name at call time,
    so a test that patches ``os.replace`` sees every atomic write."""
    os.replace(src, dst)
    fsync_dir(Path(dst).parent)


def atomic_write_with(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Write ``path`` atomically through ``write(tmp)``, which must write the whole file at ``tmp``.

    For files another library writes by path: ``write`` gets a temporary path in the same folder
    (same file system, so the rename is atomic); the result is given open()'s mode (some writers,
    safetensors, create 0600 files), fsynced and renamed over ``path``. On any error the temporary
    file is removed and ``path`` is untouched. Returns ``path``.
    """
    path = Path(path)
    fd, name = temp_file_beside(path, f".{path.name}.", ".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~current_umask())
        fsync_file(tmp)
        replace_atomically(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


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
        replace_atomically(Path(tmp), path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """``atomic_write_bytes`` of ``text`` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode())
