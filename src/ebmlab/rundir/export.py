"""Share a trained model without its training state: one ``.safetensors`` file and a JSON card beside it.

``ebmlab export RUN --out model.safetensors`` writes

    model.safetensors   the network's weights (the newest checkpoint's model.safetensors; its
                        ema.safetensors, the EMA of the weights, for a run with ema_decay), with the
                        card's recipe in the file's own metadata (key ``ebmlab``), so the file alone
                        rebuilds the model
    model.json          the card, for people and tools: what the data were, the full recipe
                        (config.json), the step and the last metrics row, and how to load it

and ``ebmlab.load("model.safetensors")`` (or ``ebmlab.load("model.json")``) returns the model, as
``ebmlab.load(RUN)`` does. Nothing of the optimiser, replay buffer or generators is exported (a
checkpoint's train_state.safetensors, often larger than the network), and nothing is unpickled
on load: the weights are safetensors and the recipe is JSON.

Composite runs are recipes over other runs, not networks: export each component instead.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from ebmlab.atomic import atomic_write_text, atomic_write_with
from ebmlab.errors import EBMError
from ebmlab.rundir.build import build_model, check_data_description, warn_dtype_conversions
from ebmlab.rundir.checkpoint import (_load_safetensors, check_finite_weights, check_weights, latest_checkpoint,
                                      load_checkpoint, load_ema, read_json)
from ebmlab.rundir.config import RunConfig
from ebmlab.rundir.logs import read_metrics
from ebmlab.rundir.network import import_network, untrusted_message

EXPORT_FORMAT = "ebmlab.export/1"
META_KEY = "ebmlab"


def card_path(weights: Path) -> Path:
    """The card beside an exported weights file: ``model.safetensors`` -> ``model.json``."""
    return Path(weights).with_suffix(".json")


def export_run(run_dir: str | Path, out: str | Path, force: bool = False) -> tuple[Path, Path]:
    """Write ``out`` (weights, ending in .safetensors) and its card ``out`` with .json; returns both paths."""
    if run_dir is None:      # TrainRun.run_dir of a run trained in memory
        raise EBMError("export_run needs a run directory, got None: a run trained with out=None is in memory only; "
                       "train with out=DIR to export it, or save run.model.state_dict() yourself")
    run_dir, out = Path(run_dir), Path(out)
    if out.suffix != ".safetensors":
        raise EBMError(f"--out must end in .safetensors, got {str(out)!r}")
    card_file = card_path(out)
    for p in (out, card_file):
        if (p.exists() or p.is_symlink()) and not force:
            raise EBMError(f"{p} already exists; use --force to replace it")
    if not run_dir.is_dir():
        raise EBMError(f"run directory {str(run_dir)!r} does not exist")
    data = read_json(run_dir / "data.json", "data description (data.json)")
    check_data_description(data, run_dir / "data.json")
    if data["kind"] == "composite":
        raise EBMError(f"{run_dir} is a composite (a recipe over other runs, no weights of its own); export each "
                       "component run, or share the folder with its components")
    config = read_json(run_dir / "config.json", "run configuration (config.json)")
    RunConfig.from_dict(config)                       # a damaged config is refused before anything is written
    ck = latest_checkpoint(run_dir)
    if ck is None:
        raise EBMError(f"{run_dir} has no checkpoint yet; train it first")
    step, state, _ = load_checkpoint(ck)
    # the weights sampling uses: the EMA of a run with ema_decay (the raw ones are for resuming only)
    ema = load_ema(ck)
    state = ema if ema is not None else state
    rows = read_metrics(run_dir)
    recipe = {"format": EXPORT_FORMAT, "config": config, "data": data, "step": step}
    out.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    atomic_write_with(out, lambda tmp: save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(recipe)}))
    card = {
        **recipe,
        "weights": out.name,
        "weights_are": (f"the exponential moving average of the trained weights (decay {config.get('ema_decay')})"
                        if ema is not None else "the trained weights"),
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "parameters": sum(int(v.numel()) for v in tensors.values()),
        "data_description": describe(config, data),
        "metrics": rows[-1] if rows else {},
        "how_to_load": f"import ebmlab; model = ebmlab.load({out.name!r})  # an nn.Module; model.log_density(x)",
        "exported_from": str(run_dir.resolve()),
    }
    if config.get("net") == "custom":
        card["how_to_load"] += ("; your own network: ebmlab.load(path, network=YourNet(...)) or trust_code=True "
                                f"to import {config.get('network', {}).get('class')}")
    atomic_write_text(card_file, json.dumps(card, indent=2))
    return out, card_file


def describe(config: dict[str, Any], data: dict[str, Any]) -> str:
    """One line saying what the model was trained on: "vector data (2 dims) from eight-gaussians"."""
    shape = "x".join(str(s) for s in data.get("event_shape", []))
    what = f"{data['kind']} data ({shape})"
    labels = f", labels {config['labels']}" if config.get("labels") else ""
    return f"{what} from {config.get('data') or 'an unnamed source'}{labels}; objective {config.get('objective', 'cd')}"


def is_export(path: Path) -> bool:
    """Whether ``path`` is an exported file (weights or card) rather than a run directory."""
    return Path(path).is_file() and Path(path).suffix in (".safetensors", ".json")


def load_export(path: str | Path, device: str | torch.device = "cpu", network: nn.Module | None = None,
                trust_code: bool = False) -> tuple[nn.Module, RunConfig, dict[str, Any]]:
    """(model in eval mode, its RunConfig, its data description) from an exported .safetensors or its .json card."""
    path = Path(path)
    if path.suffix == ".json":
        card = read_json(path, "model card")
        if not isinstance(card, dict) or card.get("format") != EXPORT_FORMAT or not isinstance(card.get("weights"), str):
            raise EBMError(f"{path} is not an ebmlab model card (format {EXPORT_FORMAT})")
        path = path.parent / Path(card["weights"]).name
    try:
        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata() or {}
    except FileNotFoundError:
        raise EBMError(f"exported weights file is missing: {path}") from None
    except Exception as e:
        raise EBMError(f"{path} is not a valid safetensors file ({type(e).__name__})") from None
    try:
        recipe = json.loads(meta[META_KEY])
        assert recipe["format"] == EXPORT_FORMAT
        config, data = RunConfig.from_dict(recipe["config"]), recipe["data"]
    except (KeyError, ValueError, TypeError, AssertionError):
        raise EBMError(f"{path} holds no ebmlab recipe in its metadata: not a file written by `ebmlab export`") from None
    check_data_description(data, path)
    if config.net == "custom" and network is None:
        if not trust_code:
            raise EBMError(untrusted_message(config.network, str(path)))
        network = import_network(config.network, str(path))
    model = build_model(config, data, network)
    check_weights(model, path)
    state = _load_safetensors(path)
    check_finite_weights(state, path)
    warn_dtype_conversions(model, state, path)
    model.load_state_dict(state)
    return model.to(device).eval(), config, data
