"""Build a model from a run's configuration and data description (used by training and ``load``)."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ebmlab.rundir.checkpoint import latest_checkpoint, load_checkpoint, read_json, check_format_version
from ebmlab.rundir.config import RunConfig
from ebmlab.errors import EBMError
from ebmlab.models.conditional import ConditionalEnergyModel
from ebmlab.models.energy import EnergyModel
from ebmlab.nets.digits import DigitsLogitsNet
from ebmlab.nets.mlp import MLP, Standardize


def describe_vector_data(train: torch.Tensor, margin: float) -> dict[str, Any]:
    """Support box (data range widened by ``margin`` of the range) and standardisation of vector data."""
    lo, hi = train.min(0).values, train.max(0).values
    span = torch.clamp(hi - lo, min=1e-6)
    return {"kind": "vector", "event_shape": [train.shape[1]],
            "bounds": torch.stack([lo - margin * span, hi + margin * span], 1).tolist(),
            "mean": train.mean(0).tolist(), "std": torch.clamp(train.std(0), min=1e-6).tolist()}


# width of ``DigitsLogitsNet`` for conditional/JEM runs on 8x8 images. 16, not the net's default 32:
# a Langevin step (forward + backward of 128 digits, 1 CPU thread) costs 7 ms at width 16 and
# 21 ms at 32, and training runs 20-60 of them per step on a 2-core CPU.
DIGITS_CLASSIFIER_WIDTH = 16


def build_model(config: RunConfig, data: dict[str, Any]) -> EnergyModel | ConditionalEnergyModel:
    """A fresh model for ``data`` (the dict stored as data.json).

    Unconditional runs get an ``EnergyModel``; conditional and JEM runs (``config.objective``) a
    ``ConditionalEnergyModel`` with K = ``data["n_classes"]`` logits: ``DigitsLogitsNet`` for
    1x8x8 images, an MLP with K outputs for vectors.
    """
    if config.objective != "cd":
        return _build_conditional(config, data)
    if data["kind"] == "vector":
        d = data["event_shape"][0]
        net = nn.Sequential(Standardize(torch.tensor(data["mean"]), torch.tensor(data["std"])),
                            MLP(d, config.hidden, config.depth, config.spectral_norm))
        return EnergyModel(net, bounds=data["bounds"])
    if data["kind"] == "image":
        from ebmlab.nets.image import default_image_net
        c, h, _ = data["event_shape"]
        return EnergyModel(default_image_net(c, h, spectral_norm=config.spectral_norm))
    if data["kind"] == "composite":
        raise EBMError("a composite run directory has no network of its own to train")
    raise EBMError(f"unknown data kind {data['kind']!r} in data.json")


def _build_conditional(config: RunConfig, data: dict[str, Any]) -> ConditionalEnergyModel:
    k = data.get("n_classes")
    if not isinstance(k, int) or k < 1:
        raise EBMError(f"a {config.objective} run needs the number of classes (n_classes) in data.json; "
                       "the run directory is damaged")
    if data["kind"] == "vector":
        d = data["event_shape"][0]
        net = nn.Sequential(Standardize(torch.tensor(data["mean"]), torch.tensor(data["std"])),
                            MLP(d, config.hidden, config.depth, config.spectral_norm, out=k))
        return ConditionalEnergyModel(net, n_classes=k, bounds=data["bounds"])
    if data["kind"] == "image":
        if list(data["event_shape"]) != [1, 8, 8]:
            raise EBMError(f"conditional and JEM training have a network for 1x8x8 images (digits) and for "
                           f"vectors; got images of shape {tuple(data['event_shape'])}")
        return ConditionalEnergyModel(DigitsLogitsNet(k, DIGITS_CLASSIFIER_WIDTH), n_classes=k)
    raise EBMError(f"a {config.objective} run needs vector or image data, not {data['kind']!r}")


def build_model_from_run(run_dir: Path, device: str | torch.device = "cpu") -> nn.Module:
    """``ebmlab.load``: config.json + data.json + newest checkpoint weights -> model in eval mode
    (a ``ConditionalEnergyModel`` for conditional and JEM runs)."""
    if not run_dir.is_dir():
        raise EBMError(f"run directory {str(run_dir)!r} does not exist")
    data = read_json(run_dir / "data.json", "data description (data.json)")
    check_data_description(data, run_dir / "data.json")
    if data["kind"] == "composite":
        from ebmlab.models.spec import from_spec
        model = from_spec(data["spec"], lambda src: build_model_from_run(_resolve(run_dir, src), device))
        return model.to(device).eval()
    config = RunConfig.from_dict(read_json(run_dir / "config.json", "run configuration (config.json)"))
    ck = latest_checkpoint(run_dir)
    if ck is None:
        raise EBMError(f"{run_dir} has no checkpoint yet; train it first (ebmlab train --resume {run_dir})")
    _, state, _ = load_checkpoint(ck)
    model = build_model(config, data)
    warn_dtype_conversions(model, state, ck)
    model.load_state_dict(state)
    return model.to(device).eval()


def warn_dtype_conversions(model: nn.Module, state: dict[str, torch.Tensor], where: Path) -> None:
    """Warn (``warnings.warn``, one line) when checkpoint tensors have another dtype than the
    network's, which ``load_state_dict`` would convert silently (e.g. float64 weights rounded to float32)."""
    own = model.state_dict()
    changed = sorted({(str(v.dtype), str(own[k].dtype)) for k, v in state.items()
                      if k in own and v.dtype != own[k].dtype})
    if changed:
        names = [k for k, v in state.items() if k in own and v.dtype != own[k].dtype]
        conv = ", ".join(f"{a.removeprefix('torch.')} -> {b.removeprefix('torch.')}" for a, b in changed)
        warnings.warn(f"checkpoint {where}: {len(names)} tensor(s) converted {conv} on loading "
                      f"(first: {names[0]!r})", stacklevel=2)


def check_data_description(data: Any, where: Path) -> None:
    """A data.json must be an object with the keys its kind needs; anything else is a damaged run."""
    if not isinstance(data, dict):
        raise EBMError(f"{where} is not a data description (expected a JSON object); the run directory is damaged")
    check_format_version(data.get("format_version"), where)
    need = {"vector": ("event_shape", "bounds", "mean", "std"), "image": ("event_shape",),
            "composite": ("spec",)}.get(data.get("kind"))
    if need is None:
        raise EBMError(f"{where} has an unknown data kind {data.get('kind')!r}; the run directory is damaged")
    missing = [k for k in need if k not in data]
    if missing:
        raise EBMError(f"{where} lacks {', '.join(missing)}; the run directory is damaged")


def _resolve(run_dir: Path, src: str) -> Path:
    p = Path(src)
    return p if p.is_absolute() else (run_dir / p).resolve()
