"""Build a model from a run's configuration and data description (used by training and ``load``)."""
from __future__ import annotations

import math
import warnings
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ebmlab.rundir.checkpoint import (check_format_version, check_weights, latest_checkpoint, read_json,
                                      sampling_weights)
from ebmlab.rundir.config import LABELLED_OBJECTIVES, RunConfig
from ebmlab.rundir.network import import_network, untrusted_message
from ebmlab.errors import EBMError
from ebmlab.models.conditional import ConditionalEnergyModel
from ebmlab.models.energy import EnergyModel
from ebmlab.models.potts import Potts
from ebmlab.models.rbm import RBM
from ebmlab.nets.binary_image import BinaryConvNet
from ebmlab.models.noise_conditional import NoiseConditionalEnergyModel
from ebmlab.models.recovery import RecoveryEnergyModel
from ebmlab.nets.digits import DigitsLogitsNet
from ebmlab.nets.levels import LevelConvNet
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


def describe_binary_data(d: int, image_shape: list[int] | None = None) -> dict[str, Any]:
    """data.json of binary vectors {0, 1}^d: the box [-0.5, 1.5] holds both values of every bit (the
    guard's chain check reads it), and the fixed standardisation (x - 0.5) / 0.5 maps bits to ±1 (a
    data-fitted one divides by ~0 on a bit that never changes, e.g. the corner pixels of digits)."""
    desc: dict[str, Any] = {"kind": "vector", "event_shape": [d], "bounds": [[-0.5, 1.5]] * d,
                            "mean": [0.5] * d, "std": [0.5] * d, "binary": True}
    if image_shape is not None:
        desc["image_shape"] = list(image_shape)
        # net "auto" on binary images is the conv net (nets/binary_image.py) for runs that record this;
        # runs written before it have no such key and keep their MLP when loaded
        desc["default_net"] = "conv"
    return desc


def describe_categorical_data(n: int, k: int, value_shape: list[int]) -> dict[str, Any]:
    """data.json of one-hot categorical vectors [d*K] (``n`` = d*K): as for binary data, the box
    [-0.5, 1.5] per coordinate and the fixed map (x - 0.5) / 0.5 to ±1; K and one example's integer
    shape (``value_shape``) so samples come back as integers."""
    return {"kind": "vector", "event_shape": [n], "bounds": [[-0.5, 1.5]] * n, "mean": [0.5] * n,
            "std": [0.5] * n, "categories": int(k), "value_shape": list(value_shape)}


# BinaryConvNet's width for net auto/conv on binary images when --net-width is not given
BINARY_CONV_WIDTH = 16


def _build_binary(config: RunConfig, data: dict[str, Any]) -> nn.Module:
    """Binary data: an ``RBM`` with ``config.hidden`` hidden units (net "rbm"), else the MLP on ±1 bits
    with no support box (every state of {0, 1}^d is in the support)."""
    d = data["event_shape"][0]
    if config.net == "rbm":
        return RBM(d, config.hidden)
    if config.net == "potts":
        # small random couplings, drawn from the seeded global generator as every network's initial
        # weights are: exactly zero would leave the divergence guard's relative update bound no scale
        return Potts(0.01 * torch.randn(d, d), data["categories"], 0.01 * torch.randn(d), learn=True)
    image_shape = data.get("image_shape")
    if config.net == "conv" or (config.net == "auto" and data.get("default_net") == "conv"):
        if data.get("categories"):
            raise EBMError("net 'conv' does not take categorical data (one-hot values); use net auto (an MLP) "
                           "or potts")
        if not image_shape:
            raise EBMError("net 'conv' on binary data needs binary images (N, C, H, W); these are vectors: use net "
                           "auto (an MLP)")
        if min(image_shape[1:]) < 2:
            raise EBMError(f"binary images of shape {tuple(image_shape)} are too small for the binary conv net (H, W "
                           ">= 2): use net mlp (--net mlp), an MLP on the bits")
        return EnergyModel(BinaryConvNet(image_shape, config.net_width or BINARY_CONV_WIDTH, config.hidden))
    if config.net not in ("auto", "mlp"):
        if data.get("categories"):
            raise EBMError(f"categorical data is modelled by the MLP (net mlp) or a Potts model (net potts), not "
                           f"net {config.net!r}")
        raise EBMError(f"binary data is modelled by the MLP (net mlp), a conv net for binary images (net conv) "
                       f"or an RBM (net rbm), not net {config.net!r}")
    net = nn.Sequential(_standardize(config, data),
                        MLP(d, config.hidden, config.depth, config.spectral_norm))
    return EnergyModel(net)


# width of ``DigitsLogitsNet`` for conditional/JEM runs on 8x8 images. 16, not the net's default 32:
# a Langevin step (forward + backward of 128 digits, 1 CPU thread) costs 7 ms at width 16 and
# 21 ms at 32, and training runs 20-60 of them per step on a 2-core CPU.
DIGITS_CLASSIFIER_WIDTH = 16


def _standardize(config: RunConfig, data: dict[str, Any]) -> Standardize:
    """The fixed front of the vector MLP: gain x (x - mean) / std, the data's mean and std from data.json and the
    gain ``config.input_gain`` (1 for runs written before it existed)."""
    return Standardize(torch.tensor(data["mean"]), torch.tensor(data["std"]) / config.input_gain)


def check_new_run_net(config: RunConfig, data: dict[str, Any]) -> None:
    """A new run's ``--net`` fits its data: an image network on continuous vectors is refused (``build_model``
    gave them the MLP whatever the config named), and so is ``mlp`` on continuous images (they got the
    default conv net). Only for new runs: a run directory written with such a config still opens, as the
    network it trained."""
    if data["kind"] == "vector" and not (data.get("binary") or data.get("categories")) \
            and config.net in ("conv", "resnet", "shortrun"):
        raise EBMError(f"net {config.net!r} is a network for images; this data is {data['event_shape'][0]}-dimensional "
                       "vectors: use net auto or mlp (the MLP)")
    if data["kind"] == "image" and config.net == "mlp":
        # image_net reads "mlp" as the default conv net (the old runs' meaning): a new run asking for an MLP
        # got a conv net without a word
        raise EBMError("net 'mlp' is for vectors; for images use net auto (conv or resnet by size), conv, resnet or "
                       "shortrun, or flatten the images to vectors (x.reshape(len(x), -1)) for an MLP")
    if config.input_gain != 1.0 and not (data["kind"] == "vector" and config.net in ("auto", "mlp")):
        # only the vector MLP has the standardised front that the gain scales: elsewhere it would be ignored
        net = ("your own network" if config.net == "custom"
               else f"this run's network ({config.net} on {data['kind']} data)")
        raise EBMError(f"input_gain scales the standardised input of the MLP on vector data; {net} has no such "
                       "input: leave input_gain at 1")


def build_model(config: RunConfig, data: dict[str, Any],
                network: nn.Module | None = None) -> EnergyModel | ConditionalEnergyModel | RBM:
    """A fresh model for ``data`` (the dict stored as data.json).

    Unconditional runs get an ``EnergyModel``; conditional and JEM runs (``config.objective``) a
    ``ConditionalEnergyModel`` with K = ``data["n_classes"]`` logits: ``DigitsLogitsNet`` for
    1x8x8 images, an MLP with K outputs for vectors. A run of a user's network (``config.net ==
    "custom"``) wraps ``network`` as its record ``config.network`` says (parametrisation, bounds).
    """
    if config.objective == "drl":
        return _build_recovery(config, data)
    if config.objective == "dsm" and config.dsm_conditional:
        return _build_noise_conditional(config, data)
    if config.net == "custom":
        return wrap_custom_network(config, data, network)
    if data.get("categories") and config.net == "rbm":
        raise EBMError("net 'rbm' has Bernoulli visible units: it models binary data, not categorical data; "
                       "use net auto (an MLP on the one-hot values)")
    if config.net == "potts" and not data.get("categories"):
        raise EBMError("net 'potts' is the pairwise model of categorical data: declare integer data with "
                       "--categories K, or use net auto")
    if config.net == "rbm" and not data.get("binary"):
        raise EBMError("net 'rbm' models binary {0,1} data (Bernoulli visible units); this data is continuous "
                       "(declare 0/1 data with --binary, or use net auto)")
    if (data.get("binary") or data.get("categories")) and config.objective == "cd":
        return _build_binary(config, data)
    if config.objective in LABELLED_OBJECTIVES:
        return _build_conditional(config, data)
    if data["kind"] == "vector":
        d = data["event_shape"][0]
        net = nn.Sequential(_standardize(config, data),
                            MLP(d, config.hidden, config.depth, config.spectral_norm,
                                activation=config.activation, features=config.net_features))
        return EnergyModel(net, bounds=data["bounds"])
    if data["kind"] == "image":
        from ebmlab.nets.choose import image_net
        c, h, _ = data["event_shape"]
        return EnergyModel(image_net(config.net, c, h, config.net_width, spectral_norm=config.spectral_norm))
    if data["kind"] == "composite":
        raise EBMError("a composite run directory has no network of its own to train")
    raise EBMError(f"unknown data kind {data['kind']!r} in data.json")


def _level_conv_net(config: RunConfig, data: dict[str, Any], what: str, instead: str, levels: int) -> LevelConvNet:
    """The level-conditioned conv net (``nets.levels``) of drl and noise-conditional dsm runs, which are
    for images only and bring their own net: anything else is refused in one line naming ``what`` and
    the setting to use ``instead`` on vector data."""
    # binary images are trained as bit vectors: discrete before they are images, and the continuous advice
    # (dsm, ssm) refuses discrete data too, and so does nce (its noise is continuous)
    discrete = "categorical" if data.get("categories") else "binary" if data.get("binary") else None
    if discrete:
        raise EBMError(f"{what} trains on continuous images; for {discrete} data use cd")
    if data["kind"] != "image":
        raise EBMError(f"{what} trains on images; for vector or 2-D data use {instead}")
    if config.net not in ("auto", "conv"):
        raise EBMError(f"{what} has its own level-conditioned conv net (net auto or conv), not net {config.net!r}")
    c, h, _ = data["event_shape"]
    return LevelConvNet(c, h, levels, config.net_width or 16)


def _build_recovery(config: RunConfig, data: dict[str, Any]) -> RecoveryEnergyModel:
    """A drl run: ``drl_levels`` conditional EBMs from one level-conditioned conv net; images only (the
    objective walks pixel noise levels from N(0, I) down to the data)."""
    net = _level_conv_net(config, data, "objective 'drl' (diffusion recovery likelihood)", "cd, dsm, ssm or nce",
                          config.drl_levels)
    return RecoveryEnergyModel(net, config.drl_levels, config.drl_energy_scale)


def _build_noise_conditional(config: RunConfig, data: dict[str, Any]) -> NoiseConditionalEnergyModel:
    """A noise-conditional dsm run: f(x, sigma_i) from one level-conditioned conv net, one level per entry
    of ``dsm_sigmas``; images only."""
    net = _level_conv_net(config, data, "dsm_conditional (a noise-conditional network)",
                          "dsm with dsm_conditional false", len(config.dsm_sigmas))
    return NoiseConditionalEnergyModel(net, config.dsm_sigmas)


def _build_conditional(config: RunConfig, data: dict[str, Any]) -> ConditionalEnergyModel:
    k = data.get("n_classes")
    if not isinstance(k, int) or k < 1:
        raise EBMError(f"a {config.objective} run needs the number of classes (n_classes) in data.json; "
                       "the run directory is damaged")
    if data["kind"] == "vector":
        d = data["event_shape"][0]
        net = nn.Sequential(_standardize(config, data),
                            MLP(d, config.hidden, config.depth, config.spectral_norm, out=k,
                                activation=config.activation, features=config.net_features))
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
    if config.objective in LABELLED_OBJECTIVES:
        return ConditionalEnergyModel(network, n_classes=data.get("n_classes"), bounds=bounds)
    return EnergyModel(network, parametrisation=ref.get("parametrisation", "exp"), bounds=bounds)


def build_model_from_run(run_dir: Path, device: str | torch.device = "cpu", network: nn.Module | None = None,
                         trust_code: bool = False, _within: tuple[Path, ...] = ()) -> nn.Module:
    """``ebmlab.load``: config.json + data.json + newest checkpoint weights -> model in eval mode
    (a ``ConditionalEnergyModel`` for conditional and JEM runs).

    A run of a user's network needs ``network`` (weights are loaded into it; nothing is imported)
    or ``trust_code=True`` (the recorded class is imported and built); otherwise EBMError.
    ``_within``: the composites being loaded around this one, so a composite that lists itself
    (directly or through others) is one EBMError instead of a RecursionError."""
    if run_dir.is_file():
        raise EBMError(f"{str(run_dir)!r} is a file, not a run directory or a .safetensors file written by "
                       "`ebmlab export`; give the run's folder (to train on a data file, use ebmlab.train)")
    if not run_dir.is_dir():
        raise EBMError(f"run directory {str(run_dir)!r} does not exist")
    data = read_json(run_dir / "data.json", "data description (data.json)")
    check_data_description(data, run_dir / "data.json")
    if data["kind"] == "composite":
        from ebmlab.models.spec import from_spec
        here = _check_no_cycle(run_dir, _within)
        model = from_spec(data["spec"], lambda src: build_model_from_run(resolve_component(run_dir, src), device,
                                                                         trust_code=trust_code, _within=here))
        return model.to(device).eval()
    config = RunConfig.from_dict(read_json(run_dir / "config.json", "run configuration (config.json)"))
    ck = latest_checkpoint(run_dir)
    if ck is None:
        raise EBMError(f"{run_dir} has no checkpoint yet; train it first (ebmlab train --resume {run_dir})")
    # a run with ema_decay samples with its averaged weights (training/ema.py); the raw ones stay for --resume
    state, weights_file = sampling_weights(ck)
    if config.net == "custom" and network is None:
        if not trust_code:
            raise EBMError(untrusted_message(config.network, str(run_dir)))
        network = import_network(config.network, str(run_dir))
    model = build_model(config, data, network)
    check_weights(model, weights_file)
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


# bounds on what a data.json may describe: far beyond any real run, small enough that building the
# model cannot exhaust memory or the stack
MAX_VECTOR_DIM = 100_000
MAX_IMAGE_SIDE = 1024
MAX_CLASSES = 100_000
MAX_SPEC_DEPTH = 32


def image_shape_ok(shape: Any) -> bool:
    """Whether a run directory can hold images of event shape ``shape``: [C, S, S], C 1 or 3, 4 <= S <= 1024
    (what the built-in image networks, the PNG grids and inpainting are built for)."""
    return _int_list(shape, 3, 1, MAX_IMAGE_SIDE) and shape[0] in (1, 3) and shape[1] == shape[2] >= 4


def check_data_description(data: Any, where: Path) -> None:
    """A data.json must be an object with the keys its kind needs, of the right types and ranges;
    anything else is a damaged run (one EBMError line, never a TypeError deeper down)."""
    if not isinstance(data, dict):
        raise EBMError(f"{where} is not a data description (expected a JSON object); the run directory is damaged")
    check_format_version(data.get("format_version"), where)
    kind = data.get("kind")
    need = {"vector": ("event_shape", "bounds", "mean", "std"), "image": ("event_shape",),
            "composite": ("spec",)}.get(kind) if isinstance(kind, str) else None
    if need is None:
        raise EBMError(f"{where} has an unknown data kind {_short(kind)}; the run directory is damaged")
    missing = [k for k in need if k not in data]
    if missing:
        raise EBMError(f"{where} lacks {', '.join(missing)}; the run directory is damaged")

    def bad(key: str, expected: str) -> EBMError:
        return EBMError(f"{where}: {key} must be {expected}, got {_short(data.get(key))}; the run directory is damaged")

    if kind == "vector":
        shape = data["event_shape"]
        if not _int_list(shape, 1, 1, MAX_VECTOR_DIM):
            raise bad("event_shape", f"[d] with 1 <= d <= {MAX_VECTOR_DIM}")
        d = shape[0]
        b = data["bounds"]
        if not (isinstance(b, list) and len(b) == d and all(_num_list(r, 2) and r[0] < r[1] for r in b)):
            raise bad("bounds", f"{d} pairs [low, high] of finite numbers with low < high")
        for key in ("mean", "std"):
            if not _num_list(data[key], d) or (key == "std" and not all(v > 0 for v in data[key])):
                raise bad(key, f"{d} finite numbers" + (" > 0" if key == "std" else ""))
    elif kind == "image":
        shape = data["event_shape"]
        if not image_shape_ok(shape):
            raise bad("event_shape", f"[C, S, S] with C 1 or 3 and 4 <= S <= {MAX_IMAGE_SIDE}")
    else:
        _check_spec(data["spec"], where, 0)
    if "n_classes" in data and not _int_in(data["n_classes"], 1, MAX_CLASSES):
        raise bad("n_classes", f"an integer in 1..{MAX_CLASSES}")
    if "scaling" in data:
        sc = data["scaling"]
        if not (isinstance(sc, dict) and all(_num_or_list(sc.get(k)) for k in ("low", "high"))
                and isinstance(sc.get("mode", "global"), str) and isinstance(sc.get("kind", "affine"), str)):
            raise bad("scaling", "an object with numeric low and high")
    if not isinstance(data.get("source", {}), dict):
        raise bad("source", "an object")
    if not isinstance(data.get("name", ""), str):
        raise bad("name", "a string")


def _check_spec(spec: Any, where: Path, depth: int) -> None:
    """The composition recipe's structure and numbers (ebmlab.models.compose.from_spec rebuilds it)."""
    def damaged(what: str) -> EBMError:
        return EBMError(f"{where}: composition spec {what}; the run directory is damaged")

    if depth > MAX_SPEC_DEPTH:
        raise damaged(f"is nested deeper than {MAX_SPEC_DEPTH} levels")
    if not isinstance(spec, dict):
        raise damaged(f"node must be an object, got {_short(spec)}")
    if not isinstance(spec.get("op"), str):
        raise damaged(f"needs a string 'op', got {_short(spec.get('op'))}")
    comps = spec.get("components")
    if not isinstance(comps, list) or not comps:
        raise damaged(f"needs a non-empty list of components, got {_short(comps)}")
    for c in comps:
        if isinstance(c, dict):
            _check_spec(c, where, depth + 1)
        elif not isinstance(c, str) or not c:
            raise damaged(f"component must be a run directory path or a nested spec, got {_short(c)}")
    w = spec.get("weights")
    if w is not None and not _num_list(w, len(comps) if spec["op"] != "not" else None):
        raise damaged(f"weights must be a list of finite numbers, got {_short(w)}")
    if spec["op"] == "not" and w is not None and len(w) != 2:
        raise damaged(f"'not' weights must be [w_a, alpha], got {_short(w)}")
    if spec["op"] == "temperature" and not (_finite(spec.get("T")) and spec["T"] > 0):
        raise damaged(f"temperature T must be a finite number > 0, got {_short(spec.get('T'))}")
    if spec["op"] == "class" and not _int_in(spec.get("class"), 0, MAX_CLASSES):
        raise damaged(f"class must be an integer in 0..{MAX_CLASSES}, got {_short(spec.get('class'))}")
    if spec.get("log_z") is not None and not _nested_nums(spec["log_z"]):
        raise damaged(f"log_z must be a number, got {_short(spec['log_z'])}")
    if spec["op"] == "condition":
        for key in ("fixed_values", "fixed_mask"):
            if not _nested_nums(spec.get(key)):
                raise damaged(f"{key} must be a list of numbers")


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int_in(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _int_list(v: Any, n: int, lo: int, hi: int) -> bool:
    return isinstance(v, list) and len(v) == n and all(_int_in(x, lo, hi) for x in v)


def _num_list(v: Any, n: int | None) -> bool:
    return isinstance(v, list) and (n is None or len(v) == n) and all(_finite(x) for x in v)


def _num_or_list(v: Any) -> bool:
    return _finite(v) or (isinstance(v, list) and 0 < len(v) <= 4096 and all(_finite(x) for x in v))


def _nested_nums(v: Any, depth: int = 0) -> bool:
    if _finite(v) or isinstance(v, bool):
        return True
    return isinstance(v, list) and depth < 8 and all(_nested_nums(x, depth + 1) for x in v)


def _check_no_cycle(run_dir: Path, within: tuple[Path, ...]) -> tuple[Path, ...]:
    here = run_dir.resolve()
    if here in within:
        chain = " -> ".join(str(p) for p in (*within[within.index(here):], here))
        raise EBMError(f"composite {run_dir} lists itself as a component (cycle: {chain}); "
                       "the run directory is damaged")
    if len(within) >= MAX_SPEC_DEPTH:
        raise EBMError(f"composite {run_dir} nests other composites deeper than {MAX_SPEC_DEPTH} levels")
    return (*within, here)


def component_dirs(run_dir: Path, _within: tuple[Path, ...] = ()) -> set[Path]:
    """Every run directory a composite depends on, at any depth (resolved), cycles refused;
    the empty set for a plain run. ``compose --out`` may not be any of them."""
    run_dir = Path(run_dir)
    data = read_json(run_dir / "data.json", "data description (data.json)")
    check_data_description(data, run_dir / "data.json")
    if data["kind"] != "composite":
        return set()
    here = _check_no_cycle(run_dir, _within)
    out: set[Path] = set()
    stack = [data["spec"]]
    while stack:
        node = stack.pop()
        for c in node["components"]:
            if isinstance(c, dict):
                stack.append(c)
            else:
                p = resolve_component(run_dir, c, must_exist=False)
                out.add(p.resolve())
                if p.is_dir():
                    out |= component_dirs(p, here)
    return out


def stored_component_path(component: Path, composite: Path) -> str:
    """How a composite records a component run: relative to the composite when the component lies
    under the composite's parent folder (``runs/ab`` -> ``../a``), so the two can be copied or moved
    together; absolute when it lies elsewhere (a relative path up and out of the tree would break
    on any move of the composite alone)."""
    comp, home = Path(component).resolve(), Path(composite).resolve()
    if home.parent == comp or home.parent in comp.parents:
        return os.path.relpath(comp, home)
    return str(comp)


def resolve_component(run_dir: Path, src: str, must_exist: bool = True) -> Path:
    """The component run directory ``src`` of composite ``run_dir`` (relative paths are relative to
    ``run_dir``; composites written before 0.2.1 store absolute ones); a missing one is one EBMError."""
    p = Path(src)
    p = p if p.is_absolute() else (Path(run_dir) / p).resolve()
    if must_exist and not p.is_dir():
        raise EBMError(f"composite {run_dir}: component run {src!r} not found ({p}); move or copy a composite "
                       "together with its components, or compose it again")
    return p
