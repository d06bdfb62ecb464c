"""What ``ebmlab sample`` does: draw chains from a run's model and write them as .npy or PNG."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ebmlab.atomic import atomic_write_bytes
from ebmlab.errors import EBMError
from ebmlab.models.conditional import ConditionalEnergyModel
from ebmlab.rundir.checkpoint import latest_checkpoint, load_checkpoint
from ebmlab.rundir.config import MAX_CHAIN_STEPS, RunConfig
from ebmlab.rundir.lock import refuse_if_training
from ebmlab.samplers.compiled import compile_sampler, compile_seconds
from ebmlab.samplers.registry import SAMPLER_NAMES
from ebmlab.samplers.run import run_chains
from ebmlab.tasks.open import Run, refuse_writing_over_data, test_data
from ebmlab.training.guard import ChainScale, chain_quantities, check_samples
from ebmlab.training.negatives import make_init_fn, sampler_from_config
from ebmlab.viz.imageio import save_grid_png, save_strip_png
from ebmlab.viz.plots import plot_2d_panel, plot_samples_2d


def draw_samples(run: Run, n: int, n_steps: int | None = None, method: str | None = None,
                 step_size: float | None = None, seed: int = 0, start: str = "noise",
                 trajectory_every: int | None = None,
                 klass: int | None = None, compile: bool = False,
                 ) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, float]]:
    """n samples [n, *event] in the MODEL's scale, the chain every k steps, and diagnostics.

    Starts from the training recipe's noise (``start="noise"``) or from the replay buffer
    (``start="buffer"``). The kernel is the training kernel unless ``method`` is given.
    ``klass``: for a conditional/JEM run, sample p(x | y = klass) (``for_class``); None samples
    the model itself (for those runs the marginal f(x) = logsumexp_y logits). ``compile``: the
    chains' density through ``torch.compile`` (samplers/compiled.py); its compile time is
    ``info["compile_seconds"]``.
    """
    if n <= 0:
        raise EBMError(f"--n must be a positive integer, got {n}")
    if n > MAX_SAMPLES:      # a typo would otherwise end in a failed allocation or run for days
        raise EBMError(f"--n {n} is more than the {MAX_SAMPLES} samples a sampling run may draw; draw fewer "
                       "(or several runs with different --seed)")
    target = run.model if klass is None else class_model(run, klass)
    cfg = run.config
    overrides: dict[str, Any] = {}
    if method is not None:
        overrides["sampler"] = method if method in SAMPLER_NAMES else _bad_method(method)
    if step_size is not None:
        overrides["step_size"] = step_size
    cfg = cfg.replace(**overrides) if overrides else cfg
    if n_steps is None:
        n_steps = default_sample_steps(cfg, run.is_vector)
    elif cfg.sampler in LEVEL_SAMPLERS:
        cfg = _spread_over_levels(cfg, n_steps)
    if n_steps < 0:
        raise EBMError(f"--n-steps must be >= 0, got {n_steps}")
    if n_steps > MAX_CHAIN_STEPS:      # a hand-edited mcmc_steps or a typo would otherwise run for days
        raise EBMError(f"{n_steps} chain steps is more than the {MAX_CHAIN_STEPS} a sampling run may take; "
                       "give a smaller --n-steps")
    g = torch.Generator().manual_seed(seed)
    kernel = sampler_from_config(cfg, target, run.data)
    if compile:
        kernel = compile_sampler(kernel)
    if start == "buffer":
        x0 = _buffer_states(run, n, g)
    elif start == "noise":
        x0 = make_init_fn(run.data, "uniform" if cfg.init == "data" else cfg.init, torch.empty(0), torch.device("cpu"))(n, g)
    else:
        raise EBMError(f"--from must be 'noise' or 'buffer', got {start!r}")
    if trajectory_every and cfg.sampler in LEVEL_SAMPLERS:
        # each chunk of frames would restart the walk at the top level (its level is the chain's step
        # count) and end it with the last level's step: the samples would be those of a chain K steps long
        raise EBMError(f"--trajectory is not available with the {cfg.sampler} sampler (its noise level follows "
                       "the chain's step count, which each saved frame would restart); sample without it")
    frames = [x0.clone()] if trajectory_every else []
    frame_steps = [0] if trajectory_every else []
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
            frame_steps.append(done)
    # the chains are judged once, after the loop (one host sync): non-finite or runaway samples
    # are refused here, so ``sample`` never writes them (nor a trajectory strip of them)
    mean_grad = torch.stack(diag_grad).sum() / n_steps if diag_grad else None
    check_samples(chain_quantities(x, ChainScale(run.data), cfg, mean_grad), cfg.max_chain_scale)
    info = {"n_steps": n_steps, "acceptance": float(sum(diag_acc) / max(n_steps, 1)) if diag_acc else 1.0}
    if diag_grad:
        info["grad_norm"] = float(sum(diag_grad) / n_steps)
    if compile:
        info["compile_seconds"] = compile_seconds(kernel)
    if trajectory_every:
        info["frame_steps"] = frame_steps      # the chain step of each frame (labels of the figure)
    return x.detach(), frames, info


# chains one `sample` may run at once (10**7 2-D points are 80 MB; the chains hold a few copies)
MAX_SAMPLES = 10**7

# samplers whose noise level is set by the chain's step count: annealed Langevin (dsm's levels, steps split
# evenly over them) and the recovery walk (drl's levels, K steps each)
LEVEL_SAMPLERS = ("annealed-langevin", "recovery")


def _spread_over_levels(cfg: RunConfig, n_steps: int) -> RunConfig:
    """The config whose sampler walks all its noise levels in ``n_steps`` steps (annealed-langevin, recovery).

    Their level schedule comes from ``mcmc_steps`` (the training chain), so a shorter ``--n-steps`` stopped
    the walk at a noisy level (and a noise-conditional dsm model then denoised it as if at the last one)."""
    levels = cfg.drl_levels if cfg.sampler == "recovery" else len(cfg.dsm_sigmas)
    if 0 <= n_steps < levels:
        raise EBMError(f"--n-steps {n_steps} is fewer than the {levels} noise levels the {cfg.sampler} sampler walks "
                       f"down; give at least {levels} (or leave --n-steps out for the default)")
    if n_steps < 0:
        return cfg               # refused by the caller
    return cfg.replace(mcmc_steps=min(n_steps // levels if cfg.sampler == "recovery" else n_steps,
                                      MAX_CHAIN_STEPS))


def class_model(run: Run, klass: int) -> torch.nn.Module:
    """The model of one class of a conditional/JEM run; EBMError for other runs or a bad class."""
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
    ratio 3.98 at K = 20 against 61 at 100 steps: a 300 CPU-s tuning run of 2026-11-29, recorded in commit
    1c2c62d's message, not in a results file). Persistent image
    models: 100 steps. A drl model (sampler recovery): K steps on each of its L levels. Vector data:
    long chains (max(200, 10 K)), which the jump/MH kernels need to mix.
    """
    if cfg.sampler == "recovery":     # a drl model: the walk from noise down its levels, K steps each
        return cfg.mcmc_steps * cfg.drl_levels
    if is_vector:
        return max(200, cfg.mcmc_steps * 10)
    return cfg.mcmc_steps if cfg.negatives == "short-run" else 100


def _bad_method(method: str) -> str:
    raise EBMError(f"unknown --method {method!r}; choose one of {', '.join(SAMPLER_NAMES)}")


def _buffer_states(run: Run, n: int, g: torch.Generator) -> torch.Tensor:
    """n states [n, *event] drawn with replacement from the replay buffer of the run's newest checkpoint."""
    ck = latest_checkpoint(run.path)
    buf = load_checkpoint(ck)[2].get("buffer") if ck is not None else None
    if not buf:
        # dsm, ssm and nce draw no negatives at all, whatever the preset's (unused) persistent setting says
        objective = run.config.objective
        why = (f"objective {objective} draws no negative chains" if objective in ("dsm", "ssm", "nce")
               else "its recipe is not persistent")
        raise EBMError(f"{run.path} has no replay buffer ({why}); use --from noise")
    states = buf["states"]
    return states[torch.randint(0, states.shape[0], (n,), generator=g)]


def to_data_scale(run: Run, x: torch.Tensor) -> torch.Tensor:
    """Model-scale points [N, *event] back in the training data's scale (clipped to its range)."""
    s = run.scaling
    return s.from_model(x, clip=True) if s is not None else x


def write_samples(run: Run, x: torch.Tensor, out: Path, frames: list[torch.Tensor] | None = None,
                  *, panel: bool = False, frame_steps: list[int] | None = None) -> list[Path]:
    """Write samples (model scale in, data scale out) as .npy or .png; a trajectory strip beside a PNG
    (its columns labelled with ``frame_steps``, the chain step of each frame, when given).

    A PNG of 2-D samples is their scatter; ``panel`` draws the run's picture instead (data, density,
    energy, samples: ``plot.png``; a composite, which has no data of its own, without the data)."""
    out = Path(out)
    if out.suffix not in (".npy", ".png"):
        raise EBMError(f"--out must end in .npy or .png, got {str(out)!r}")
    if not out.parent.exists():
        raise EBMError(f"the folder of --out {str(out.parent)!r} does not exist")
    if out.is_dir():        # else the atomic write fails naming its temporary file
        raise EBMError(f"--out {str(out)!r} is a folder; give a file name ending in .npy or .png")
    if Path(run.path).resolve() in (out.parent.resolve(), *out.parent.resolve().parents):
        refuse_if_training(run.path, f"writing {out}")
    refuse_writing_over_data(run, out)
    written = []
    image_shape = run.data.get("image_shape")      # binary images are trained as vectors; shown as images
    k = run.data.get("categories")
    if k:      # categorical runs: one-hot chains back to integers 0..K-1 in the data's own shape
        return [write_categorical(x, int(k), run.data["value_shape"], out)]
    if out.suffix == ".npy":
        buf = io.BytesIO()
        y = to_data_scale(run, x)
        np.save(buf, (y.reshape(y.shape[0], *image_shape) if image_shape else y).numpy())
        atomic_write_bytes(out, buf.getvalue())
        written.append(out)
    elif image_shape:
        written.append(save_grid_png(2 * x.reshape(x.shape[0], *image_shape) - 1, out))
    elif run.is_vector:
        if x.shape[1] != 2:
            raise EBMError("a PNG of vector samples is drawn for 2-D data only; use --out FILE.npy")
        if panel:
            data = None if "composite" in run.data else test_data(run)
            written.append(plot_2d_panel(run.model, data, x, run.data["bounds"], out, title=str(run.path)))
        else:
            written.append(plot_samples_2d(x, run.data["bounds"], out, title=f"{run.path}: {x.shape[0]} samples"))
    else:
        written.append(save_grid_png(x, out))
    if frames and image_shape:          # binary images: {0, 1} frames as [-1, 1] pictures, as their grid
        frames = [2 * f.reshape(f.shape[0], *image_shape) - 1 for f in frames]
    if frames and (image_shape or not run.is_vector):
        strip = out.with_name(out.stem + "-trajectory.png")
        if frame_steps is not None and len(frame_steps) == len(frames):
            from ebmlab.viz.trajectory import save_labelled_trajectory_png
            written.append(save_labelled_trajectory_png(torch.stack([f[:8] for f in frames]), frame_steps, strip))
        else:
            written.append(save_strip_png(torch.stack([f[:8] for f in frames]), strip))
    return written


def write_categorical(x: torch.Tensor, k: int, value_shape: list[int], out: Path) -> Path:
    """One-hot samples [N, d*K] as integers [N, *value_shape]: a .npy (int64), or for 2-D / 3-D values a
    PNG grid with category c drawn as grey level c / (K - 1)."""
    from ebmlab.models.categorical import from_one_hot
    ints = from_one_hot(x, k, value_shape)
    if out.suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, ints.numpy())
        atomic_write_bytes(out, buf.getvalue())
        return out
    if len(value_shape) not in (2, 3):
        raise EBMError(f"a PNG of categorical samples needs 2-D or 3-D values (H, W) or (C, H, W); these have shape "
                       f"{tuple(value_shape)}: use --out FILE.npy")
    img = ints.float().reshape(ints.shape[0], -1, *value_shape[-2:])[:, :1]
    return save_grid_png(2 * img / (k - 1) - 1, out)
