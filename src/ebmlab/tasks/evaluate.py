"""What ``ebmlab eval`` does: test NLL, sample quality, chain diagnostics and (``--ood``) OOD AUROC of a run."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ebmlab.data import toy2d
from ebmlab.data.sources import _load_npy, load_data, with_recorded_scaling
from ebmlab.density import placement, to_model
from ebmlab.errors import EBMError
from ebmlab.estimate.ais import ais_log_z
from ebmlab.estimate.binary_ais import binary_ais_log_z
from ebmlab.estimate.discrete import exact_binary_nll, exact_categorical_nll
from ebmlab.models.categorical import check_enumerable_categorical
from ebmlab.models.binary import MAX_ENUM_BITS
from ebmlab.estimate.nll import exact_nll
from ebmlab.metrics.diagnostics import bulk_ess, effective_sample_size, rank_rhat, split_rhat
from ebmlab.metrics.mmd import mmd2_unbiased
from ebmlab.metrics.nearest import memorisation_check
from ebmlab.metrics.ood import ood_table
from ebmlab.metrics.outliers import BUILTIN_OUTLIERS, builtin_outliers
from ebmlab.tasks.open import Run, test_data
from ebmlab.tasks.sample import draw_samples
from ebmlab.training.negatives import make_init_fn, sampler_from_config


def evaluate_run(run: Run, data: str | None = None, log_z_method: str | None = None, seed: int = 0,
                 n_samples: int = 1000, ood: str | list[str] | None = None, fid: str | None = None,
                 inception_weights: str | None = None) -> dict[str, Any]:
    """Test NLL (exact by quadrature for d <= 3; AIS on request), sample quality and chain diagnostics.

    ``ood``: outlier sets (built-in names or .npy paths, see ``outlier_sets``);
    adds ``out["ood"]``, one row per set with the AUROC of f and of −‖∇x f‖ against the test set.
    ``fid``: a .npy of real images; adds ``out["fid"]``, the Inception FID of samples against them
    (``fid_against``; needs ``inception_weights``, a local torch-fidelity weights file).
    Image runs also get the nearest-neighbour memorisation check (``metrics.nearest``).
    """
    real = None
    if fid is not None:      # checked before anything slow: a bad --fid fails at once, nothing written
        real = read_fid_reference(run, fid, inception_weights)
    elif inception_weights is not None:
        raise EBMError("--inception-weights is used by --fid REAL.npy; give the real images too")
    c = run.config
    if data is None:
        x_test, data_name = test_data(run), c.data
    else:
        # an image folder is read at the model's size (eval has no --image-size; the loader asked for one)
        size = c.image_size or (int(run.data["event_shape"][-1]) if not run.is_vector else None)
        if size is None and Path(data).is_dir():
            raise EBMError(f"--data {data!r} is a folder (read as images), but {run.path} models "
                           f"{run.data['event_shape'][0]}-dimensional vectors: give a .npy of points")
        ds = load_data(data, c.seed, c.n_test, c.test_fraction, size,
                       binary=bool(run.data.get("binary")), categories=run.data.get("categories"))
        own = _is_run_data(data, c.data)
        if own:     # the run's own file: its recorded model scale, not today's rule for the file
            ds = with_recorded_scaling(ds, run.data.get("scaling"))
        x_test = ds.to_model(torch.cat([ds.train[:], ds.test]) if not own else ds.test)   # [:]: a streamed set too
        data_name = data
    if tuple(x_test.shape[1:]) != tuple(run.data["event_shape"]):
        raise EBMError(f"evaluation data has shape {tuple(x_test.shape[1:])} per point but the model was "
                       f"trained on {tuple(run.data['event_shape'])}")
    ood_sets = None
    if ood is not None:     # made and checked before the slow parts: a bad --ood fails at once
        ood_sets = run_outlier_sets(run, ood, x_test, seed)
    out: dict[str, Any] = {"run": str(run.path), "data": data_name, "n_test": int(x_test.shape[0])}
    dim = int(np.prod(run.data["event_shape"]))
    t0 = time.time()
    binary = bool(run.data.get("binary"))
    k = run.data.get("categories")
    if k:     # categorical: exact by enumerating K^d (the only method; AIS on one-hot states is not built)
        if log_z_method not in (None, "enumeration"):
            raise EBMError(f"--log-z {log_z_method} is not available for categorical data; it uses --log-z "
                           "enumeration (exact, K^d <= 2^24)")
        sites = dim // int(k)
        if log_z_method == "enumeration" or sites * math.log2(int(k)) <= MAX_ENUM_BITS:
            check_enumerable_categorical(sites, int(k))
            r = exact_categorical_nll(run.model, x_test, int(k))
            out.update({"log_z": r["log_z"], "log_z_stderr": 0.0, "log_z_method": "enumeration", "nll": r["nll"]})
        else:     # too many states: the sample and chain checks below still run, without a likelihood
            out["log_z_note"] = (f"{k}^{sites} states are too many to enumerate (limit 2^{MAX_ENUM_BITS}) and there "
                                 "is no AIS for categorical states yet: no NLL")
        log_z_method = "done"
    if log_z_method is None:
        if binary:   # exact by enumeration where it fits, else the AIS bracket
            log_z_method = "enumeration" if dim <= MAX_ENUM_BITS else "ais"
        else:
            log_z_method = "quadrature" if run.is_vector and dim <= 3 else None
    if log_z_method == "quadrature" and not run.is_vector:     # else exact_nll asks a Python user for bounds=
        raise EBMError("--log-z quadrature integrates over a grid of vectors with d <= 3; for images use --log-z ais")
    if binary and log_z_method == "quadrature":
        raise EBMError(f"--log-z quadrature is for continuous data; binary data uses --log-z enumeration "
                       f"(exact, d <= {MAX_ENUM_BITS}) or ais")
    if log_z_method == "enumeration":
        if not binary:
            raise EBMError("--log-z enumeration sums over {0,1}^d: it needs a run trained on binary data")
        r = exact_binary_nll(run.model, x_test)
        out.update({"log_z": r["log_z"], "log_z_stderr": 0.0, "log_z_method": "enumeration", "nll": r["nll"]})
    elif binary and log_z_method == "ais":
        est = binary_ais_log_z(run.model, x_test[:2000], generator=_generator_for(run.model, seed))
        with torch.no_grad():
            mean_f = float(run.model.log_density(to_model(run.model, x_test)).double().mean())
        out.update({"log_z": est.value, "log_z_stderr": est.stderr, "log_z_method": "ais (binary)",
                    "log_z_upper": est.extras["upper"], "ais_ess": est.extras["ess"], "nll": est.value - mean_f,
                    "nll_upper": est.extras["upper"] - mean_f})
        if est.extras["upper"] < est.value - 3 * est.stderr:
            out["ais_warning"] = ("the reverse AIS run starts from test data, which are exact samples of the model "
                                  "only if it fits them: its upper value fell below the forward estimate, so the "
                                  "bracket is not valid for this model (train longer, or compare models by nll)")
    elif log_z_method == "quadrature":
        r = exact_nll(run.model, x_test)
        out.update({"log_z": r["log_z"], "log_z_stderr": 0.0, "log_z_method": "quadrature",
                    "nll": r["nll"], "outside_support": r["outside"]})
    elif log_z_method == "ais":
        g = _generator_for(run.model, seed)
        bounds = run.data.get("bounds")
        if not run.is_vector:
            bounds = [[-1.0, 1.0]] * dim       # image chains live in [-1, 1]^d: a uniform base covers it
        est = ais_log_z(run.model, x_ref=x_test[:2000], generator=g,
                        base="uniform" if bounds is not None and (dim <= 3 or not run.is_vector) else "gaussian",
                        bounds=bounds)
        if est.extras.get("warning"):
            out["ais_warning"] = est.extras["warning"]
        with torch.no_grad():
            f = run.model.log_density(to_model(run.model, x_test))
        nll = float(-(f.double().mean()) + est.value)
        out.update({"log_z": est.value, "log_z_stderr": est.stderr, "log_z_method": "ais",
                    "log_z_upper": est.extras.get("upper"), "ais_ess": est.extras.get("ess"), "nll": nll})
        if not run.is_vector:
            s = run.scaling
            # bits/dim in the data's pixel scale: change of variables from [-1, 1] back to 0..255 style
            log_jac = dim * math.log(2.0 / float(np.mean(np.asarray(s.high) - np.asarray(s.low)))) if s else 0.0
            out["bits_per_dim"] = (nll - log_jac) / (dim * math.log(2))
    elif log_z_method is None:       # say why there is no likelihood, and how to get one
        what = "images" if not run.is_vector else f"{dim}-dimensional vectors"
        out["log_z_note"] = (f"no log Z or NLL by default for {what} (exact quadrature is for d <= 3): "
                             "--log-z ais estimates them")
    elif log_z_method != "done":
        raise EBMError(f"unknown --log-z {log_z_method!r}; choose quadrature (d <= 3), enumeration (binary) or ais")
    # a composite's own density is not its component's data: no true NLL to compare it with
    if data is None and c.data in toy2d.NAMES and "composite" not in run.data:
        out["true_nll"] = float(-toy2d.true_log_density(c.data, x_test).double().mean())
        out["nll_gap"] = out["nll"] - out["true_nll"]
    x, _, info = draw_samples(run, min(n_samples, x_test.shape[0]), seed=seed)
    flat = lambda t: t.reshape(t.shape[0], -1)
    if x.shape[0] >= 2:
        out["mmd2"] = mmd2_unbiased(flat(x), flat(x_test[: x.shape[0]]))
    else:     # a set of a few points holds out one: the unbiased MMD needs two of each
        out["mmd2_note"] = (f"no mmd2: the run has {x_test.shape[0]} held-out point(s) and MMD needs at least 2; "
                            "--data FILE evaluates against another set")
    out["sampler_acceptance"] = info["acceptance"]
    if "grad_norm" in info:
        out["sampler_grad_norm"] = info["grad_norm"]
    if data is None and not run.is_vector and "composite" not in run.data and not c.data.startswith("<"):
        out.update(memorisation_check(x, training_images(run), x_test))   # metrics/nearest.py
    if data is None and c.labels is not None and "composite" not in run.data:   # a conditional/JEM run
        out["test_accuracy"] = classifier_accuracy(run)
    if data is None and "composite" in run.data:
        # a composite has its own log Z but no data of its own: say what its scores were measured on
        out["composite_note"] = (f"nll and mmd2 are against the first component's test set ({c.data}), not data "
                                 "of the composite's own; --data chooses the set")
    out.update(digits_fd(run, x, data, seed))
    out.update(chain_diagnostics(run, seed))
    if ood_sets is not None:
        out["ood"] = ood_table(run.model, x_test, ood_sets)
    if real is not None:
        out.update(fid_against(run, real, inception_weights, seed))
    out["seconds"] = time.time() - t0
    return out


def _generator_for(model: Any, seed: int) -> torch.Generator:
    """A generator seeded with ``seed`` on the device of the model's weights (the CPU for a plain callable):
    AIS draws its chains where the model is, and refuses a generator on another device."""
    device, _ = placement(model)
    return torch.Generator(device=device or "cpu").manual_seed(seed)


def digits_fd(run: Run, samples: torch.Tensor, data: str | None, seed: int) -> dict[str, Any]:
    """For image runs on the built-in digits: the FD ratio FD(samples, test) / FD(train, test) in the
    digits-classifier features (``metrics.frechet.fd_ratio``; 1.0 = as good as real data), with
    as many train images as samples (FD's bias depends on the set size). {} for other runs."""
    c = run.config
    if data is not None or c.data != "digits" or run.is_vector or list(run.data["event_shape"]) != [1, 8, 8]:
        return {}
    from ebmlab.metrics.frechet import fd_ratio
    ds = with_recorded_scaling(load_data(c.data, c.seed, c.n_test, c.test_fraction, c.image_size,
                                         categories=c.categories), run.data.get("scaling"))
    n = samples.shape[0]
    train = ds.to_model(ds.train[torch.randperm(ds.train.shape[0], generator=torch.Generator().manual_seed(seed))[:n]])
    r = fd_ratio(samples, train, ds.to_model(ds.test))
    return {"fd_ratio_digits": r["ratio"], "fd_ratio_n": int(n),
            "fd_ratio_meaning": "FD(samples, test) / FD(train, test) in the digits-classifier features; 1 = real data"}
# ---------------------------------------------------------------------------- --fid
# real images read for the FID (the first rows of REAL.npy, memory-mapped) and samples drawn: at most this
# many (10 000 64x64 RGB images are ~0.5 GB as float32). Published FIDs use 40 000-50 000 and FID's bias
# depends on the number, so it is reported (fid_n_samples, fid_n_real)
MAX_FID_SAMPLES = 10000


def read_fid_reference(run: Run, path: str, weights: str | None) -> torch.Tensor:
    """The real images of ``--fid`` [N, C, H, W] in the model scale, after every check that can fail
    without sampling: an image run, a readable .npy of the run's image shape, and a weights file.

    uint8 arrays are pixels 0..255 (what ``ebmlab prepare`` writes); other dtypes are in the run's data scale.
    """
    if run.is_vector or "composite" in run.data:
        raise EBMError("--fid needs a model trained on images")
    from ebmlab.metrics.frechet import INCEPTION_HELP
    if weights is None:
        raise EBMError("--fid needs --inception-weights FILE. " + INCEPTION_HELP)
    p = Path(path)
    if p.suffix != ".npy":
        raise EBMError(f"--fid takes a .npy of real images (N, C, H, W), got {path!r}")
    if not p.is_file():
        raise EBMError(f"--fid file {path!r} does not exist")
    try:
        a = np.load(p, mmap_mode="r", allow_pickle=False)      # a CelebA cache is GBs: read only what is used
    except (OSError, ValueError) as e:
        raise EBMError(f"cannot read --fid {path!r} as a .npy array ({str(e).splitlines()[0]})") from None
    if a.dtype.kind not in "biuf":
        raise EBMError(f"--fid {path!r} must hold numbers, got dtype {a.dtype}")
    want = tuple(int(v) for v in run.data["event_shape"])
    if a.ndim != 4 or tuple(a.shape[1:]) != want or a.shape[0] < 2:
        raise EBMError(f"--fid {path!r} holds images of shape {tuple(a.shape[1:]) if a.ndim >= 2 else a.shape}, "
                       f"but the model makes {want}; prepare the real images at the model's size "
                       f"(ebmlab prepare DIR --size {want[1]} --out REAL.npy)")
    if not Path(weights).is_file():
        raise EBMError(f"Inception weights file {weights!r} not found. " + INCEPTION_HELP)
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        raise EBMError("--fid needs torch-fidelity: pip install ebmlab[fid]") from None
    from ebmlab.data.scaling import Scaling
    x = torch.from_numpy(np.ascontiguousarray(a[:MAX_FID_SAMPLES]))
    if x.dtype == torch.uint8:
        return Scaling.from_range(0.0, 255.0).to_model(x)
    return run.scaling.to_model(x.float()) if run.scaling is not None else x.float()


def fid_against(run: Run, real: torch.Tensor, weights: str, seed: int) -> dict[str, Any]:
    """Inception FID of as many samples as ``real`` holds (at most ``MAX_FID_SAMPLES``) against ``real`` (model scale)."""
    from ebmlab.metrics.frechet import inception_fid
    n = min(real.shape[0], MAX_FID_SAMPLES)
    x, _, _ = draw_samples(run, n, seed=seed + 2)
    dev = next(run.model.parameters()).device if any(True for _ in run.model.parameters()) else "cpu"
    return {"fid": inception_fid(x, real, weights, device=dev), "fid_n_samples": int(n), "fid_n_real": int(real.shape[0])}


# training images the memorisation check compares samples with: all of a small set (faces 80, digits
# 1437); of a CelebA-sized one the first 2000 rows of its fixed shuffled split (64x64 RGB: ~200 MB as the
# float64 the distances are computed in), so the check measures closeness to a sample of the training set
MAX_NN_TRAIN = 2000


def training_images(run: Run) -> torch.Tensor:
    """The run's training split [N, *event] in the model scale (at most ``MAX_NN_TRAIN`` of it)."""
    c = run.config
    ds = with_recorded_scaling(load_data(c.data, c.seed, c.n_test, c.test_fraction, c.image_size,
                                         categories=c.categories), run.data.get("scaling"))
    return ds.to_model(ds.train[:MAX_NN_TRAIN])


def classifier_accuracy(run: Run) -> float:
    """Accuracy of p(y | x) = softmax(logits) on the run's labelled test split (conditional/JEM runs)."""
    c = run.config
    ds = with_recorded_scaling(load_data(c.data, c.seed, c.n_test, c.test_fraction, c.image_size, c.labels),
                               run.data.get("scaling"))
    with torch.no_grad():
        pred = torch.cat([run.model.predict(ds.to_model(xb)) for xb in ds.test.split(1024)])
    return float((pred == ds.y_test).double().mean())


def chain_traces(run: Run, seed: int, n_chains: int = 8, n_steps: int = 400) -> dict[str, np.ndarray]:
    """Traces [T, C] of f, acceptance and (gradient samplers) ‖∇f‖ along chains of the run's kernel."""
    g = torch.Generator().manual_seed(seed + 1)
    kernel = sampler_from_config(run.config, run.model, run.data)
    x = make_init_fn(run.data, "uniform", torch.empty(0), torch.device("cpu"))(n_chains, g)
    f, acc, grad = [], [], []
    state = kernel.init(x)
    with torch.no_grad():
        for _ in range(n_steps):
            state, info = kernel.step(state, g)
            f.append(state.log_density.clone())
            acc.append(info.accepted.float())
            if info.grad_norm is not None:
                grad.append(info.grad_norm.clone())
    traces = {"f (log density)": torch.stack(f).double().numpy(), "accepted": torch.stack(acc).numpy()}
    if grad:
        traces["|grad f|"] = torch.stack(grad).double().numpy()
    return traces


# R-hat compares halves of chains; with fewer draws per half it is noise (Vehtari et al. 2021 ask for
# a bulk-ESS of 100 per chain before trusting it; 50 draws per half is the least we report at all)
MIN_RHAT_DRAWS = 50


def chain_diagnostics(run: Run, seed: int, n_chains: int = 8, n_steps: int = 400) -> dict[str, Any]:
    """ESS and bulk-ESS of f along a few chains of the run's kernel started from noise, and — where the
    chains are meant to converge — the classic split R-hat and the rank-normalised one (Vehtari et al. 2021).

    A short-run model is a K-step generator from noise (Nijkamp et al. 2019), not a sampler run to its
    stationary law: whether long chains agree says nothing about it, so its R-hat is replaced by a note.
    """
    f = chain_traces(run, seed, n_chains, n_steps)["f (log density)"][n_steps // 2:]   # after burn-in
    out: dict[str, Any] = {"chain_ess_f": float(effective_sample_size(f)), "chain_ess_bulk_f": float(bulk_ess(f))}
    if run.config.negatives == "short-run":
        out["chain_rhat_note"] = (f"R-hat not shown: a short-run model is a {run.config.mcmc_steps}-step generator "
                                  "from noise, not a chain run to convergence")
    elif f.shape[0] // 2 >= MIN_RHAT_DRAWS:
        out["chain_rhat_f"] = float(split_rhat(f))
        out["chain_rhat_rank_f"] = float(rank_rhat(f))
        out["chain_rhat_meaning"] = (f"{n_chains} chains from noise, last {f.shape[0]} of {n_steps} steps: R-hat ~ 1 "
                                     "(< 1.01) = they agree on f; > 1.1 = stuck in different modes or still drifting")
    return out


# ---------------------------------------------------------------------------- --ood values
# Reading what the user typed after ``--ood`` (built-in names of ``ebmlab.metrics.outliers``, or
# .npy files in the data's scale) into outlier sets for a run; the AUROC itself is ``ebmlab.metrics.ood``.
def parse_ood_specs(values: Any) -> list[str]:
    """``--ood`` values (repeatable, each possibly comma-separated) -> a list of names / .npy paths, in order.

    Each entry must be a built-in name or end in ``.npy``; duplicates are dropped.
    """
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for v in values or []:
        for item in str(v).split(","):
            item = item.strip()
            if not item:
                continue
            if item not in BUILTIN_OUTLIERS and not item.lower().endswith(".npy"):
                raise EBMError(f"unknown --ood {item!r}: give a .npy file (in the data's scale) or one of "
                               f"{', '.join(BUILTIN_OUTLIERS)}")
            if item not in out:
                out.append(item)
    if not out:
        raise EBMError("--ood needs at least one outlier set: a .npy file or one of " + ", ".join(BUILTIN_OUTLIERS))
    return out


def _is_run_data(given: str, recorded: str) -> bool:
    """Whether eval's ``--data`` names the data the run trained on: the same built-in name, or the same file or
    folder however it is spelled (config.json records a resolved path; ``pts.npy`` and ``./pts.npy`` from the
    data's folder are it too, so they get its held-out split and recorded scaling)."""
    if given == recorded:
        return True
    return Path(recorded).is_absolute() and Path(given).exists() and Path(given).resolve() == Path(recorded).resolve()


def load_outlier_npy(path: str | Path, event_shape: tuple[int, ...], scaling: Any = None,
                     flag: str = "--ood", image_shape: Any = None) -> torch.Tensor:
    """A .npy of outliers in the *data's* scale -> float32 [M, *event] in the model's scale.

    Checks: the file reads as a numeric array, holds at least one point, each point has the model's
    event shape, every value is finite. ``scaling`` (a ``Scaling`` or None) maps data -> model scale;
    ``flag`` names the option in the messages (``ebmlab score`` reads its points here too). ``image_shape``: a
    binary image run's [C, H, W] (data.json), trained flattened to vectors: images of that shape are flattened
    as its training images were.
    """
    p = Path(path)
    a = _load_npy(p)
    if a.dtype.kind not in "biuf":
        raise EBMError(f"{flag} {str(p)!r}: must hold numbers, got dtype {a.dtype}")
    event_shape = tuple(int(s) for s in event_shape)
    if image_shape is not None and a.ndim >= 1 and tuple(a.shape[1:]) == tuple(int(s) for s in image_shape):
        a = a.reshape(a.shape[0], -1)
    if a.ndim != len(event_shape) + 1 or tuple(a.shape[1:]) != event_shape:
        want = "(M, " + ", ".join(map(str, event_shape)) + ")"
        also = f" (or images of shape {tuple(image_shape)})" if image_shape is not None else ""
        raise EBMError(f"{flag} {str(p)!r} has shape {a.shape} but the model takes points of shape {event_shape}"
                       f"{also}; save an array of shape {want} in the data's scale")
    if a.shape[0] == 0:
        raise EBMError(f"{flag} {str(p)!r} holds no points")
    if a.dtype.kind == "f" and not bool(np.isfinite(a).all()):
        raise EBMError(f"{flag} {str(p)!r} contains NaN or infinite values")
    with np.errstate(over="ignore"):
        x = torch.from_numpy(np.ascontiguousarray(a).astype(np.float32))
    if not bool(torch.isfinite(x).all()):       # finite in the file, too large for the model's float32
        raise EBMError(f"{flag} {str(p)!r} holds values beyond float32's range (|x| > 3.4e38), which the model "
                       "cannot take: give points in the data's scale")
    return scaling.to_model(x) if scaling is not None else x


def outlier_sets(specs: Any, x_ref: torch.Tensor, kind: str, bounds: Any = None, scaling: Any = None,
                 seed: int = 0, image_shape: Any = None) -> dict[str, torch.Tensor]:
    """Resolve ``--ood`` values into ``{name: outliers [M, *event] in model scale}`` (see ``parse_ood_specs``).

    Built-in sets have len(x_ref) points; a .npy is named by its file name and read in the data's scale.
    """
    sets: dict[str, torch.Tensor] = {}
    for spec in parse_ood_specs(specs):
        if spec in BUILTIN_OUTLIERS:
            sets[spec] = builtin_outliers(spec, x_ref, kind, bounds, seed=seed)
        else:
            name = Path(spec).name
            while name in sets:          # two files with one name in different folders
                name += "'"
            sets[name] = load_outlier_npy(spec, tuple(x_ref.shape[1:]), scaling,
                                          image_shape=image_shape).to(x_ref.dtype)
    return sets


def run_outlier_sets(run: Run, specs: Any, x_test: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """``outlier_sets`` for a loaded run: its data kind, support box and scaling."""
    return outlier_sets(specs, x_test, run.data["kind"], run.data.get("bounds"), run.scaling, seed,
                        run.data.get("image_shape"))
