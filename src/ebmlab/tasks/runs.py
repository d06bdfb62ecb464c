"""What the ``sample``, ``eval``, ``plot``, ``compose`` and ``inpaint`` commands do, as plain functions.

cli.py parses flags and prints; everything here is callable (and tested) without argparse.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ebmlab.rundir.build import build_model_from_run, component_dirs
from ebmlab.atomic import atomic_write_bytes, atomic_write_text
from ebmlab.rundir.checkpoint import FORMAT_VERSION, read_json
from ebmlab.rundir.config import MAX_CHAIN_STEPS, RunConfig
from ebmlab.rundir.layout import prepare_run_dir
from ebmlab.rundir.lock import refuse_if_training
from ebmlab.data.scaling import Scaling
from ebmlab.errors import EBMError
from ebmlab.samplers.run import run_chains
from ebmlab.training.negatives import make_init_fn, make_kernel


@dataclass
class Run:
    """A loaded run directory: the model, its config and data description."""

    path: Path
    model: torch.nn.Module
    config: RunConfig
    data: dict[str, Any]

    @property
    def is_vector(self) -> bool:
        return self.data["kind"] == "vector"

    @property
    def scaling(self) -> Scaling | None:
        s = self.data.get("scaling")
        return Scaling.from_dict(s) if s else None


def open_run(path: str | Path, device: str = "cpu") -> Run:
    """Load a run directory (trained or composed)."""
    p = Path(path)
    model = build_model_from_run(p, device)
    data = read_json(p / "data.json", "data description (data.json)")
    if data["kind"] == "composite":
        first = open_run(_component_path(p, data["spec"]), device)
        config, data = first.config, {**first.data, "composite": data["spec"]}
        if getattr(model, "bounds", None) is not None and data["kind"] == "vector":
            data["bounds"] = model.bounds.tolist()
    else:
        config = RunConfig.from_dict(read_json(p / "config.json", "run configuration (config.json)"))
    return Run(p, model, config, data)


def _component_path(run_dir: Path, spec: dict[str, Any]) -> Path:
    src = spec["components"][0]
    while isinstance(src, dict):         # nested composite: follow its first component
        src = src["components"][0]
    q = Path(src)
    return q if q.is_absolute() else (run_dir / q).resolve()


# ---------------------------------------------------------------------------- sampling
def draw_samples(run: Run, n: int, n_steps: int | None = None, method: str | None = None,
                 step_size: float | None = None, seed: int = 0, start: str = "noise",
                 trajectory_every: int | None = None,
                 klass: int | None = None) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, float]]:
    """n samples [n, *event] in the MODEL's scale, the chain every k steps, and diagnostics.

    Starts from the training recipe's noise (``start="noise"``) or from the replay buffer
    (``start="buffer"``). The kernel is the training kernel unless ``method`` is given.
    ``klass``: for a conditional/JEM run, sample p(x | y = klass) (``for_class``); None samples
    the model itself (for those runs the marginal f(x) = logsumexp_y logits).
    """
    if n <= 0:
        raise EBMError(f"--n must be a positive integer, got {n}")
    target = run.model if klass is None else class_model(run, klass)
    cfg = run.config
    overrides: dict[str, Any] = {}
    if method is not None:
        overrides["sampler"] = {"mh": "mh", "mh-jump": "mh-jump", "langevin": "langevin", "mala": "mala",
                                "hmc": "hmc"}.get(method) or _bad_method(method)
    if step_size is not None:
        overrides["step_size"] = step_size
    cfg = cfg.replace(**overrides) if overrides else cfg
    if n_steps is None:
        n_steps = default_sample_steps(cfg, run.is_vector)
    if n_steps < 0:
        raise EBMError(f"--n-steps must be >= 0, got {n_steps}")
    if n_steps > MAX_CHAIN_STEPS:      # a hand-edited mcmc_steps or a typo would otherwise run for days
        raise EBMError(f"{n_steps} chain steps is more than the {MAX_CHAIN_STEPS} a sampling run may take; "
                       "give a smaller --n-steps")
    g = torch.Generator().manual_seed(seed)
    kernel = make_kernel(cfg, target, run.data)
    if start == "buffer":
        x0 = _buffer_states(run, n, g)
    elif start == "noise":
        x0 = make_init_fn(run.data, "uniform" if cfg.init == "data" else cfg.init, torch.empty(0), torch.device("cpu"))(n, g)
    else:
        raise EBMError(f"--from must be 'noise' or 'buffer', got {start!r}")
    frames = [x0.clone()] if trajectory_every else []
    x, diag_acc, diag_grad, done = x0, [], [], 0
    while done < n_steps:
        k = min(trajectory_every or n_steps, n_steps - done)
        x, diag = run_chains(kernel, x, k, g)
        diag_acc.append(diag.acceptance_rate.mean() * k)
        if diag.mean_grad_norm is not None:
            diag_grad.append(diag.mean_grad_norm.mean() * k)
        done += k
        if trajectory_every:
            frames.append(x.clone())
    info = {"n_steps": n_steps, "acceptance": float(sum(diag_acc) / max(n_steps, 1)) if diag_acc else 1.0}
    if diag_grad:
        info["grad_norm"] = float(sum(diag_grad) / n_steps)
    return x.detach(), frames, info


def class_model(run: Run, klass: int) -> torch.nn.Module:
    """The model of one class of a conditional/JEM run; EBMError for other runs or a bad class."""
    from ebmlab.models.conditional import ConditionalEnergyModel
    if not isinstance(run.model, ConditionalEnergyModel):
        what = ("a composite (compose a class into it instead: ebmlab compose RUN:CLASS ...)"
                if "composite" in run.data else "unconditional")
        raise EBMError(f"--class needs a conditional model (trained with --preset conditional or jem); "
                       f"{run.path} is {what}")
    return run.model.for_class(klass)


def default_sample_steps(cfg: RunConfig, is_vector: bool) -> int:
    """How many steps ``sample`` runs when the user does not say.

    Short-run models: exactly the training chain length K. Such a model is trained as a K-step
    generator from noise (Nijkamp et al. 2019), not as a sampler that converges; running its
    chains longer drifts past the samples it was trained on and over-saturates them (digits FD
    ratio 3.98 at K = 20 against 61 at 100 steps, benchmarks/results/digits.md). Persistent image
    models: 100 steps. Vector data: long chains (max(200, 10 K)), which the jump/MH kernels need to mix.
    """
    if is_vector:
        return max(200, cfg.mcmc_steps * 10)
    return cfg.mcmc_steps if cfg.negatives == "short-run" else 100


def _bad_method(method: str) -> str:
    raise EBMError(f"unknown --method {method!r}; choose one of mh-jump, mh, langevin, mala, hmc")


def _buffer_states(run: Run, n: int, g: torch.Generator) -> torch.Tensor:
    from ebmlab.rundir.checkpoint import latest_checkpoint, load_checkpoint
    ck = latest_checkpoint(run.path)
    buf = load_checkpoint(ck)[2].get("buffer") if ck is not None else None
    if not buf:
        raise EBMError(f"{run.path} has no replay buffer (its recipe is not persistent); use --from noise")
    states = buf["states"]
    return states[torch.randint(0, states.shape[0], (n,), generator=g)]


def to_data_scale(run: Run, x: torch.Tensor) -> torch.Tensor:
    s = run.scaling
    return s.from_model(x, clip=True) if s is not None else x


def write_samples(run: Run, x: torch.Tensor, out: Path, frames: list[torch.Tensor] | None = None) -> list[Path]:
    """Write samples (model scale in, data scale out) as .npy or .png; a trajectory strip beside a PNG."""
    out = Path(out)
    if out.suffix not in (".npy", ".png"):
        raise EBMError(f"--out must end in .npy or .png, got {str(out)!r}")
    if not out.parent.exists():
        raise EBMError(f"the folder of --out {str(out.parent)!r} does not exist")
    if Path(run.path).resolve() in (out.parent.resolve(), *out.parent.resolve().parents):
        refuse_if_training(run.path, f"writing {out}")
    written = []
    if out.suffix == ".npy":
        import io
        buf = io.BytesIO()
        np.save(buf, to_data_scale(run, x).numpy())
        atomic_write_bytes(out, buf.getvalue())
        written.append(out)
    elif run.is_vector:
        from ebmlab.viz.plots import plot_2d_panel
        if x.shape[1] != 2:
            raise EBMError("a PNG of vector samples is drawn for 2-D data only; use --out FILE.npy")
        written.append(plot_2d_panel(run.model, _test_data(run), x, run.data["bounds"], out, title=str(run.path)))
    else:
        from ebmlab.viz.imageio import save_grid_png
        written.append(save_grid_png(x, out))
    if frames and not run.is_vector:
        from ebmlab.viz.imageio import save_strip_png
        strip = out.with_name(out.stem + "-trajectory.png")
        written.append(save_strip_png(torch.stack([f[:8] for f in frames]), strip))
    return written


def _test_data(run: Run) -> torch.Tensor:
    from ebmlab.data.sources import load_data
    c = run.config
    ds = load_data(c.data, c.seed, c.n_test, c.test_fraction, c.image_size)
    return ds.to_model(ds.test)          # the model scale (image sets are stored as uint8)


# ---------------------------------------------------------------------------- evaluation
def evaluate_run(run: Run, data: str | None = None, log_z_method: str | None = None, seed: int = 0,
                 n_samples: int = 1000, ood: str | list[str] | None = None) -> dict[str, Any]:
    """Test NLL (exact by quadrature for d <= 3; AIS on request), sample quality and chain diagnostics.

    ``ood``: outlier sets (built-in names or .npy paths, see ``ebmlab.metrics.ood.outlier_sets``);
    adds ``out["ood"]``, one row per set with the AUROC of f and of −‖∇x f‖ against the test set.
    """
    from ebmlab.data import toy2d
    from ebmlab.data.sources import load_data
    c = run.config
    if data is None:
        x_test, data_name = _test_data(run), c.data
    else:
        ds = load_data(data, c.seed, c.n_test, c.test_fraction, c.image_size)
        x_test = ds.to_model(torch.cat([ds.train, ds.test]) if data != c.data else ds.test)
        data_name = data
    if tuple(x_test.shape[1:]) != tuple(run.data["event_shape"]):
        raise EBMError(f"evaluation data has shape {tuple(x_test.shape[1:])} per point but the model was "
                       f"trained on {tuple(run.data['event_shape'])}")
    ood_sets = None
    if ood is not None:     # made and checked before the slow parts: a bad --ood fails at once
        from ebmlab.metrics.ood import run_outlier_sets
        ood_sets = run_outlier_sets(run, ood, x_test, seed)
    out: dict[str, Any] = {"run": str(run.path), "data": data_name, "n_test": int(x_test.shape[0])}
    dim = int(np.prod(run.data["event_shape"]))
    t0 = time.time()
    if log_z_method is None:
        log_z_method = "quadrature" if run.is_vector and dim <= 3 else None
    if log_z_method == "quadrature":
        from ebmlab.estimate.nll import exact_nll
        r = exact_nll(run.model, x_test)
        out.update({"log_z": r["log_z"], "log_z_stderr": 0.0, "log_z_method": "quadrature",
                    "nll": r["nll"], "outside_support": r["outside"]})
    elif log_z_method == "ais":
        from ebmlab.estimate.ais import ais_log_z
        g = torch.Generator().manual_seed(seed)
        bounds = run.data.get("bounds")
        if not run.is_vector:
            bounds = [[-1.0, 1.0]] * dim       # image chains live in [-1, 1]^d: a uniform base covers it
        est = ais_log_z(run.model, x_ref=x_test[:2000], generator=g,
                        base="uniform" if bounds is not None and (dim <= 3 or not run.is_vector) else "gaussian",
                        bounds=bounds)
        if est.extras.get("warning"):
            out["ais_warning"] = est.extras["warning"]
        with torch.no_grad():
            f = run.model.log_density(x_test)
        nll = float(-(f.double().mean()) + est.value)
        out.update({"log_z": est.value, "log_z_stderr": est.stderr, "log_z_method": "ais",
                    "log_z_upper": est.extras.get("upper"), "ais_ess": est.extras.get("ess"), "nll": nll})
        if not run.is_vector:
            s = run.scaling
            # bits/dim in the data's pixel scale: change of variables from [-1, 1] back to 0..255 style
            log_jac = dim * math.log(2.0 / float(np.mean(np.asarray(s.high) - np.asarray(s.low)))) if s else 0.0
            out["bits_per_dim"] = (nll - log_jac) / (dim * math.log(2))
    elif log_z_method is not None:
        raise EBMError(f"unknown --log-z {log_z_method!r}; choose quadrature (d <= 3) or ais")
    if data is None and c.data in toy2d.NAMES:
        out["true_nll"] = float(-toy2d.true_log_density(c.data, x_test).double().mean())
        out["nll_gap"] = out["nll"] - out["true_nll"]
    x, _, info = draw_samples(run, min(n_samples, x_test.shape[0]), seed=seed)
    from ebmlab.metrics.mmd import mmd2_unbiased
    flat = lambda t: t.reshape(t.shape[0], -1)
    out["mmd2"] = mmd2_unbiased(flat(x), flat(x_test[: x.shape[0]]))
    out["sampler_acceptance"] = info["acceptance"]
    if "grad_norm" in info:
        out["sampler_grad_norm"] = info["grad_norm"]
    if data is None and c.labels is not None and "composite" not in run.data:   # a conditional/JEM run
        out["test_accuracy"] = classifier_accuracy(run)
    out.update(chain_diagnostics(run, seed))
    if ood_sets is not None:
        from ebmlab.metrics.ood import ood_table
        out["ood"] = ood_table(run.model, x_test, ood_sets)
    out["seconds"] = time.time() - t0
    return out


def classifier_accuracy(run: Run) -> float:
    """Accuracy of p(y | x) = softmax(logits) on the run's labelled test split (conditional/JEM runs)."""
    from ebmlab.data.sources import load_data
    c = run.config
    ds = load_data(c.data, c.seed, c.n_test, c.test_fraction, c.image_size, c.labels)
    with torch.no_grad():
        pred = torch.cat([run.model.predict(ds.to_model(xb)) for xb in ds.test.split(1024)])
    return float((pred == ds.y_test).double().mean())


def chain_traces(run: Run, seed: int, n_chains: int = 8, n_steps: int = 400) -> dict[str, np.ndarray]:
    """Traces [T, C] of f, acceptance and (gradient samplers) ‖∇f‖ along chains of the run's kernel."""
    g = torch.Generator().manual_seed(seed + 1)
    kernel = make_kernel(run.config, run.model, run.data)
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


def chain_diagnostics(run: Run, seed: int, n_chains: int = 8, n_steps: int = 400) -> dict[str, float]:
    """Split R-hat and ESS of f along a few chains of the run's kernel, started from noise."""
    from ebmlab.metrics.diagnostics import effective_sample_size, split_rhat
    f = chain_traces(run, seed, n_chains, n_steps)["f (log density)"][n_steps // 2:]   # after burn-in
    return {"chain_rhat_f": float(split_rhat(f)), "chain_ess_f": float(effective_sample_size(f))}


# ---------------------------------------------------------------------------- pictures
def plot_run(run: Run, seed: int = 0) -> list[Path]:
    """The run's pictures: 2-D panel (data, density, energy, samples) or a sample grid; training curves."""
    from ebmlab.viz.plots import plot_training_curves
    refuse_if_training(run.path, "plot (it writes the run's pictures)")
    written = []
    if run.is_vector and run.data["event_shape"][0] == 2:
        x, _, _ = draw_samples(run, 2000, seed=seed)
        written += write_samples(run, x, run.path / "plot.png")
    elif not run.is_vector:
        x, _, _ = draw_samples(run, 64, seed=seed)
        written += write_samples(run, x, run.path / "samples.png")
    from ebmlab.viz.plots import plot_energy_histograms, plot_traces
    written.append(plot_traces(chain_traces(run, seed), run.path / "traces.png", title="chains from noise"))
    x_data = _test_data(run)[:1000]
    x_model, _, _ = draw_samples(run, x_data.shape[0], seed=seed)
    with torch.no_grad():
        written.append(plot_energy_histograms(run.model.log_density(x_data), run.model.log_density(x_model),
                                              run.path / "energy_hist.png"))
    metrics = run.path / "metrics.jsonl"
    if metrics.exists():
        rows = [json.loads(l) for l in metrics.read_text().splitlines() if l.strip()]
        written.append(plot_training_curves(rows, run.path / "curves.png"))
    return written


# ---------------------------------------------------------------------------- composition
def parse_component(text: str) -> tuple[str, int | None]:
    """A compose component: ``RUN`` (a run directory) or ``RUN:CLASS`` (class CLASS of a conditional run).

    A path that exists is always a run directory, so a directory whose name ends in ``:3`` is still
    read as itself; otherwise a trailing ``:INTEGER`` names a class.
    """
    if Path(text).exists():
        return text, None
    head, sep, tail = text.rpartition(":")
    if sep and head:
        try:
            return head, int(tail)
        except ValueError:
            if Path(head).exists():
                raise EBMError(f"{text!r}: the class after ':' must be an integer (RUN:CLASS, e.g. {head}:3)") from None
    return text, None


def compose_runs(sources: list[str], op: str | None, weights: list[float] | None, out: Path, force: bool = False,
                 temperature: float | None = None) -> Path:
    """Write a composite run directory C that sample/eval/plot/``ebmlab.load`` accept like any other.

    ``sources``: run directories, or ``RUN:CLASS`` for class CLASS of a conditional/JEM run (its
    ``for_class`` view, f(x) = logits[CLASS]). ``op``: and / or / not (None: one component only,
    used as it is). ``temperature``: divide the result's f by T > 0. Everything is checked before
    ``out`` is created.
    """
    from ebmlab.models.compose import Temperature, class_spec, class_view, compose
    if temperature is not None and not (math.isfinite(temperature) and temperature > 0):
        raise EBMError(f"--temperature must be a finite number > 0, got {temperature}")
    if op is None:
        if len(sources) != 1:
            raise EBMError(f"give --op and, or or not to combine {len(sources)} models")
        if weights is not None:
            raise EBMError("--weights needs --op")
    parsed = [parse_component(s) for s in sources]
    if op is None and parsed[0][1] is None and temperature is None:
        raise EBMError("nothing to compose: give --op with two or more models, --temperature T, or a class RUN:CLASS")
    opened: dict[str, Run] = {}
    runs, models, specs = [], [], []
    for text, (path, klass) in zip(sources, parsed):
        key = str(Path(path).resolve())
        if key not in opened:
            opened[key] = open_run(path)
        r = opened[key]
        runs.append(r)
        if klass is None:
            models.append(r.model)
            specs.append(key)
        else:
            models.append(class_view(r.model, klass, name=path))
            specs.append(class_spec(key, klass))
    first = runs[0]
    for r in runs[1:]:
        if r.data["event_shape"] != first.data["event_shape"]:
            raise EBMError(f"cannot compose {r.path} (shape {r.data['event_shape']}) with {first.path} "
                           f"(shape {first.data['event_shape']}): data shapes differ")
        if r.data.get("scaling") != first.data.get("scaling"):
            raise EBMError(f"cannot compose {r.path} with {first.path}: their data scales differ")
    if op is None:
        model, spec = models[0], specs[0]
    else:
        model = compose(op, models, weights)
        spec = model.to_spec(specs)
    if temperature is not None:
        spec = Temperature(model, temperature).to_spec([spec])
    out = Path(out)
    needed = {Path(k) for k in opened}         # the components and, for composites, theirs at any depth
    for k in opened:
        needed |= component_dirs(Path(k))
    if any(out.resolve() == k or out.resolve() in k.parents for k in needed):
        raise EBMError(f"--out {str(out)!r} is one of the runs being composed, at some depth (or holds one); "
                       "choose a new directory")
    prepare_run_dir(out, force, kind="composite")
    atomic_write_text(out / "data.json", json.dumps({"format_version": FORMAT_VERSION, "kind": "composite",
                                                     "spec": spec}, indent=2))
    return out
