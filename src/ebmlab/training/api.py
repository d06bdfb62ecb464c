"""Start, resume and describe training runs: the one place that turns user input into a Trainer.

Order matters for "nothing half-written": everything is validated (config, data, model) before
the run directory is created or an existing one is replaced.
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ebmlab.rundir.build import build_model, check_data_description, describe_vector_data
from ebmlab.rundir.checkpoint import read_json
from ebmlab.rundir.config import RunConfig
from ebmlab.rundir.header import write_run_header
from ebmlab.data.sources import DataSet, load_data, read_labels, validate_array
from ebmlab.errors import EBMError
from ebmlab.models.energy import EnergyModel
from ebmlab.training.presets import resolve_config
from ebmlab.training.trainer import Trainer, TrainResult


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


def prepare_run_dir(out: Path, force: bool) -> None:
    """Refuse to touch an existing non-empty directory unless ``force``; never delete a non-run folder."""
    if out.exists() and not out.is_dir():
        raise EBMError(f"--out {str(out)!r} exists and is not a directory")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise EBMError(f"run directory {str(out)!r} already exists; use --resume to continue it "
                           "or --force to replace it")
        if not (out / "config.json").exists() and not (out / "data.json").exists():
            raise EBMError(f"{str(out)!r} is not empty and is not an ebmlab run directory; "
                           "refusing to replace it even with --force")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


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
    run_dir = None
    if out is not None:
        run_dir = Path(out)
        prepare_run_dir(run_dir, force)
        write_run_header(run_dir, config, desc)
    return Trainer(config, dataset, desc, model, run_dir, callbacks), model


def resume_run(run_dir: str | Path, callbacks: list[Any] | tuple = (), steps: int | None = None) -> Trainer:
    """A Trainer restored from the newest checkpoint of ``run_dir`` (optionally with more steps)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise EBMError(f"cannot resume: {str(run_dir)!r} is not a run directory")
    config = RunConfig.from_dict(read_json(run_dir / "config.json", "run configuration (config.json)"))
    desc = read_json(run_dir / "data.json", "data description (data.json)")
    check_data_description(desc, run_dir / "data.json")
    if steps is not None and steps != config.steps:
        # more steps changes the cosine schedule's horizon; only allowed as an explicit choice
        config = config.replace(steps=steps)
        config.save_json(run_dir / "config.json")
    dataset = dataset_from(config.data, config)
    want = desc.get("source", {}).get("train_sha256")
    if want is not None and want != data_fingerprint(dataset):
        raise EBMError(f"the training data {config.data!r} has changed since this run started; resuming on "
                       "different data would not continue the same run (start a new run instead)")
    torch.manual_seed(config.seed)
    model = build_model(config, {k: v for k, v in desc.items() if k != "format_version"})
    trainer = Trainer(config, dataset, desc, model, run_dir, callbacks)
    trainer.resume()
    return trainer


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
    result = trainer.fit()
    return model, result


def train_2d(name_or_array: str | np.ndarray | torch.Tensor, steps: int = 3000, seed: int = 0,
             out_dir: str | Path | None = None) -> EnergyModel:
    """The default 2-D recipe (used by the benchmarks): returns the trained model, with ``.bounds``."""
    model, _ = train(name_or_array, out_dir, force=out_dir is not None, steps=steps, seed=seed)
    return model.eval()
