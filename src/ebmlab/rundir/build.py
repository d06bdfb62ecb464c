"""Build a model from a run's configuration and data description (used by training and ``load``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ebmlab.rundir.checkpoint import latest_checkpoint, load_checkpoint, read_json, check_format_version
from ebmlab.rundir.config import RunConfig
from ebmlab.rundir.network import import_network, untrusted_message
from ebmlab.errors import EBMError
from ebmlab.models.conditional import ConditionalEnergyModel
from ebmlab.models.energy import EnergyModel
from ebmlab.nets.digits import DigitsLogitsNet
from ebmlab.nets.mlp import MLP, Standardize


def describe_vector_data(train: torch.Tensor | Any, margin: float) -> dict[str, Any]:
    """Support box (data range widened by ``margin`` of the range) and standardisation of vector data.

    ``train``: a tensor [N, d], or a streamed set (``data.stream.IndexedData``) read in one pass of chunks."""
    if isinstance(train, torch.Tensor):
        lo, hi = train.min(0).values, train.max(0).values
        mean, std = train.mean(0), train.std(0)
    else:
        lo, hi, mean, std = _streamed_moments(train)
    span = torch.clamp(hi - lo, min=1e-6)
    return {"kind": "vector", "event_shape": [train.shape[1]],
            "bounds": torch.stack([lo - margin * span, hi + margin * span], 1).tolist(),
            "mean": mean.tolist(), "std": torch.clamp(std, min=1e-6).tolist()}


def _streamed_moments(train: Any, chunk: int = 4096) -> tuple[torch.Tensor, ...]:
    """(min, max, mean, std) per coordinate of a streamed set: float64 sums over chunks, one in memory."""
    n, total, total_sq, lo, hi = 0, 0.0, 0.0, None, None
    for x in train.split(chunk):
        x = x.double()
        n += x.shape[0]
        total = total + x.sum(0)
        total_sq = total_sq + (x * x).sum(0)
        lo = x.min(0).values if lo is None else torch.minimum(lo, x.min(0).values)
        hi = x.max(0).values if hi is None else torch.maximum(hi, x.max(0).values)
    mean = total / n
    var = (total_sq - n * mean * mean) / max(n - 1, 1)
    return lo.float(), hi.float(), mean.float(), var.clamp_min(0).sqrt().float()


# width of ``DigitsLogitsNet`` for conditional/JEM runs on 8x8 images. 16, not the net's default 32:
# a Langevin step (forward + backward of 128 digits, 1 CPU thread) costs 7 ms at width 16 and
# 21 ms at 32, and training runs 20-60 of them per step on a 2-core CPU.
DIGITS_CLASSIFIER_WIDTH = 16


def build_model(config: RunConfig, data: dict[str, Any],
                network: nn.Module | None = None) -> EnergyModel | ConditionalEnergyModel:
    """A fresh model for ``data`` (the dict stored as data.json).

    Unconditional runs get an ``EnergyModel``; conditional and JEM runs (``config.objective``) a
    ``ConditionalEnergyModel`` with K = ``data["n_classes"]`` logits: ``DigitsLogitsNet`` for
    1x8x8 images, an MLP with K outputs for vectors. A run of a user's network (``config.net ==
    "custom"``) wraps ``network`` as its record ``config.network`` says (parametrisation, bounds).
    """
    if config.net == "custom":
        return wrap_custom_network(config, data, network)
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


def wrap_custom_network(config: RunConfig, data: dict[str, Any],
                        network: nn.Module | None) -> EnergyModel | ConditionalEnergyModel:
    """The model of a custom-network run around ``network`` (the user's instance, or one imported on trust)."""
    ref = config.network
    if not isinstance(ref, dict):
        raise EBMError("config.json says net 'custom' but holds no network record; the run directory is damaged")
    if network is None:
        raise EBMError("a custom-network run needs its network: pass network=YourNet(...)")
    if not isinstance(network, nn.Module):
        raise EBMError(f"network must be an nn.Module, got {type(network).__name__}")
    bounds = ref.get("bounds")
    if config.objective != "cd":
        return ConditionalEnergyModel(network, n_classes=data.get("n_classes"), bounds=bounds)
    return EnergyModel(network, parametrisation=ref.get("parametrisation", "exp"), bounds=bounds)


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], where: Path) -> None:
    """``model.load_state_dict(state)`` with a one-line error naming the first mismatching entries."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    shape = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or extra or shape:
        parts = []
        for what, names in (("missing from the checkpoint", missing), ("not in the network", extra),
                            ("of another shape", [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in shape])):
            if names:
                parts.append(f"{what}: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}")
        raise EBMError(f"the weights in {where} do not match the network ({'; '.join(parts)}); "
                       "pass the network the run was trained with")
    model.load_state_dict(state)


def build_model_from_run(run_dir: Path, device: str | torch.device = "cpu", network: nn.Module | None = None,
                         trust_code: bool = False) -> nn.Module:
    """``ebmlab.load``: config.json + data.json + newest checkpoint weights -> model in eval mode
    (a ``ConditionalEnergyModel`` for conditional and JEM runs).

    A run of a user's network needs ``network`` (weights are loaded into it; nothing is imported)
    or ``trust_code=True`` (the recorded class is imported and built); otherwise EBMError."""
    if not run_dir.is_dir():
        raise EBMError(f"run directory {str(run_dir)!r} does not exist")
    data = read_json(run_dir / "data.json", "data description (data.json)")
    check_data_description(data, run_dir / "data.json")
    if data["kind"] == "composite":
        from ebmlab.models.spec import from_spec
        model = from_spec(data["spec"], lambda src: build_model_from_run(_resolve(run_dir, src), device,
                                                                         trust_code=trust_code))
        return model.to(device).eval()
    config = RunConfig.from_dict(read_json(run_dir / "config.json", "run configuration (config.json)"))
    ck = latest_checkpoint(run_dir)
    if ck is None:
        raise EBMError(f"{run_dir} has no checkpoint yet; train it first (ebmlab train --resume {run_dir})")
    _, state, _ = load_checkpoint(ck)
    if config.net == "custom" and network is None:
        if not trust_code:
            raise EBMError(untrusted_message(config.network, str(run_dir)))
        network = import_network(config.network, str(run_dir))
    model = build_model(config, data, network)
    load_weights(model, state, ck / "model.safetensors")
    return model.to(device).eval()


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
