"""Run directories on disk: atomic writes, safetensors for tensors, JSON for everything else.

Nothing here ever unpickles: a shared run directory cannot execute code when opened.

Layout (the whole run directory: ebmlab.rundir.layout)::

    DIR/checkpoints/LATEST           name of the newest complete checkpoint (written last)
    DIR/checkpoints/step-000250/     model.safetensors, train_state.safetensors, state.json,
                                     ema.safetensors (runs with ``ema_decay``: the averaged weights)

``model.safetensors`` holds the raw weights training resumes from; ``ema.safetensors`` (same keys) the
exponential moving average of them (training/ema.py), which sampling and evaluation use when it is there
(``sampling_weights``).

A checkpoint folder is built under a temporary name, fsynced, then renamed; LATEST is replaced
atomically afterwards. A kill at any moment leaves the previous checkpoint and pointer intact; so does an I/O error
(disk full, file too large, read-only file system), which ends as one EBMError line naming the
path and the errno. Pruning deletes only ``step-NNNNNNN`` folders (and ebmlab's own temporary
``.step-*`` folders) that are real folders inside a real ``checkpoints/``; links are never followed.

Everything read back is validated: files must be regular files (a FIFO would block the reader
forever), of bounded size, valid UTF-8 JSON of bounded depth, with a step in range.
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ebmlab.atomic import atomic_write_text, current_umask, fsync_dir, fsync_file, replace_atomically
from ebmlab.errors import EBMError
from ebmlab.rundir.layout import CHECKPOINTS, LATEST, refuse_symlinks

FORMAT_VERSION = 1
MAX_JSON_BYTES = 64 * 2**20          # config/data/state JSON are kilobytes; a bound keeps a bad file from eating memory
MAX_STEP = 10**12                    # far beyond any run (10^12 optimiser steps), small enough for every int path
_STEP_DIR = re.compile(r"^step-(\d{7,})$")
_TEMP_STEP_DIR = re.compile(r"^\.step-\d{7,}\.[A-Za-z0-9_]+$")


def read_small_file(path: Path, what: str, limit: int = MAX_JSON_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; EBMError for anything else.

    Opened with O_NONBLOCK and checked with fstat before reading: a FIFO, socket or device put in
    place of a run file is refused at once instead of blocking the reader forever.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise EBMError(f"{what} is missing: {path}") from None
    except OSError as e:
        raise EBMError(f"cannot read {what} {path}: {describe_oserror(e)}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise EBMError(f"{what} {path} is not a regular file (a FIFO, device or folder); the run directory is damaged")
        if st.st_size > limit:
            raise EBMError(f"{what} {path} is {st.st_size} bytes, more than the {limit} such a file can be; "
                           "the run directory is damaged")
        chunks, n = [], 0
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            n += len(b)
            if n > limit:
                raise EBMError(f"{what} {path} is larger than {limit} bytes; the run directory is damaged")
            chunks.append(b)
        return b"".join(chunks)
    except OSError as e:
        raise EBMError(f"cannot read {what} {path}: {describe_oserror(e)}") from None
    finally:
        os.close(fd)


def read_json(path: Path, what: str) -> Any:
    """Parse a run file's JSON (UTF-8, regular file, bounded size and depth); EBMError otherwise."""
    raw = read_small_file(Path(path), what)
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise EBMError(f"{what} is not valid JSON: {path}") from None
    except RecursionError:            # [[[[...]]]] nested deeper than the parser's stack
        raise EBMError(f"{what} {path} is nested too deeply to be a run file; the run directory is damaged") from None


def describe_oserror(e: OSError) -> str:
    """``No space left on device (ENOSPC)`` for an OSError; the path when it has one."""
    code = errno.errorcode.get(e.errno or 0)
    text = e.strerror or str(e)
    where = f" ({e.filename})" if e.filename else ""
    return f"{text}{f' [{code}]' if code else ''}{where}"


def _safetensors_oserror(e: Exception) -> OSError | None:
    """safetensors reports I/O errors as 'IoError(Os { code: 28, ... })' text; recover the OSError."""
    m = re.search(r"code: (\d+)", str(e))
    if m is None:
        return None
    n = int(m.group(1))
    return OSError(n, os.strerror(n))


def _flatten(prefix: str, obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Split a nested state (dicts/lists of tensors and scalars) into tensors + a JSON skeleton."""
    if isinstance(obj, torch.Tensor):
        key = prefix
        tensors[key] = obj.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        return {"__dict__": [[_flatten_key(k), _flatten(f"{prefix}.{i}", v, tensors)]
                             for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, (list, tuple)):
        return {"__list__": [_flatten(f"{prefix}.{i}", v, tensors) for i, v in enumerate(obj)],
                "tuple": isinstance(obj, tuple)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store object of type {type(obj).__name__} in a checkpoint")


def _flatten_key(k: Any) -> Any:
    if isinstance(k, (int, str)):
        return k
    raise TypeError(f"checkpoint dict keys must be int or str, got {type(k).__name__}")


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {k: _unflatten(v, tensors) for k, v in obj["__dict__"]}
        if "__list__" in obj:
            items = [_unflatten(v, tensors) for v in obj["__list__"]]
            return tuple(items) if obj.get("tuple") else items
    return obj


EMA_FILE = "ema.safetensors"


def save_checkpoint(run_dir: Path, step: int, model_state: dict[str, torch.Tensor],
                    train_state: dict[str, Any], keep: int = 2,
                    ema_state: dict[str, torch.Tensor] | None = None) -> Path:
    """Write checkpoint ``step`` atomically and point LATEST at it; keep the newest ``keep``.

    ``ema_state``: the averaged weights of a run with ``ema_decay`` (keys as ``model_state``), written
    as ``ema.safetensors`` in the same folder, so it appears (or not) with the rest of the checkpoint."""
    refuse_symlinks(Path(run_dir))
    ckdir = Path(run_dir) / CHECKPOINTS
    name = f"step-{step:07d}"
    try:
        _write_checkpoint(ckdir, name, step, model_state, train_state, ema_state)
        atomic_write_text(ckdir / LATEST, name)
    except OSError as e:
        raise _write_error(ckdir, name, e) from None
    except Exception as e:
        if type(e).__name__ != "SafetensorError":
            raise
        raise _write_error(ckdir, name, _safetensors_oserror(e) or e) from None
    _prune(ckdir, keep, name)
    return ckdir / name


def _write_error(ckdir: Path, name: str, e: Exception) -> EBMError:
    try:
        prev = (ckdir / LATEST).read_text().strip()
    except (OSError, UnicodeDecodeError):
        prev = None
    what = describe_oserror(e) if isinstance(e, OSError) else f"{type(e).__name__}: {str(e)[:120]}"
    kept = (f"the previous checkpoint {prev} is intact" if prev else "no earlier checkpoint exists")
    return EBMError(f"cannot write checkpoint {name} in {ckdir}: {what}; {kept} (free space or fix the folder, "
                    f"then ebmlab train --resume {ckdir.parent})")


def _write_checkpoint(ckdir: Path, name: str, step: int, model_state: dict[str, torch.Tensor],
                      train_state: dict[str, Any], ema_state: dict[str, torch.Tensor] | None = None) -> None:
    ckdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=ckdir))
    try:
        os.chmod(tmp, 0o777 & ~current_umask())        # mkdtemp makes 0700; a checkpoint is a normal folder
        save_file({k: v.detach().cpu().contiguous() for k, v in model_state.items()},
                  str(tmp / "model.safetensors"), metadata={"format_version": str(FORMAT_VERSION)})
        if ema_state is not None:
            save_file({k: v.detach().cpu().contiguous() for k, v in ema_state.items()},
                      str(tmp / EMA_FILE), metadata={"format_version": str(FORMAT_VERSION)})
        tensors: dict[str, torch.Tensor] = {}
        skeleton = _flatten("s", train_state, tensors)
        save_file(tensors, str(tmp / "train_state.safetensors"))
        (tmp / "state.json").write_text(json.dumps({"format_version": FORMAT_VERSION, "step": step,
                                                    "skeleton": skeleton}))
        file_mode = 0o666 & ~current_umask()
        for f in tmp.iterdir():
            os.chmod(f, file_mode)               # safetensors writes its files 0600
            fsync_file(f)
        fsync_dir(tmp)
        final = ckdir / name
        if final.is_symlink():
            raise EBMError(f"{final} is a symbolic link; refusing to replace it")
        if final.exists():                 # a re-run of the same step after a rollback
            shutil.rmtree(final)
        replace_atomically(tmp, final)     # the folder appears complete or not at all
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _real_dir(p: Path) -> bool:
    """A folder, not a link to one (lstat: the link itself is looked at, never its target)."""
    try:
        return stat.S_ISDIR(os.lstat(p).st_mode)
    except OSError:
        return False


def _prune(ckdir: Path, keep: int, newest: str) -> None:
    """Delete all but the newest ``keep`` checkpoints and leftovers of killed writes: only folders
    named as ebmlab names them, real folders inside a real ``checkpoints/`` (a link is never followed:
    rmtree through a linked checkpoints/ would delete someone else's ``step-*`` folders)."""
    if not _real_dir(ckdir):
        return
    done = sorted(p for p in ckdir.iterdir() if _STEP_DIR.match(p.name) and _real_dir(p))
    for p in done[:-keep]:
        if p.name != newest:
            shutil.rmtree(p, ignore_errors=True)
    for p in ckdir.iterdir():              # leftovers of a write killed half-way
        if _TEMP_STEP_DIR.match(p.name) and _real_dir(p):
            shutil.rmtree(p, ignore_errors=True)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint folder, or None when the run has none yet."""
    ckdir = Path(run_dir) / CHECKPOINTS
    if not (ckdir / LATEST).exists() and not (ckdir / LATEST).is_symlink():
        return None
    raw = read_small_file(ckdir / LATEST, "checkpoint pointer", limit=4096)
    try:
        name = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise EBMError(f"{ckdir / LATEST} is not UTF-8 text; the run directory is damaged") from None
    path = ckdir / name
    if not _STEP_DIR.match(name) or not (path / "state.json").is_file():
        raise EBMError(f"{ckdir / LATEST} points to a missing or invalid checkpoint {name!r}; "
                       "the run directory is damaged")
    return path


def with_fallback_hint(error: EBMError, run_dir: Path) -> EBMError:
    """``error`` about a damaged checkpoint of ``run_dir`` (its message names ``checkpoints/step-N`` or LATEST)
    with the run's other checkpoints appended, newest first, and how to go on from one; else ``error`` itself.
    A run keeps ``keep_checkpoints`` of them (2 by default), but a damaged newest one read as the end of it."""
    ckdir = Path(run_dir) / CHECKPOINTS
    named = re.search(r"step-\d{7,}", str(error))
    if str(ckdir) not in str(error) or not (named or LATEST in str(error)) or not _real_dir(ckdir):
        return error
    bad = named.group(0) if named else ""
    others = sorted((p.name for p in ckdir.iterdir() if _STEP_DIR.match(p.name) and p.name != bad and _real_dir(p)),
                    reverse=True)
    if not others:
        return error
    hinted = EBMError(f"{error}; earlier checkpoints: {', '.join(others[:5])}: to go on from one, write its name "
                      f"into {ckdir / LATEST} (the steps after it are trained again)")
    hinted.__cause__ = error.__cause__
    return hinted


def load_checkpoint(path: Path) -> tuple[int, dict[str, torch.Tensor], dict[str, Any]]:
    """Read (step, model_state, train_state) from a checkpoint folder. Never unpickles."""
    meta = read_json(path / "state.json", "checkpoint metadata")
    if not isinstance(meta, dict):
        raise EBMError(f"checkpoint metadata {path / 'state.json'} is not a JSON object; the run directory is damaged")
    check_format_version(meta.get("format_version"), path)
    step = check_step_value(meta.get("step"), path / "state.json")
    model_state = _load_safetensors(path / "model.safetensors")
    check_finite_weights(model_state, path / "model.safetensors")
    tensors = _load_safetensors(path / "train_state.safetensors")
    named = _STEP_DIR.match(Path(path).name)
    if named and int(named.group(1)) != step:
        raise EBMError(f"checkpoint {path} says it is step {step}; the run directory is damaged")
    try:
        return step, model_state, _unflatten(meta["skeleton"], tensors)
    except (KeyError, TypeError, ValueError, RecursionError) as e:   # hand-edited or mismatched state.json
        raise EBMError(f"checkpoint {path} is damaged: state.json does not match its tensors "
                       f"({type(e).__name__}: {str(e)[:80]})") from None


def load_ema(path: Path) -> dict[str, torch.Tensor] | None:
    """The averaged weights in checkpoint folder ``path`` (``ema.safetensors``), or None when the run keeps
    no EMA (runs without ``ema_decay``, and every run written before it existed). Checked finite."""
    f = Path(path) / EMA_FILE
    if not f.exists() and not f.is_symlink():
        return None
    state = _load_safetensors(f)
    check_finite_weights(state, f)
    return state


def sampling_weights(path: Path) -> tuple[dict[str, torch.Tensor], Path]:
    """(weights, the file they came from) that generation and evaluation use from checkpoint folder
    ``path``: the EMA of a run with ``ema_decay``, else the trained weights themselves."""
    _, state, _ = load_checkpoint(path)          # validates the checkpoint as a whole
    ema = load_ema(path)
    if ema is not None:
        return ema, Path(path) / EMA_FILE
    return state, Path(path) / "model.safetensors"


def check_step_value(step: Any, where: Path) -> int:
    """The step recorded in a checkpoint's state.json: an integer >= 0, else EBMError (one line).

    A negative step would let ``--resume`` rewrite the metrics history (rows past it are dropped);
    a float, string or bool is not a step the trainer ever writes."""
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEP:
        raise EBMError(f"checkpoint {where} records step {str(step)[:40]!r}; a step is an integer in "
                       f"0..{MAX_STEP}; the run directory is damaged")
    return step


def check_finite_weights(model_state: dict[str, torch.Tensor], where: Path) -> None:
    """EBMError naming the first weight tensor with a NaN or inf (the trainer never writes one:
    training.guard checks every update before it is checkpointed), instead of sampling noise from it."""
    for name, t in model_state.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise EBMError(f"checkpoint weights {where} hold non-finite values (in {name!r}); "
                           "the run directory is damaged — resume from an earlier checkpoint or retrain")


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise EBMError(f"checkpoint file {path} is not a regular file; the run directory is damaged")
    except FileNotFoundError:
        raise EBMError(f"checkpoint file is missing: {path}") from None
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise EBMError(f"checkpoint file is missing: {path}") from None
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise EBMError(f"checkpoint file {path} is not a valid safetensors file ({type(e).__name__})") from None


def check_format_version(version: Any, where: Path) -> None:
    if version != FORMAT_VERSION:
        raise EBMError(f"{where} was written by run-directory format {version!r}, this ebmlab reads "
                       f"format {FORMAT_VERSION}; use the ebmlab version that wrote it")


def check_weights(model: torch.nn.Module, path: Path) -> None:
    """EBMError naming the first mismatching tensors if ``path`` (a model.safetensors) does not fit ``model``.

    Reads only the file's header (names and shapes), so it is cheap before a full load; it turns
    ``load_state_dict``'s multi-line RuntimeError into one line.
    """
    try:
        with safe_open(str(path), "pt") as fh:
            shapes = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    except FileNotFoundError:
        raise EBMError(f"checkpoint file is missing: {path}") from None
    except Exception as e:
        raise EBMError(f"checkpoint file {path} is not a valid safetensors file ({type(e).__name__})") from None
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problems = [f"missing {k}" for k in want if k not in shapes]
    problems += [f"unexpected {k}" for k in shapes if k not in want]
    problems += [f"{k} is {list(shapes[k])}, the network has {list(want[k])}"
                 for k in want if k in shapes and shapes[k] != want[k]]
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        raise EBMError(f"checkpoint {path} does not fit this run's network: {'; '.join(problems[:3])}{more}; "
                       "pass the network the run was trained with (or the run directory is damaged)")
