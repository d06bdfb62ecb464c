"""Start, resume and describe training runs: the one place that turns user input into a Trainer.

Order matters for "nothing half-written": everything is validated (config, data, model) before
the run directory is created or an existing one is replaced.
"""
from __future__ import annotations

import hashlib
import signal
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ebmlab.rundir.build import (MAX_IMAGE_SIDE, build_model, check_data_description, check_new_run_net,
                                 describe_binary_data, describe_categorical_data, describe_vector_data, image_shape_ok)
from ebmlab.rundir.checkpoint import check_weights, latest_checkpoint, read_json, with_fallback_hint
from ebmlab.rundir.layout import prepare_run_dir, refuse_symlinks
from ebmlab.rundir.lock import RunLock
from ebmlab.rundir.config import LABELLED_OBJECTIVES, RunConfig, check_new_run_config
from ebmlab.rundir.header import write_run_header
from ebmlab.data.binary import check_binary_data, flatten_binary, is_binary
from ebmlab.data.categorical import categorical_array, describe_categorical, encode_categorical
from ebmlab.data.sources import DataSet, load_data, mark_binary, read_labels, validate_array, with_recorded_scaling
from ebmlab.data.stream import dataset_from_torch, is_torch_data, unwrap_loader
from ebmlab.data.scaling import Scaling
from ebmlab.device import resolve_device, usable_cpu_threads
from ebmlab.errors import EBMError
from ebmlab.models.conditional import ConditionalEnergyModel
from ebmlab.models.energy import EnergyModel
from ebmlab.rundir.network import import_network, network_reference, untrusted_message
from ebmlab.training import distributed
from ebmlab.samplers.compiled import check_compile_available
from ebmlab.training.negatives import check_binary_sampler, sampler_from_config
from ebmlab.training.objectives import make_objective
from ebmlab.training.presets import resolve_config
from ebmlab.training.schedule import with_new_horizon
from ebmlab.training.trainer import Trainer, TrainResult, check_shards


def describe_data(dataset: DataSet, config: RunConfig) -> dict[str, Any]:
    """The JSON data description stored in data.json (support box, standardisation, scaling)."""
    if dataset.describe.get("categories"):
        desc = describe_categorical_data(dataset.train.shape[1], dataset.describe["categories"],
                                         dataset.describe["value_shape"])
    elif dataset.describe.get("binary"):
        desc = describe_binary_data(dataset.train.shape[1], dataset.describe.get("image_shape"))
    elif dataset.kind == "vector":
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


def check_image_size_used(dataset: DataSet, image_size: int | None) -> None:
    """``image_size`` resizes an image folder's pictures; for any other data it would be silently ignored
    (the network sees the data's own size) while config.json recorded it: EBMError unless it is that size."""
    if image_size is None or "folder_report" in dataset.describe:
        return
    shape = dataset.describe.get("image_shape") or (list(dataset.event_shape) if dataset.kind == "image" else None)
    if shape is None:
        raise EBMError(f"--image-size {image_size} is for images; {dataset.name!r} holds vectors of shape "
                       f"{tuple(dataset.event_shape)}: drop --image-size")
    if tuple(shape[1:]) != (image_size, image_size):
        raise EBMError(f"--image-size {image_size} resizes an image folder's pictures; {dataset.name!r} holds "
                       f"{shape[1]}x{shape[2]} images, which are used at their own size: drop --image-size, or "
                       f"resize them (ebmlab prepare FOLDER --size {image_size} makes a cache from a folder)")


def warn_images_outside_model_scale(dataset: DataSet) -> None:
    """Float images from Python (an array, a tensor, a Dataset) are used as given, in the model scale; the
    image chains are clamped to [-1, 1], so values beyond it are out of their reach, and images in [0, 1]
    (torchvision's ToTensor) fill only half of it: say so once. Read from what is in memory (an array whole; a
    Dataset's held-out split), not item by item."""
    if dataset.kind != "image" or dataset.scaling is not None:
        return
    parts = [t for t in (dataset.train, dataset.test) if isinstance(t, torch.Tensor) and t.is_floating_point()]
    if not parts:
        return
    lo, hi = min(float(t.min()) for t in parts), max(float(t.max()) for t in parts)
    if lo < -1.0 - 1e-6 or hi > 1.0 + 1e-6:
        warnings.warn(f"these float images span [{lo:.4g}, {hi:.4g}], used as given, but ebmlab's image chains "
                      "live in the model scale [-1, 1] and cannot reach values beyond it: rescale them (x / 127.5 - "
                      "1 for 0..255) or pass uint8 pixels, which are mapped from 0..255")
    elif lo >= 0.0 and hi > 0.5:
        # torchvision's ToTensor gives [0, 1]: used as given, the data fill half of the chains' box and the
        # samples from noise must first learn to leave the other half (the darkest pixel sits at the box's middle)
        warnings.warn(f"these float images span [{lo:.4g}, {hi:.4g}], inside [0, 1], used as given; ebmlab's image "
                      "chains start from noise over [-1, 1], so half of their box holds no data: pass x * 2 - 1 (or "
                      "Normalize(0.5, 0.5) after ToTensor) to use all of it")


DataLike = Any   # a built-in name or path (str), an ndarray / tensor, a torch Dataset or DataLoader


def dataset_from(data: DataLike, config: RunConfig) -> DataSet:
    """The train/test ``DataSet`` for ``data``: built-in name or path, array/tensor, Dataset or DataLoader."""
    if is_torch_data(data):
        ds, _ = dataset_from_torch(data, config.seed, config.test_fraction, labelled=config.objective in LABELLED_OBJECTIVES)
        return ds
    if isinstance(data, (np.ndarray, torch.Tensor)):
        x = validate_array(data, "array", keep_uint8=True) if config.categories is None else categorical_array(data, "array")
        if x.dtype == torch.uint8 and x.ndim == 2:
            x = x.float()                      # uint8 vectors: standardised like any other vectors
        n_test = max(1, int(round(x.shape[0] * config.test_fraction)))
        if x.shape[0] - n_test < 2:
            raise EBMError(f"array: too few points ({x.shape[0]}) to hold out a test set and train on at least 2")
        perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(config.seed))
        if config.categories is not None:
            onehot, shape = encode_categorical(x, config.categories, "array")
            return describe_categorical(DataSet(onehot[perm[n_test:]], onehot[perm[:n_test]], "vector", "array",
                                                {"path": "<array>"}), config.categories, shape)
        binary = config.binary is not False and (config.binary or is_binary(x))
        if binary:
            if config.binary:
                check_binary_data(x, "array")
            x, image_shape = flatten_binary(x)
        ds = DataSet(x[perm[n_test:]], x[perm[:n_test]], "vector" if x.ndim == 2 else "image", "array",
                     {"path": "<array>"})
        if binary:
            mark_binary(ds, image_shape)
        elif x.dtype == torch.uint8:
            # uint8 images are pixels 0..255, as in a uint8 Dataset or an image folder: kept uint8 and mapped to
            # the model's [-1, 1] per batch (used as given, they sat far outside the chains' box [-1, 1])
            ds.scaling = Scaling.from_range(0.0, 255.0)
            ds.describe["scaling"] = ds.scaling.to_dict()
        if config.labels is not None:
            y = read_labels(config.labels, x.shape[0])
            ds.y_train, ds.y_test, ds.n_classes = y[perm[n_test:]], y[perm[:n_test]], int(y.max()) + 1
        return ds
    if not isinstance(data, (str, Path)):
        raise EBMError(f"data must be a built-in set name, a path, an array or tensor, a torch Dataset or a "
                       f"DataLoader; got {type(data).__name__}")
    return load_data(str(data), config.seed, config.n_test, config.test_fraction, config.image_size, config.labels,
                     binary=config.binary, categories=config.categories)


def data_spec(data: DataLike) -> str:
    """What config.json records as ``data``: an absolute path, a built-in name, or a placeholder for
    data that lives only in the caller's Python process (it must be passed again to resume)."""
    if is_torch_data(data):
        return f"<{type(data).__name__}>"
    if isinstance(data, (str, Path)):
        return str(Path(data).resolve()) if Path(data).exists() else str(data)   # --resume from anywhere
    return "<array>"


def resolve_labels_path(settings: dict[str, Any]) -> None:
    """A labels file given by a relative path becomes absolute in ``settings`` (as config.json records it,
    so a resume from another directory finds it); "builtin" and missing paths are left for validation."""
    lab = settings.get("labels")
    if isinstance(lab, str) and lab not in ("", "builtin") and Path(lab).exists():
        settings["labels"] = str(Path(lab).resolve())


def in_memory(spec: str) -> bool:
    return spec.startswith("<") and spec.endswith(">")


def start_run(data: DataLike, out: str | Path | None = None, force: bool = False,
              callbacks: list[Any] | tuple = (), config: RunConfig | None = None, network: nn.Module | None = None,
              network_kwargs: dict[str, Any] | None = None, **overrides: Any) -> tuple[Trainer, nn.Module]:
    """Validate everything, build the model, create the run directory; returns an unstarted Trainer.

    ``network``: a user's ``nn.Module`` (f(x) of shape [B]) or ``EnergyModel`` to train instead of the
    built-in network; recorded by class name and ``network_kwargs`` (see rundir/network.py)."""
    spec = data_spec(data)
    resolve_labels_path(overrides)
    if network is not None:
        overrides["net"] = "custom"
    source = spec if isinstance(data, (str, Path)) else data
    if config is None:
        first = resolve_config(spec, overrides)            # validates flags before any data is read
        config_device(first)                               # an unavailable device fails before any work
        if is_torch_data(data) and overrides.get("batch_size") is None:
            loader_batch = unwrap_loader(data)[1]
            if loader_batch:                               # a DataLoader's batch size is the user's choice
                if loader_batch == 1:      # DataLoader's own default: most likely never chosen
                    warnings.warn("the DataLoader's batch size is 1 (DataLoader's default), so each step trains "
                                  "on one point; give the DataLoader a batch_size, or batch_size= to ebmlab.train")
                overrides["batch_size"] = loader_batch
        dataset = dataset_from(source, first)
        config = resolve_config(spec, overrides, dataset=dataset)   # the preset follows the data
    else:
        check_new_run_config(config)                     # resolve_config checks the configs it makes
        dataset = dataset_from(source, config)
    check_image_size_used(dataset, config.image_size)
    if make_objective(config).needs_labels and dataset.y_train is not None and (dataset.n_classes or 0) < 2:
        # else the one-output network failed its first forward pass with a message about logits [B, K]
        raise EBMError(f"objective {config.objective!r} learns p(y | x) and needs labels of at least two classes; "
                       f"these labels hold {dataset.n_classes or 0}")
    if distributed.current().is_main:       # said once, not by every process of an --nproc run
        folder = dataset.describe.get("folder_report")
        if folder:
            from ebmlab.data.images import FolderReport
            report = FolderReport(**folder)
            if report.left_out:
                warnings.warn(report.summary())     # files left out of the training set, by name
        warn_images_outside_model_scale(dataset)
    config = config.replace(device=str(config_device(config)))
    desc = describe_data(dataset, config)
    if desc["kind"] == "image" and (network is None or out is not None) and not image_shape_ok(desc["event_shape"]):
        # else a built-in net fails on the first batch, and a run of the user's own net is written with a
        # data.json that ebmlab.load and --resume refuse as damaged
        c, h, w = desc["event_shape"]
        if "folder_report" in desc["source"] and h < 4:
            raise EBMError(f"--image-size {h} is too small: ebmlab's image runs take sides 4 <= S <= {MAX_IMAGE_SIDE}; "
                           "use --image-size 4 or more")
        if w in (1, 3, 4) and c not in (1, 3, 4):
            raise EBMError(f"images of shape {(c, h, w)} look like (N, H, W, C), channels last; ebmlab takes "
                           "(N, C, H, W): transpose them, e.g. np.transpose(x, (0, 3, 1, 2))")
        raise EBMError(f"images of shape {tuple(desc['event_shape'])}: ebmlab's image runs take square images "
                       f"[C, S, S] with C 1 (grey) or 3 (RGB) and 4 <= S <= {MAX_IMAGE_SIDE}; crop or resize them"
                       + ("" if network is None else " (your own network trains on them in memory, with out=None)"))
    torch.manual_seed(config.seed)            # the network's initial weights, the only global-RNG use
    check_new_run_net(config, desc)             # a user's network too: it has no front for input_gain to scale
    if network is None:
        model = build_model(config, desc)
    else:
        net, ref = user_network(network, config, desc, network_kwargs)
        config = config.replace(network=ref)
        model = build_model(config, desc, net)
    check_binary_sampler(config, model, desc)             # binary data <-> discrete sampler, before any write
    # under torchrun: join the other processes (all of them got this far on the same input)
    group, device = distributed.init(torch.device(config.device))
    _check_model(model, dataset, config)
    objective = make_objective(config)
    objective.check_data(dataset)                          # e.g. score matching on binary data: refused here
    # the sampler as the Trainer's chains or, for an objective without them (dsm, ssm, nce), as generation
    # (sample, plot, eval and the run's final picture) will build it: mh-jump on images, recovery on a model
    # without levels are refused there, before the run directory is written, not after training
    sampler_from_config(config, model, desc)
    if objective.needs_negatives:
        # and --compile's compiler
        if config.compile:
            check_compile_available()
    elif config.compile and group.is_main:
        # --compile compiles the chains' density (samplers/compiled.py); without chains it would be silently
        # nothing (compile_seconds 0 in every metrics row), so say so once
        warnings.warn(f"--compile has no effect with objective {config.objective!r}: it compiles the density the "
                      "negative MCMC chains sample, and this objective runs none")
    check_shards(config, dataset, group.world_size)        # before rank 0 touches the run directory
    run_dir = Path(out) if out is not None else None
    lock = None

    def prepare() -> None:                 # rank 0 alone creates, locks and writes the run directory
        nonlocal lock
        if run_dir is None or not group.is_main:
            return
        prepare_run_dir(run_dir, force)
        lock = RunLock(run_dir)
        write_run_header(run_dir, config, desc)

    try:
        group.together(prepare)
        trainer = Trainer(config, dataset, desc, model, run_dir, callbacks, group, device)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    trainer.run_lock = lock
    return trainer, model


def resume_run(run_dir: str | Path, callbacks: list[Any] | tuple = (), steps: int | None = None,
               data: DataLike | None = None, network: nn.Module | None = None, trust_code: bool = False) -> Trainer:
    """A Trainer restored from the newest checkpoint of ``run_dir`` (optionally with more steps).

    Runs trained on data from Python (an array, a Dataset, a DataLoader) need that ``data`` again, and
    runs of a user's network need ``network`` (or ``trust_code``); the data's fingerprint must match."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise EBMError(f"cannot resume: {str(run_dir)!r} is not a run directory")
    refuse_symlinks(run_dir)
    config = RunConfig.from_dict(read_json(run_dir / "config.json", "run configuration (config.json)"))
    desc = read_json(run_dir / "data.json", "data description (data.json)")
    check_data_description(desc, run_dir / "data.json")
    group, device = distributed.init(config_device(config))
    if data is None and in_memory(config.data):
        raise EBMError(f"{run_dir} was trained on data passed from Python ({config.data}); pass the same data "
                       f"again to resume it: ebmlab.train(model, data, resume={str(run_dir)!r})")
    if config.net == "custom" and network is None:
        if not trust_code:
            raise EBMError(untrusted_message(config.network, str(run_dir)))
        network = import_network(config.network, str(run_dir))
    # a run, so the lock file may be made; before anything below writes (rank 0 alone writes)
    lock = group.together(lambda: RunLock(run_dir) if group.is_main else None)
    try:
        try:
            trainer = _resume_locked(run_dir, config, desc, callbacks, steps, data, network, group, device)
        except EBMError as e:           # a damaged checkpoint: name the earlier ones the run kept
            raise with_fallback_hint(e, run_dir) from e.__cause__
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    trainer.run_lock = lock
    return trainer


def _resume_locked(run_dir: Path, config: RunConfig, desc: dict[str, Any], callbacks: list[Any] | tuple,
                   steps: int | None, data: DataLike | None, network: nn.Module | None,
                   group: distributed.Group, device: torch.device) -> Trainer:
    extended = steps is not None and steps != config.steps
    if extended:
        config = extended_config(run_dir, config, steps)
    # the model scale the run trained in (data.json), whatever today's rules would infer for the same data
    dataset = with_recorded_scaling(dataset_from(config.data if data is None else data, config), desc.get("scaling"))
    want = desc.get("source", {}).get("train_sha256")
    if want is not None and want != data_fingerprint(dataset):
        raise EBMError(f"the training data {config.data!r} has changed since this run started; resuming on "
                       "different data would not continue the same run (start a new run instead)")
    torch.manual_seed(config.seed)
    if network is not None:
        network = _bare_network(network)
    model = build_model(config, {k: v for k, v in desc.items() if k != "format_version"}, network)
    ck = latest_checkpoint(run_dir)
    if ck is not None:
        check_weights(model, ck / "model.safetensors")
    trainer = Trainer(config, dataset, desc, model, run_dir, callbacks, group, device)
    trainer.resume()
    # the new horizon is written only once the resume was accepted (data, network, number of processes):
    # a refused resume leaves config.json as it was
    if extended and group.is_main:
        config.save_json(run_dir / "config.json")
    return trainer


def extended_config(run_dir: Path, config: RunConfig, steps: int) -> RunConfig:
    """``config`` of ``run_dir`` resumed with a new horizon ``steps``: the rest of the cosine is
    stretched from the newest checkpoint's step, so the lr does not jump (training/schedule.py)."""
    ck = latest_checkpoint(Path(run_dir))
    at = int(read_json(ck / "state.json", "checkpoint metadata")["step"]) if ck is not None else 0
    if steps < at:
        # the horizon is a new total, not a number of steps more: below the checkpoint it trained nothing
        # and rewrote config.json's steps below the steps done
        raise EBMError(f"{run_dir} is at step {at} (its newest checkpoint) and --steps is the new total, not steps "
                       f"more; give --steps {at} or more (e.g. --steps {at + steps} for {steps} more), or leave it out")
    return with_new_horizon(config, at, steps)


def release_run(trainer: Trainer) -> None:
    """Give up the run lock a Trainer from ``start_run``/``resume_run`` holds (after ``fit``)."""
    if getattr(trainer, "tensorboard", None) is not None:
        trainer.tensorboard.close()
    lock = getattr(trainer, "run_lock", None)
    if lock is not None:
        lock.release()


def config_device(config: RunConfig) -> torch.device:
    """The run's device, resolved (``auto``) and checked: EBMError before anything is written."""
    return resolve_device(config.device)


def user_network(network: nn.Module, config: RunConfig, desc: dict[str, Any],
                 network_kwargs: dict[str, Any] | None) -> tuple[nn.Module, dict[str, Any]]:
    """(the bare network, its JSON record) for a user's ``nn.Module`` or ``EnergyModel``.

    Vector data gets the data's support box, like the built-in networks, unless the user's
    ``EnergyModel`` has its own ``bounds``: then quadrature gives the exact Z and the samplers stay
    inside the box."""
    if isinstance(network, ConditionalEnergyModel):
        raise EBMError("pass the network inside your ConditionalEnergyModel (model.net); ebmlab wraps it itself")
    if not isinstance(network, nn.Module):
        raise EBMError(f"model must be an nn.Module returning f(x) of shape [B] (or an EnergyModel, or a built-in "
                       f"network name such as 'mlp'), got {type(network).__name__}")
    parametrisation, bounds = "exp", None
    if isinstance(network, EnergyModel):
        parametrisation = network.parametrisation
        bounds = network.bounds.tolist() if network.bounds is not None else None
    if bounds is None and desc["kind"] == "vector":
        bounds = desc["bounds"]
    bare = _bare_network(network)
    if not any(p.requires_grad for p in bare.parameters()):
        # else torch's optimiser fails with "empty parameter list", after the data were read
        raise EBMError(f"the network {type(bare).__name__} has no trainable parameters, so there is nothing to train; "
                       "give it nn.Parameters (or, to sample or evaluate a fixed f, call ebmlab.sample / ebmlab.log_z)")
    return bare, network_reference(bare, network_kwargs, parametrisation, bounds)


def _bare_network(network: nn.Module) -> nn.Module:
    return network.net if isinstance(network, (EnergyModel, ConditionalEnergyModel)) else network


def _check_model(model: nn.Module, dataset: DataSet, config: RunConfig) -> None:
    """Fail early, with one line, if the network does not map [B, *event] -> [B] finitely."""
    x = dataset.to_model(dataset.train[:4]).to(config.device)
    model.to(config.device)
    try:
        with torch.no_grad():
            f = model.log_density(x)
    except EBMError:
        raise
    except Exception as e:   # the user's forward() failed on a batch of the data: say so in one line
        dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()} - {x.dtype}
        hint = (f"; ebmlab trains in {x.dtype} and the network's weights are {sorted(map(str, dtypes))}: "
                f"call .to({x.dtype}) on it") if dtypes else ""
        raise EBMError(f"the network fails on a batch of the training data of shape {tuple(x.shape)}: "
                       f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}{hint}") from None
    if not torch.isfinite(f).all():
        raise EBMError("the network returns non-finite f (NaN or Inf) on training data before any training; "
                       "check its initialisation and forward()")


@dataclass
class TrainRun:
    """What ``ebmlab.train`` returns.

    model: the trained model (``EnergyModel`` or ``ConditionalEnergyModel``), in eval mode; for a run with
        ``ema_decay`` a copy holding the EMA of the weights (what ``ebmlab sample`` and ``ebmlab.load`` use),
        while the network passed in holds the raw weights training resumes from;
    run_dir: the run directory, or None for a run in memory; metrics: the last logged metrics row;
    status: "finished" or "interrupted"; step: the last step trained; seconds: wall time of this call.
    """
    model: nn.Module
    run_dir: Path | None
    metrics: dict[str, float]
    status: str
    step: int
    seconds: float


def train(model: nn.Module | str | None, data: DataLike, out: str | Path | None = None, *, force: bool = False,
          resume: str | Path | None = None, progress: bool = True, threads: int | None = 1,
          network_kwargs: dict[str, Any] | None = None, trust_code: bool = False,
          callbacks: list[Any] | tuple = (), **settings: Any) -> TrainRun:
    """Train ``model`` on ``data`` with every guarantee of ``ebmlab train`` (guard, rollback, checkpoints,
    exact resume, Ctrl-C).

    Args:
        model: an ``nn.Module`` mapping x [B, *event] to f(x) [B] — the log of the unnormalised density,
            p(x) ∝ exp(f(x)), higher = more likely (for a network written for p ∝ exp(-E), pass a module
            returning -E) — or an ``EnergyModel``; or a built-in network name ("auto", "mlp", "conv",
            "resnet"); None means "auto". Your own network is initialised by you (seed it yourself).
        data: a built-in set name ("moons", "digits", ...), a path (.npy, image folder), an array or
            tensor [N, d] / [N, C, H, W], a map-style ``torch.utils.data.Dataset`` (items x or (x, y)),
            or a ``DataLoader`` (its dataset and batch size are used; ebmlab draws the order). Images
            from Python: uint8 pixels are mapped from 0..255 to the model scale [-1, 1]; float images are
            used as given, so they belong in [-1, 1] (a warning says when they are not, or
            fill only [0, 1] of it).
        out: the run directory (None: train in memory, nothing written, no resume).
        resume: a run directory to continue exactly (pass the same ``model`` class instance and, for data
            from Python, the same ``data``).
        progress: show a progress bar (tqdm) with f(x+) - f(x-), the acceptance and the gradient norm.
        threads: torch CPU threads while training (default 1, the CLI's default: the small default models
            are fastest single-threaded; torch's own default of one per core was 8x slower for a 2-D
            run on a 2-core machine). None keeps torch's setting. Restored afterwards.
        network_kwargs: your network's constructor arguments, recorded so ``ebmlab.load(DIR,
            trust_code=True)`` can rebuild it (``ebmlab.load(DIR, network=YourNet(...))`` needs none).
        settings: the CLI's and the config file's names (steps, lr, batch_size, sampler, preset, device,
            seed, ...), validated the same way; presets are picked from the data's shape. ``ema_decay=0.999``
            keeps an exponential moving average of the weights, which the returned model, sampling and
            evaluation use (the training chains and resume use the raw weights).
    Returns a ``TrainRun`` (model, run_dir, metrics, status, step, seconds).
    Ctrl-C (SIGINT) stops at the next step boundary, checkpoints and returns with status "interrupted" (a
    second Ctrl-C stops at once). SIGTERM does the same, then is delivered again to the handler that was in
    place before the call, which by default ends the process: a ``kill`` stops a script that trains in a loop.
    """
    from ebmlab.training.progress import ProgressBar
    t0 = time.time()
    network = None
    if isinstance(model, str):
        settings["net"] = model
    elif model is not None:
        network = model
    cbs = list(callbacks) + ([ProgressBar()] if progress else [])
    previous_threads = torch.get_num_threads()
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise EBMError(f"threads must be a positive integer or None, got {threads!r}")
        torch.set_num_threads(usable_cpu_threads(threads))
    try:
        if resume is not None:
            if out is not None and Path(out).resolve() != Path(resume).resolve():
                raise EBMError("give either out= (a new run) or resume= (an existing one), not both")
            if settings.keys() - {"steps"}:
                raise EBMError(f"resume continues a run as it was configured; only steps= may be given, "
                               f"not {', '.join(sorted(settings.keys() - {'steps'}))}")
            trainer = resume_run(resume, cbs, steps=settings.get("steps"), data=data, network=network,
                                 trust_code=trust_code)
        else:
            trainer, _ = start_run(data, out, force, cbs, network=network, network_kwargs=network_kwargs,
                                   **settings)
        try:
            result = trainer.fit()
        finally:
            release_run(trainer)
            for cb in cbs:
                if isinstance(cb, ProgressBar):
                    cb.close()
    finally:
        torch.set_num_threads(previous_threads)
    if result.status == "interrupted" and trainer.stop_signal == signal.SIGTERM:
        # SIGTERM asks the process to end (kill, a scheduler): the trainer only deferred it to a step boundary and a
        # checkpoint. Swallowed here, a script calling train in a loop went on to its next run (seen: a sweep kept
        # scoring partly trained models). So it is delivered again now, to the handler that was there before:
        # the default one ends the process as SIGTERM always does.
        signal.raise_signal(signal.SIGTERM)
    # the model to sample and evaluate: the EMA of the weights (a copy) when the run keeps one
    return TrainRun(trainer.sampling_model().eval(), trainer.run_dir, result.last_row, result.status, result.step,
                    time.time() - t0)


def resume(run_dir: str | Path, model: nn.Module | None = None, data: DataLike | None = None,
           **kwargs: Any) -> TrainRun:
    """Continue ``run_dir`` exactly: ``ebmlab.train(model, data, resume=run_dir, **kwargs)``."""
    return train(model, data, resume=run_dir, **kwargs)


def train_2d(name_or_array: str | np.ndarray | torch.Tensor, steps: int = 3000, seed: int = 0,
             out_dir: str | Path | None = None) -> EnergyModel:
    """The default 2-D recipe (used by the benchmarks): returns the trained model, with ``.bounds``."""
    return train("auto", name_or_array, out_dir, force=out_dir is not None, steps=steps, seed=seed,
                 progress=False, threads=None).model
