"""Start, resume and describe training runs: the one place that turns user input into a Trainer.

Order matters for "nothing half-written": everything is validated (config, data, model) before
the run directory is created or an existing one is replaced.

The Trainer returned by ``start_run``/``resume_run`` holds the run's lock (``trainer.run_lock``,
ebmlab.rundir.lock) so no other process can train, resume or replace the run meanwhile; ``train``
and the CLI release it when ``fit`` returns (dropping the Trainer releases it too).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ebmlab.rundir.build import build_model, check_data_description, describe_vector_data
from ebmlab.rundir.checkpoint import check_weights, latest_checkpoint, read_json
from ebmlab.rundir.layout import prepare_run_dir, refuse_symlinks
from ebmlab.rundir.lock import RunLock
from ebmlab.rundir.config import RunConfig
from ebmlab.data.sources import DataSet, load_data, read_labels, validate_array
from ebmlab.errors import EBMError
from ebmlab.models.energy import EnergyModel
from ebmlab.training.presets import resolve_config
from ebmlab.training.trainer import Trainer, TrainResult, write_run_header


def describe_data(dataset: DataSet, config: RunConfig) -> dict[str, Any]:
    """The JSON data description stored in data.json (support box, standardisation, scaling)."""
    if dataset.kind == "vector":
        desc = describe_vector_data(dataset.train, config.margin)
    else:
        desc = {"kind": "image", "event_shape": list(dataset.event_shape)}
        if "scaling" in dataset.describe:
            desc["scaling"] = dataset.describe["scaling"]
    desc["name"] = dataset.name
    desc["source"] = {k: v for k, v in dataset.describe.items() if k != "scaling"}
    desc["source"]["train_sha256"] = data_fingerprint(dataset)
    if dataset.y_train is not None:
        desc["n_classes"] = dataset.n_classes
        desc["source"]["labels"] = config.labels
    return desc


def data_fingerprint(dataset: DataSet) -> str:
    """sha256 of the training tensor in the model scale, float32 (and its labels, if any): --resume
    refuses data that changed since the run started.

    Hashed in chunks converted by ``dataset.to_model``: the same digest as hashing the whole
    float32 set at once (what runs written before image sets were stored as uint8 recorded), without
    building that copy."""
    h = hashlib.sha256()
    for chunk in dataset.train.detach().cpu().split(256):
        h.update(dataset.to_model(chunk).float().contiguous().numpy())
    if dataset.y_train is not None:
        h.update(b"labels")
        h.update(dataset.y_train.cpu().long().contiguous().numpy().tobytes())
    return h.hexdigest()


def dataset_from(data: str | np.ndarray | torch.Tensor, config: RunConfig) -> DataSet:
    if isinstance(data, (np.ndarray, torch.Tensor)):
        x = validate_array(data, "array")
        n_test = max(1, int(round(x.shape[0] * config.test_fraction)))
        if x.shape[0] - n_test < 2:
            raise EBMError(f"array: too few points ({x.shape[0]}) to hold out a test set and train on at least 2")
        perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(config.seed))
        ds = DataSet(x[perm[n_test:]], x[perm[:n_test]], "vector" if x.ndim == 2 else "image", "array",
                     {"path": "<array>"})
        if config.labels is not None:
            y = read_labels(config.labels, x.shape[0])
            ds.y_train, ds.y_test, ds.n_classes = y[perm[n_test:]], y[perm[:n_test]], int(y.max()) + 1
        return ds
    return load_data(str(data), config.seed, config.n_test, config.test_fraction, config.image_size, config.labels)


def start_run(data: str | np.ndarray | torch.Tensor, out: str | Path | None = None, force: bool = False,
              callbacks: list[Any] | tuple = (), config: RunConfig | None = None,
              **overrides: Any) -> tuple[Trainer, EnergyModel]:
    """Validate everything, build the model, create the run directory; returns an unstarted Trainer."""
    spec = data if isinstance(data, str) else "<array>"
    if isinstance(data, str) and Path(data).exists():
        spec = str(Path(data).resolve())      # so --resume works from any working directory
    lab = overrides.get("labels")
    if isinstance(lab, str) and lab not in ("", "builtin") and Path(lab).exists():
        overrides["labels"] = str(Path(overrides["labels"]).resolve())
    if config is None:
        first = resolve_config(spec, overrides)            # validates flags before any data is read
        dataset = dataset_from(spec if isinstance(data, str) else data, first)
        config = resolve_config(spec, overrides, dataset=dataset)   # the preset follows the data
    else:
        dataset = dataset_from(data, config)
    desc = describe_data(dataset, config)
    torch.manual_seed(config.seed)            # the network's initial weights, the only global-RNG use
    model = build_model(config, desc)
    _check_model(model, dataset)
    _check_device(config.device)
    run_dir, lock = None, None
    if out is not None:
        run_dir = Path(out)
        prepare_run_dir(run_dir, force)
        lock = RunLock(run_dir)
    try:
        if run_dir is not None:
            write_run_header(run_dir, config, desc)
        trainer = Trainer(config, dataset, desc, model, run_dir, callbacks)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    trainer.run_lock = lock
    return trainer, model


def resume_run(run_dir: str | Path, callbacks: list[Any] | tuple = (), steps: int | None = None) -> Trainer:
    """A Trainer restored from the newest checkpoint of ``run_dir`` (optionally with more steps)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise EBMError(f"cannot resume: {str(run_dir)!r} is not a run directory")
    refuse_symlinks(run_dir)
    config = RunConfig.from_dict(read_json(run_dir / "config.json", "run configuration (config.json)"))
    desc = read_json(run_dir / "data.json", "data description (data.json)")
    check_data_description(desc, run_dir / "data.json")
    lock = RunLock(run_dir)      # a run, so the lock file may be made; before anything below writes
    try:
        trainer = _resume_locked(run_dir, config, desc, callbacks, steps)
    except BaseException:
        lock.release()
        raise
    trainer.run_lock = lock
    return trainer


def _resume_locked(run_dir: Path, config: RunConfig, desc: dict[str, Any], callbacks: list[Any] | tuple,
                   steps: int | None) -> Trainer:
    if steps is not None and steps != config.steps:
        # more steps changes the cosine schedule's horizon; only allowed as an explicit choice
        config = config.replace(steps=steps)
        config.save_json(run_dir / "config.json")
    dataset = dataset_from(config.data, config)
    want = desc.get("source", {}).get("train_sha256")
    if want is not None and want != data_fingerprint(dataset):
        raise EBMError(f"the training data {config.data!r} has changed since this run started; resuming on "
                       "different data would not continue the same run (start a new run instead)")
    _check_device(config.device)
    torch.manual_seed(config.seed)
    model = build_model(config, {k: v for k, v in desc.items() if k != "format_version"})
    ck = latest_checkpoint(run_dir)
    if ck is not None:
        check_weights(model, ck / "model.safetensors")
    trainer = Trainer(config, dataset, desc, model, run_dir, callbacks)
    trainer.resume()
    return trainer


def release_run(trainer: Trainer) -> None:
    """Give up the run lock a Trainer from ``start_run``/``resume_run`` holds (after ``fit``)."""
    lock = getattr(trainer, "run_lock", None)
    if lock is not None:
        lock.release()


def _check_device(device: str) -> None:
    """One line for a device this machine does not have (torch would raise deep inside the Trainer)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise EBMError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise EBMError(f"device {device!r} is not available here (no CUDA); use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise EBMError(f"device {device!r} does not exist; this machine has {torch.cuda.device_count()} CUDA device(s)")
    if dev.type not in ("cpu", "cuda"):
        avail = getattr(getattr(torch.backends, dev.type, None), "is_available", None)
        if avail is None or not avail():
            raise EBMError(f"device {device!r} is not available here; use cpu or cuda")


def _check_model(model: EnergyModel, dataset: DataSet) -> None:
    """Fail early, with one line, if the network does not map [B, *event] -> [B] finitely."""
    with torch.no_grad():
        f = model.log_density(dataset.to_model(dataset.train[:4]))
    if not torch.isfinite(f).all():
        raise EBMError("the network returns non-finite f on training data before any training; check it")


def train(data: str | np.ndarray | torch.Tensor, out: str | Path | None = None, force: bool = False,
          callbacks: list[Any] | tuple = (), **overrides: Any) -> tuple[EnergyModel, TrainResult]:
    """Train with the default recipe for ``data`` (overridable by keyword); returns (model, result)."""
    trainer, model = start_run(data, out, force, callbacks, **overrides)
    try:
        result = trainer.fit()
    finally:
        release_run(trainer)
    return model, result


def train_2d(name_or_array: str | np.ndarray | torch.Tensor, steps: int = 3000, seed: int = 0,
             out_dir: str | Path | None = None) -> EnergyModel:
    """The default 2-D recipe (used by the benchmarks): returns the trained model, with ``.bounds``."""
    model, _ = train(name_or_array, out_dir, force=out_dir is not None, steps=steps, seed=seed)
    return model.eval()
