"""One writer per run directory: an exclusive ``flock`` on ``DIR/.ebmlab-lock``.

The training process holds the lock from the moment it creates or resumes a run until ``fit``
returns; a second ``ebmlab train --resume DIR`` (or ``--force`` over it) is refused in one line
naming the holder's PID, and ``plot`` (which writes pictures into the run) refuses too.

Why ``flock`` and not a PID file: the kernel drops an flock when the last descriptor of its open
file is closed, which includes the holder being killed (SIGKILL, OOM, power loss of the process).
A lock left by a dead process is therefore free without any staleness guess; the PID written in
the file is only there to name the holder in the error message.

Within one process the lock is re-entrant (a process may build several Trainers of one run, as
tests and notebooks do); it guards against other processes, which is where the damage came from
(two ``--resume`` at once pruning each other's temporary folders and interleaving metrics rows).
"""
from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from ebmlab.errors import EBMError

LOCK_FILE = ".ebmlab-lock"


class _Held:
    """One open, flocked lock file of this process and how many RunLock handles share it."""

    def __init__(self, fd: int) -> None:
        self.fd, self.count = fd, 0


_HELD: dict[str, _Held] = {}        # resolved run folder -> this process's lock on it


def _key(run_dir: Path) -> str:
    return str(Path(run_dir).resolve())


def lock_holder(run_dir: str | os.PathLike) -> int | None:
    """PID of ANOTHER process training ``run_dir`` now, else None (never blocks, never creates files)."""
    run_dir = Path(run_dir)
    if _key(run_dir) in _HELD:
        return None
    path = run_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None                     # no lock file (or not openable): nobody can hold it
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            return _read_pid(fd)
        return None
    finally:
        os.close(fd)                    # also drops the shared probe lock


def _read_pid(fd: int) -> int:
    try:
        return int(os.pread(fd, 32, 0).decode("ascii", "replace").strip() or 0)
    except (OSError, ValueError):
        return 0


def refuse_if_training(run_dir: str | os.PathLike, doing: str) -> None:
    """EBMError if another process is training ``run_dir`` (``doing``: what would have written into it)."""
    pid = lock_holder(run_dir)
    if pid is not None:
        raise EBMError(f"{run_dir} is being trained by process {pid or '?'}; {doing} would write into it: "
                       "wait for training to finish (or stop that process)")


class RunLock:
    """An exclusive lock on a run directory for this process; ``release()`` (or garbage collection) frees it."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self._held: _Held | None = None
        key = _key(self.run_dir)
        held = _HELD.get(key)
        if held is None:
            held = _acquire(self.run_dir)
            _HELD[key] = held
        held.count += 1
        self._held, self._key = held, key

    def release(self) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        held.count -= 1
        if held.count == 0:
            if _HELD.get(self._key) is held:
                del _HELD[self._key]
            os.close(held.fd)           # closing the last descriptor releases the flock

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:               # interpreter shutdown: the kernel frees the lock anyway
            pass


def forget(run_dir: str | os.PathLike) -> None:
    """This process stops counting ``run_dir`` as locked (its folder is being replaced by --force)."""
    _HELD.pop(_key(Path(run_dir)), None)


def _acquire(run_dir: Path) -> _Held:
    path = run_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise EBMError(f"{path} is a symbolic link; refusing to use it as the run's lock") from None
        raise EBMError(f"cannot create the run lock {path}: {os.strerror(e.errno or 0)}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        pid = _read_pid(fd)
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise EBMError(f"{run_dir} is being trained by process {pid or '?'}; wait for it to finish "
                           "(or stop it) before training, resuming or replacing this run") from None
        raise EBMError(f"cannot lock {path}: {os.strerror(e.errno or 0)}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return _Held(fd)
