"""Run directories on disk: atomic writes, safetensors for tensors, JSON for everything else.

Nothing here ever unpickles: a shared run directory cannot execute code when opened.

Layout::

    DIR/config.json                  the RunConfig
    DIR/data.json                    data description: kind, shape, scaling, support box
    DIR/metrics.jsonl                one JSON row per logged step
    DIR/plot.png                     the latest picture
    DIR/checkpoints/LATEST           name of the newest complete checkpoint (written last)
    DIR/checkpoints/step-000250/     model.safetensors, train_state.safetensors, state.json

A checkpoint folder is built under a temporary name, fsynced, then renamed; LATEST is replaced
atomically afterwards. A kill at any moment leaves the previous checkpoint and pointer intact.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ebmlab.atomic import atomic_write_text, current_umask, fsync_dir, fsync_file, replace_atomically
from ebmlab.errors import EBMError

FORMAT_VERSION = 1
CHECKPOINTS = "checkpoints"
LATEST = "LATEST"


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise EBMError(f"{what} is missing: {path}") from None
    except (ValueError, UnicodeDecodeError):
        raise EBMError(f"{what} is not valid JSON: {path}") from None


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


def save_checkpoint(run_dir: Path, step: int, model_state: dict[str, torch.Tensor],
                    train_state: dict[str, Any], keep: int = 2) -> Path:
    """Write checkpoint ``step`` atomically and point LATEST at it; keep the newest ``keep``."""
    ckdir = Path(run_dir) / CHECKPOINTS
    ckdir.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:07d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=ckdir))
    try:
        os.chmod(tmp, 0o777 & ~current_umask())        # mkdtemp makes 0700; a checkpoint is a normal folder
        save_file({k: v.detach().cpu().contiguous() for k, v in model_state.items()},
                  str(tmp / "model.safetensors"), metadata={"format_version": str(FORMAT_VERSION)})
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
        if final.exists():                 # a re-run of the same step after a rollback
            shutil.rmtree(final)
        replace_atomically(tmp, final)     # the folder appears complete or not at all
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(ckdir / LATEST, name)
    _prune(ckdir, keep, name)
    return final


def _prune(ckdir: Path, keep: int, newest: str) -> None:
    done = sorted(p for p in ckdir.iterdir() if p.is_dir() and p.name.startswith("step-"))
    for p in done[:-keep]:
        if p.name != newest:
            shutil.rmtree(p, ignore_errors=True)
    for p in ckdir.iterdir():              # leftovers of a write killed half-way
        if p.is_dir() and p.name.startswith(".step-"):
            shutil.rmtree(p, ignore_errors=True)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint folder, or None when the run has none yet."""
    ckdir = Path(run_dir) / CHECKPOINTS
    try:
        name = (ckdir / LATEST).read_text().strip()
    except FileNotFoundError:
        return None
    path = ckdir / name
    if not name.startswith("step-") or "/" in name or not (path / "state.json").is_file():
        raise EBMError(f"{ckdir / LATEST} points to a missing or invalid checkpoint {name!r}; "
                       "the run directory is damaged")
    return path


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
    try:
        return step, model_state, _unflatten(meta["skeleton"], tensors)
    except (KeyError, TypeError, ValueError) as e:   # hand-edited or mismatched state.json
        raise EBMError(f"checkpoint {path} is damaged: state.json does not match its tensors "
                       f"({type(e).__name__}: {str(e)[:80]})") from None


def check_step_value(step: Any, where: Path) -> int:
    """The step recorded in a checkpoint's state.json: an integer >= 0, else EBMError (one line).

    A negative step would let ``--resume`` rewrite the metrics history (rows past it are dropped);
    a float, string or bool is not a step the trainer ever writes."""
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise EBMError(f"checkpoint {where} records step {str(step)[:40]!r}, not an integer >= 0; "
                       "the run directory is damaged")
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
        return load_file(str(path))
    except FileNotFoundError:
        raise EBMError(f"checkpoint file is missing: {path}") from None
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise EBMError(f"checkpoint file {path} is not a valid safetensors file ({type(e).__name__})") from None


def check_format_version(version: Any, where: Path) -> None:
    if version != FORMAT_VERSION:
        raise EBMError(f"{where} was written by run-directory format {version!r}, this ebmlab reads "
                       f"format {FORMAT_VERSION}; use the ebmlab version that wrote it")
