# PYTHON_ARGCOMPLETE_OK  (argcomplete: this module's parser completes `ebmlab` on the command line)
"""The ``ebmlab`` command. The only module that imports argparse and tqdm.

Every user mistake ends as one line ``ebmlab: error: ...`` on stderr and exit status 2: EBMError
(raised where a value is read and validated) and the I/O, decoding, safetensors and image errors a
user's files or disk can cause. ``--debug`` (or EBMLAB_DEBUG=1) shows the full traceback instead.
Anything else is a bug: one line ``ebmlab: internal error: ...`` and exit 1.

Langevin update used by every sampler and preset:
    x <- x + step_size * clip(∇f(x)) + noise_scale * z,  z ~ N(0, I);  noise_scale defaults to sqrt(2 step_size).
"""
from __future__ import annotations

import argparse
import warnings
import errno
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from ebmlab.device import usable_cpu_threads
from ebmlab.errors import EBMError, RankError
from ebmlab.samplers.registry import SAMPLER_NAMES
from ebmlab.samplers.malloc import keep_freed_memory_unless_disabled
from ebmlab.models.binary import MAX_ENUM_BITS

UPDATE_RULE = ("Langevin update: x <- x + step_size * clip(grad f(x)) + noise_scale * z "
               "(noise_scale defaults to sqrt(2 * step_size)); f = log density, energy = -f.")

# CLI flag -> (type, help) for RunConfig keys. None (not given) leaves the value of the preset (or of a
# --config file), so each help says "default: from the preset"; --print-config shows the result.
FROM_PRESET = "default: from the preset; --print-config shows it"
TRAIN_FLAGS: dict[str, tuple[Any, str]] = {
    "steps": (int, "training steps (parameter updates)"),
    "seed": (int, "seed of the initial weights, the data order and the chains"),
    "lr": (float, "Adam learning rate"),
    "batch_size": (int, "data points (and negatives) per step; with --nproc the global batch"),
    "mcmc_steps": (int, "sampler steps per training step (K)"),
    "step_size": (float, "sampler step: Langevin/MALA/HMC step, for mh-jump the local scale as a fraction of "
                         "the support box's width"),
    "noise_scale": (float, "Langevin noise scale (the preset's None means sqrt(2 * step_size))"),
    "grad_clip": (float, "clip each entry of grad f in the chains' update to [-c, c] (the preset's None: no clip)"),
    "sampler": (str, "MCMC kernel of the negatives"),
    "negatives": (str, "where the chains start each step: persistent (replay buffer), short-run (fresh noise) "
                       "or cd (the data batch)"),
    "l2": (float, "weight of the penalty f(x+)^2 + f(x-)^2 that keeps |f| bounded"),
    "preset": (str, "named recipe (training/presets.py: each number with its source): 2d, vector, short-run, "
                    "persistent, digits, faces, celeba (Nijkamp et al. 2019 at 64x64, for a GPU); with --labels: conditional "
                    "(f(x, y) = logits[y]) or jem (classifier + EBM); for binary data binary, rbm, and categorical for "
                    "one-hot categories. "
                    "Default: picked from the data (digits / faces for those built-in sets, short-run for other images, "
                    "vector for d > 3, else 2d)"),
    "device": (str, "auto (CUDA when present), cpu, cuda, cuda:N or mps (default: cpu)"),
    "image_size": (int, "side of the square images the network sees (image data); default: the data's own for a "
                          ".npy or a built-in set; required for an image folder (resized and centre-cropped to it)"),
    "on_divergence": (str, "when f or the weights blow up: stop with a message, or rollback to the last "
                           "checkpoint and continue with a smaller learning rate"),
    "log_every": (int, "steps between rows of metrics.jsonl"),
    "checkpoint_every": (int, "steps between checkpoints"),
    "plot_every": (int, "steps between refreshes of the run's picture"),
    "buffer_size": (int, "replay buffer size (persistent negatives)"),
    "jump_prob": (float, "mh-jump sampler: probability of a uniform jump over the support box"),
    "data_noise": (float, "std of the Gaussian noise added to training data each step"),
    "labels": (str, "class labels for --preset conditional / jem: 'builtin' (digits) or a .npy of integers, "
                    "one per example of a .npy data file (default: none, an unconditional EBM)"),
    "precision": (str, "network precision while training: bf16/fp16 run the forward passes under autocast "
                       "(fp16 with a gradient scaler, CUDA only); chains, weights and checkpoints stay float32. "
                       "For GPUs: on a CPU bf16 is usually slower (default: fp32)"),
    "compile": (bool, "torch.compile the density the negative chains sample (needs a C++ compiler on the CPU; "
                      "compile time is logged apart as compile_seconds); off unless given: see "
                      "benchmarks/results/compile_speed.md for when it pays back"),
    "tensorboard": (bool, "write TensorBoard event files (DIR/tb: the metrics rows and the pictures) beside "
                          "metrics.jsonl and metrics.csv (default: on when the tensorboard package is installed)"),
    # ---- binary data (data/binary.py, models/rbm.py)
    "binary": (bool, "declare the data binary: every value must be 0 or 1 (a .npy of only 0/1 values is "
                     "detected as binary without it)"),
    "net": (str, "network: auto (an MLP for vectors, a conv net for images; the preset may choose), mlp, conv, "
                 "resnet, shortrun (Nijkamp et al. 2019's conv stack), or, for binary data, rbm (a Bernoulli "
                 "RBM trained with block Gibbs), or, for categorical data, potts"),
    "hidden": (int, "MLP width, or the RBM's number of hidden units"),
    "activation": (str, "hidden-layer activation of the vector MLP: silu (smooth scores; needed by dsm/ssm) or "
                        "relu (resolves many sharp 2-D modes better, smooth shapes worse: see the 2d preset)"),
    "net_features": (str, "the vector MLP's first hidden layer: linear (the activation, like the others), sine "
                          "(learned Fourier features sin(Wx + b): many sharp modes in 2-D; see the 2d preset) or "
                          "hybrid (half linear, half sine)"),
    "input_gain": (float, "the vector MLP sees this gain times the standardised input (x - mean) / std: its first "
                          "layer's initial frequency in units of the data's spread (default: 1; see the presets)"),
    # ---- categorical data (data/categorical.py, models/potts.py)
    "categories": (int, "declare a .npy of integers 0..K-1 categorical with K categories (one-hot inside, samples "
                        "come back as integers in the same shape; preset categorical)"),
    # ---- objectives beyond CD (docs/objectives.md)
    "objective": (str, "training objective: cd (contrastive divergence), dsm (denoising score matching), ssm "
                       "(sliced score matching), nce (noise-contrastive estimation), drl (diffusion recovery likelihood, "
                       "images); conditional and jem come "
                       "with --labels and their presets"),
    "dsm_sigmas": (lambda text: _float_list(text), "dsm noise levels, comma-separated (one: plain DSM; several: "
                                                   "a sigma^2-weighted sum, sampled by --sampler annealed-langevin)"),
    "ssm_projections": (int, "ssm: random projections per data point"),
    "sm_uniform": (float, "dsm/ssm: fraction of each batch drawn uniformly over the support box (vector data), "
                          "which pins f where there is no data"),
    "ssm_directions": (str, "ssm: the random directions v: gaussian (N(0, I)), rademacher (+-1 entries) or "
                            "orthogonal (rows of a random orthogonal frame times sqrt(d))"),
    "ssm_variance_reduced": (bool, "ssm: the variance-reduced norm term ½‖s‖² (--no-ssm-variance-reduced: the plain "
                                   "½(vᵀs)², torchebm's form) (default: on)"),
    "sm_uniform_schedule": (str, "dsm/ssm: the floor fraction over training: constant, or lr (sm_uniform times the "
                                 "learning rate's schedule factor, so a cosine fades the floor out)"),
    "dsm_anneal_factor": (float, "dsm: start every noise level at this multiple of itself and shrink it "
                                 "geometrically to itself by --dsm-anneal-until (1: fixed levels)"),
    "dsm_anneal_until": (float, "dsm: the fraction of the run over which --dsm-anneal-factor's curriculum ends"),
    "dsm_antithetic": (bool, "dsm: use each point's noise as a pair +eps, -eps (the same objective, a lower-variance "
                             "estimate, two forwards per point) (default: off, on in the 2d preset's dsm)"),
    "nce_components": (int, "nce: Gaussian-mixture components of the noise fitted to the data (0: 8 for d <= 3, "
                            "else 1)"),
    "nce_ratio": (int, "nce: noise points per data point"),
    "drl_levels": (int, "drl: number of noise levels L (a cosine schedule from the data to ~N(0, I)); each level's "
                        "conditional is sampled by --mcmc-steps Langevin steps of --step-size * sigma^2"),
    "dsm_conditional": (bool, "dsm on images: a noise-conditional network f(x, sigma) for the --dsm-sigmas levels "
                              "(NCSN), sampled by annealed Langevin on each level's own f and a final denoising "
                              "step (default: off, on in the digits preset's dsm)"),
    "drl_energy_scale": (float, "drl: c in each level's f = n / (c sigma^2); Gao et al. 2021 set c = --step-size"),
    "ema_decay": (float, "keep an exponential moving average of the weights with this decay in [0, 1) (e.g. 0.999); "
                         "sample, eval and the final pictures then use it, the training chains and --resume the raw "
                         "weights; 0 samples with the raw weights (the digits preset sets 0.995, the others none)"),
}
# train flags whose help already states their own default
_OWN_DEFAULT = ("preset", "device", "image_size", "labels", "precision")


class _Formatter(argparse.HelpFormatter):
    """Shows each option's default after its help, unless the help already says it (or there is none to show)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        # `is`: a default of 0 is worth showing, False (a flag's "off") is not
        shown = action.default is not None and action.default is not False \
            and action.default != argparse.SUPPRESS and not action.required
        if shown and "default" not in text.lower() and action.option_strings:
            text += " (default: %(default)s)"
        return text


def _float_list(text: str) -> list[float]:
    """'0.5,0.2,0.1' -> [0.5, 0.2, 0.1] (an empty text is an empty list, which the config refuses)."""
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _count(n: int, noun: str) -> str:
    """'1 step', '10 steps'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _seed(text: str) -> int:
    """A seed as training takes one (rundir/config.py): 0 <= seed < 2**63; torch refuses 2**64 and above
    with an internal-looking overflow error, and the commands derive seed + 1, seed + 2 from it."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= v < 2**63:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to 2**63 - 1, got {text!r}")
    return v


def package_version() -> str:
    """ebmlab's version: a source checkout's pyproject.toml (the package imported from <root>/src), else
    the installed package's metadata, else "unknown". pyproject.toml is the only copy of the number.

    The checkout comes first because an editable install keeps the metadata of the version it was
    installed at: pip does not refresh it when pyproject.toml changes, so a 0.10.0 checkout installed
    at 0.8.0 reported 0.8.0 (in `--version` and in every benchmark header) until reinstalled."""
    import tomllib
    try:
        project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
        if project.get("name") == "ebmlab":
            return str(project["version"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("ebmlab")
    except PackageNotFoundError:
        pass
    return "unknown"


def _sub(sub: Any, name: str, **kw: Any) -> argparse.ArgumentParser:
    return sub.add_parser(name, formatter_class=_Formatter, **kw)


def _parser() -> argparse.ArgumentParser:
    from ebmlab.training.presets import PRESETS
    from ebmlab.rundir.config import ACTIVATIONS, NET_FEATURES, SM_UNIFORM_SCHEDULES, SSM_DIRECTIONS
    p = argparse.ArgumentParser(prog="ebmlab", formatter_class=_Formatter,
                                description="Energy-based models: p(x) = exp(f(x)) / Z. " + UPDATE_RULE,
                                epilog="`ebmlab COMMAND --help` explains each command.")
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}",
                   help="print ebmlab's version and exit")
    p.add_argument("--debug", action="store_true",
                   help="show the full traceback of an error (also: environment variable EBMLAB_DEBUG=1)")
    p.add_argument("--threads", type=_positive_int, default=1,
                   help="CPU threads for torch (default 1: the small default models run fastest single-threaded "
                        "on a shared CPU; raise it for large image networks)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # the global options are accepted after the subcommand too (SUPPRESS: only set when given there,
    # so the value given before the subcommand is not overwritten by a default)
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--threads", type=_positive_int, help="CPU threads for torch (default 1)")
    common.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    json_out = argparse.ArgumentParser(add_help=False)
    json_out.add_argument("--json", action="store_true", help="print the result as JSON (one document on stdout)")
    opens = argparse.ArgumentParser(add_help=False)
    opens.add_argument("--trust-code", action="store_true",
                       help="for runs of your own network: import the network class recorded in config.json "
                            "(runs its module's code; only for code you trust)")
    opens.add_argument("--device", default="cpu", help="auto, cpu, cuda, cuda:N or mps")
    run_help = "a run directory (made by `ebmlab train` or `ebmlab compose`) or a file of `ebmlab export`"

    t = _sub(sub, "train", help="train an EBM (--objective: contrastive divergence, score matching, NCE or "
                                    "diffusion recovery likelihood)", description=UPDATE_RULE,
             parents=[common, json_out])
    t.add_argument("--data", help="built-in set (eight-gaussians, checkerboard, two-spirals, rings, moons, "
                                  "pinwheel, swiss-roll, digits, digits-binary, digits-binary-4x4, faces: 100 face crops of "
                                  "scikit-image's lfw_subset, "
                                  "pip install ebmlab[faces]), a .npy file (N,d) or (N,C,H,W), or an image folder "
                                  "(required unless --resume)")
    t.add_argument("--out", help="run directory to create (required unless --resume)")
    t.add_argument("--resume", metavar="DIR", help="continue a stopped or killed run exactly (default: a new run)")
    t.add_argument("--force", action="store_true", help="replace an existing run directory")
    t.add_argument("--config", metavar="FILE", help="a .toml or .json file of settings; flags override it "
                                                    "(default: none, the preset alone)")
    t.add_argument("--print-config", action="store_true",
                   help="print the resolved settings (preset, --config file and flags; with --resume the run's) "
                        "as JSON and exit without training or writing anything")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--trust-code", action="store_true",
                   help="with --resume, for runs of your own network: import the recorded network class "
                        "(runs its module's code; only for code you trust)")
    t.add_argument("--nproc", type=_positive_int, default=None, metavar="N",
                   help="train with N processes on this machine (DistributedDataParallel through torch's "
                        "elastic launcher, as torchrun --standalone --nproc-per-node N -m ebmlab train ...): "
                        "CPU (gloo) up to one per core, CUDA (NCCL) one per GPU; --batch-size is the global "
                        "batch. A run resumes with the same N (default: one process)")
    closed = {"sampler": list(SAMPLER_NAMES), "negatives": ["persistent", "short-run", "cd"],
              "on_divergence": ["stop", "rollback"], "precision": ["fp32", "bf16", "fp16"], "preset": list(PRESETS),
              "activation": list(ACTIVATIONS), "net_features": list(NET_FEATURES),
              "sm_uniform_schedule": list(SM_UNIFORM_SCHEDULES), "ssm_directions": list(SSM_DIRECTIONS)}
    for name, (typ, text) in TRAIN_FLAGS.items():
        kw: dict[str, Any] = {"type": _positive_int if name in ("steps", "batch_size", "image_size") else typ,
                              "help": text if name in _OWN_DEFAULT else f"{text} ({FROM_PRESET})"}
        if name in closed:
            kw["choices"] = closed[name]
        if name == "labels":
            kw["metavar"] = "{builtin,FILE.npy}"
        if name == "compile":      # a switch: given means True, absent leaves the preset's / --config's value
            kw = dict(action="store_const", const=True, help=text + " (default: off)")
        if name in ("tensorboard", "dsm_conditional", "ssm_variance_reduced", "dsm_antithetic"):     # --X / --no-X (the preset may set it)
            kw = dict(action=argparse.BooleanOptionalAction, help=text)
        if name == "binary":
            kw = dict(action="store_const", const=True, help=text + " (default: detected)")
        if name == "net":
            kw["choices"] = ["auto", "mlp", "conv", "resnet", "shortrun", "rbm", "potts"]
        t.add_argument("--" + name.replace("_", "-"), dest=name, default=None, **kw)

    s = _sub(sub, "sample", parents=[common, opens, json_out], help="draw samples from a trained model",
             description=UPDATE_RULE)
    s.add_argument("run", help=run_help)
    s.add_argument("--n", type=_positive_int, default=64, help="number of samples (independent chains)")
    s.add_argument("--out", required=True, help="FILE.npy (data scale) or FILE.png")
    s.add_argument("--method", choices=list(SAMPLER_NAMES), help="sampler (default: the run's training sampler)")
    s.add_argument("--n-steps", type=int, help="chain length (default: K, the training chain length, for short-run "
                   "models, which are trained as K-step generators; 100 for persistent image models; "
                   "max(200, 10 K) for vector data; L K for a drl run's walk down its L levels). A dsm run's "
                   "annealed chain and a drl run's walk spread the N steps evenly over their noise levels")
    s.add_argument("--step-size", type=float, help="sampler step (default: the run's training step)")
    s.add_argument("--seed", type=_seed, default=0, help="seed of the chains")
    s.add_argument("--from", dest="start", choices=["noise", "buffer"], default="noise",
                   help="start the chains from the training recipe's noise or from the run's replay buffer")
    s.add_argument("--trajectory", type=_positive_int, metavar="K",
                   help="(image runs) also write the chain every K steps, beside --out as OUT-trajectory.png: 8 chains, "
                        "one column per saved step, labelled t=step (default: no trajectory)")
    s.add_argument("--compile", action="store_true",
                   help="torch.compile the model's density for the chains (compile time printed apart; default: off)")
    s.add_argument("--class", dest="klass", type=int,
                   help="(conditional and JEM runs) sample this class, f(x, y) = logits[y]; default: the marginal")

    e = _sub(sub, "eval", parents=[common, opens, json_out],
             help="test NLL, log Z, sample quality and chain diagnostics")
    e.add_argument("run", help=run_help)
    e.add_argument("--data", help="evaluate on this data instead of the run's held-out set (default: held-out set)")
    e.add_argument("--log-z", choices=["quadrature", "ais", "enumeration"],
                   help="how to estimate log Z (default: quadrature for d <= 3; enumeration of {0,1}^d for "
                        "binary data with d <= 24, AIS with its reverse bound above; else none)")
    e.add_argument("--ood", action="append", metavar="SET",
                   help="out-of-distribution sets, repeatable or comma-separated: uniform (noise over the model's "
                        "input range / the support box), shuffled (test images with pixels permuted; vectors: "
                        "coordinates permuted across points), photo-patches (patches of scikit-learn's two photos; "
                        "images only) or a .npy of points in the data's scale. Prints the AUROC against the test set "
                        "of f (higher f = inlier) and of the score norm |grad_x f| with SMALLER = inlier, as in "
                        "JEM (Grathwohl et al. 2019): data sit near modes, where f is flat. 0.5 = chance. "
                        "Outliers are drawn with --seed (default: none)")
    e.add_argument("--seed", type=_seed, default=0, help="seed of the samples, AIS chains and outlier sets")
    e.add_argument("--fid", metavar="REAL.npy",
                   help="also the Inception FID of samples against these real images (N, C, H, W) at the model's "
                        "size: uint8 0..255 as `ebmlab prepare` writes them, or floats in the data's scale; "
                        "needs --inception-weights and torch-fidelity (pip install ebmlab[fid]) (default: no FID)")
    e.add_argument("--inception-weights", metavar="FILE",
                   help="your local copy of torch-fidelity's FID Inception weights "
                        "(weights-inception-2015-12-05-6726825d.pth); ebmlab never downloads it (default: none)")

    sc = _sub(sub, "score", parents=[common, opens, json_out], help="write f(x) (or exact log p(x)) of a trained model "
              "at your points",
              description="f(x), the model's log density up to log Z, at every point of a .npy in the data's scale, "
                          "in file order: f(x) - f(y) = log p(x)/p(y) needs no Z. --log-p subtracts log Z where it "
                          "is exact (quadrature for vectors with d <= 3, enumeration for binary and categorical "
                          "states); elsewhere `ebmlab eval --log-z ais` estimates it. Points outside a vector "
                          "model's support box score -inf.")
    sc.add_argument("run", help=run_help)
    sc.add_argument("--data", required=True, help="a .npy of points (N, *shape) in the data's scale (images: 0..255 "
                    "pixels for a folder or uint8 run; categorical: integers 0..K-1)")
    sc.add_argument("--out", required=True, help="FILE.npy (float64, one value per point) or FILE.csv")
    sc.add_argument("--log-p", action="store_true", help="write log p(x) = f(x) - log Z, log Z exact (default: f)")

    pl = _sub(sub, "plot", parents=[common, opens, json_out],
              help="write the run's pictures (plot.png / samples.png, curves.png, traces.png, energy_hist.png)")
    pl.add_argument("run", help="a run directory (made by `ebmlab train` or `ebmlab compose`)")
    pl.add_argument("--seed", type=_seed, default=0, help="seed of the samples drawn for the pictures")

    c = _sub(
        sub, "compose", parents=[common, opens, json_out], help="combine trained models into a new run directory",
        description="Write a composite run directory (sample, eval, plot and ebmlab.load take it like any run). "
                    "and: f = sum_i w_i f_i (product of experts); or: f = log sum_i pi_i exp(f_i) (mixture, "
                    "pi = weights / sum); not (two models A B): f = w_a f_A - alpha f_B (A and not B); "
                    "--temperature T: f / T.",
        epilog="Examples: ebmlab compose runs/cond:3 runs/cond:8 --op and --out runs/3and8;  "
               "ebmlab compose runs/cond:1 runs/cond:7 --op not --weights 1,0.5 --out runs/1not7;  "
               "ebmlab compose runs/cond:3 --temperature 0.5 --out runs/3cold")
    c.add_argument("runs", nargs="+", metavar="RUN[:CLASS]",
                   help="run directories; RUN:CLASS is class CLASS of a conditional or JEM run, f(x) = logits[CLASS] "
                        "(a path that exists is always read as a run directory, even if it ends in ':N')")
    c.add_argument("--op", choices=["and", "or", "not"],
                   help="how to combine the models (required for two or more; with one model the default is none)")
    c.add_argument("--weights", help="comma-separated, one per model (for 'not': alpha or w_a,alpha); "
                                     "default: 1 each")
    c.add_argument("--temperature", type=float, metavar="T",
                   help="divide the composite's f by T > 0 (T < 1 sharpens, T > 1 flattens; default: 1)")
    c.add_argument("--out", required=True, help="the composite run directory to create")
    c.add_argument("--force", action="store_true", help="replace an existing composite run directory")

    pr = _sub(sub, "prepare", parents=[common, json_out],
              help="resize a folder of images once into a uint8 .npy cache that train reads from disk",
              description="Decode and resize every image under IMAGE_DIR into one uint8 (N, C, S, S) .npy "
                          "file; `ebmlab train --data OUT.npy` then reads it a batch at a time instead "
                          "of holding the images in memory. Corrupt and non-image files are skipped and "
                          "counted; an interrupted run continues when run again with the same arguments.")
    pr.add_argument("image_dir", metavar="IMAGE_DIR", help="folder of images (searched recursively)")
    pr.add_argument("--size", type=int, required=True,
                    help="side S of the square images: shorter side resized to S (bicubic), then centre-cropped")
    pr.add_argument("--out", required=True, help="the cache file to write (must end in .npy)")
    pr.add_argument("--crop", choices=["center", "celeba"], default="center",
                    help="center (default): nothing cut before the resize; celeba: first the aligned-CelebA face "
                         "box (15, 40, 163, 188) of the 178x218 images (Larsen et al. 2016), scaled for other sizes")
    pr.add_argument("--force", action="store_true", help="replace an existing --out file")

    i = _sub(sub, "inpaint", parents=[common, opens, json_out],
             help="fill masked pixels of an image by conditional Langevin")
    i.add_argument("run", help="a run directory of a model trained on images")
    i.add_argument("--image", required=True, help="the image to fill (PNG, JPEG, ...)")
    i.add_argument("--mask", choices=["box", "left-half", "random"], default="box",
                   help="which pixels to hide and fill")
    i.add_argument("--resize", action="store_true",
                   help="scale an image of another size so its shorter side fits the model, then centre-crop")
    i.add_argument("--convert", action="store_true",
                   help="convert a colour image to grey (or grey to RGB) when the model's channels differ")
    i.add_argument("--out", default=None, help="output prefix: writes PREFIX-inpaint.png (default: next to the image)")
    i.add_argument("--n-steps", type=_positive_int, default=None,
                   help="Langevin steps (default: as `sample` — K for short-run models, else 100)")
    i.add_argument("--fills", type=_positive_int, default=1,
                   help="average this many independent fills: their mean estimates E[missing | observed], the "
                        "fill with the least squared error (default 1: one sample of p(missing | observed))")
    i.add_argument("--seed", type=_seed, default=0, help="seed of the mask and the chains")

    r = _sub(sub, "runs", parents=[common, json_out], help="list the run directories under a folder",
             description="One line per run directory under DIR: path, kind (run/composite), training objective, "
                         "status (finished; partial: resume it; diverged: the divergence guard stopped it, change "
                         "its settings; training: another process holds its lock; damaged), steps done / "
                         "total, and the last logged gap f(data) - f(negatives) (or loss). Reads only.")
    r.add_argument("dir", nargs="?", default="runs", metavar="DIR", help="the folder to search, recursively (default: ./runs)")

    ex = _sub(sub, "export", parents=[common, json_out], help="write a run's model as one .safetensors file and a JSON card",
              description="Share a trained model without its training state: the newest checkpoint's weights as "
                          "OUT.safetensors (the recipe in its metadata) and OUT.json beside it (the data, the recipe, "
                          "the last metrics row, how to load it). ebmlab.load(OUT.safetensors), `ebmlab sample` and "
                          "`ebmlab eval` take the file like a run directory.")
    ex.add_argument("run", help="a run directory made by `ebmlab train` (a composite: export its components)")
    ex.add_argument("--out", required=True, help="the weights file to write, ending in .safetensors")
    ex.add_argument("--force", action="store_true", help="replace an existing OUT.safetensors / OUT.json")

    co = _sub(sub, "completion", help="print the shell's tab-completion script for ebmlab",
              description="Tab completion of commands, options and choices through argcomplete "
                          "(pip install 'ebmlab[completion]'). Bash: eval \"$(ebmlab completion bash)\" in "
                          "~/.bashrc; zsh and fish likewise. Same as: register-python-argcomplete ebmlab.")
    co.add_argument("shell", choices=["bash", "zsh", "fish", "tcsh", "powershell"], help="the shell to complete in")
    return p


def _autocomplete(parser: argparse.ArgumentParser) -> None:
    """Answer a shell's tab-completion request (environment _ARGCOMPLETE set) and exit; otherwise nothing."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(parser)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:       # Ctrl-C while the parser and torch's settings load, before a command runs
        print("ebmlab: interrupted", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    _autocomplete(parser)
    args = parser.parse_args(argv)   # argparse already prints one usage line + error and exits 2
    args.argv = list(sys.argv[1:] if argv is None else argv)     # what --nproc hands to its workers
    import torch
    debug = args.debug or os.environ.get("EBMLAB_DEBUG", "") not in ("", "0")
    if not debug:      # a warning is one line too (Python's default adds the source line that raised it)
        warnings.formatwarning = lambda message, category, *rest, **kw: f"ebmlab: warning: {_one_line(str(message))}\n"
    if args.threads is not None:
        args.threads = usable_cpu_threads(args.threads)
        torch.set_num_threads(args.threads)
    try:
        # glibc keeps freed memory in this process: eager Langevin 0.80x per step with it, the page
        # faults of a step gone (samplers/malloc.py; benchmarks/results/malloc_speed.md)
        keep_freed_memory_unless_disabled()
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("ebmlab: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if isinstance(e, BrokenPipeError) and _reader_gone():
            return 141
        if debug:
            raise
        message, code = error_line(e)
        # of N processes rank 0 tells the user (every rank makes the same mistake), except what only this
        # rank can see (its GPU is missing, it could not reach the others)
        if code != 2 or os.environ.get("RANK", "0") in ("", "0") or isinstance(e, RankError):
            print(message, file=sys.stderr)
        return code


def _reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has stopped reading (``ebmlab runs | head``): what is left
    unprinted then has no reader, which is no error of the user. poll() flags such a pipe (POLLERR / POLLHUP);
    a broken pipe elsewhere leaves stdout unflagged and stays an error line. stdout is pointed at /dev/null so
    that Python's final flush stays silent too; the caller exits 141, as a process SIGPIPE ends (cat, git)."""
    import select
    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        gone = any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (OSError, ValueError, AttributeError):          # no real stdout, or no poll() on this platform
        return False
    if gone:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    return gone


def error_line(e: BaseException) -> tuple[str, int]:
    """The one line (and exit status) an exception ends as: 2 for what a user's input or machine
    can cause, 1 for a bug in ebmlab."""
    if isinstance(e, EBMError):
        return f"ebmlab: error: {_one_line(str(e))}", 2
    if isinstance(e, OSError):         # disk full, file too large, read-only, permission, ...
        code = errno.errorcode.get(e.errno or 0)
        where = f": {e.filename}" if e.filename else ""
        return f"ebmlab: error: {e.strerror or _one_line(str(e))}{f' [{code}]' if code else ''}{where}", 2
    # torch reports a failed allocation as a RuntimeError (CPU) or its OutOfMemoryError (GPU), not MemoryError
    out_of_memory = isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError" or \
        (isinstance(e, RuntimeError) and "can't allocate memory" in str(e))
    if isinstance(e, RecursionError) or out_of_memory:
        return (f"ebmlab: error: out of {'stack' if isinstance(e, RecursionError) else 'memory'} "
                "(an input nested too deeply or too large)", 2)
    if isinstance(e, (UnicodeError, EOFError)) or type(e).__name__ == "SafetensorError" or \
            type(e).__module__.startswith("PIL"):
        return f"ebmlab: error: {type(e).__name__}: {_one_line(str(e))}", 2
    return (f"ebmlab: internal error: {type(e).__name__}: {_one_line(str(e))} "
            "(a bug in ebmlab: run again with --debug and report the traceback)", 1)


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _device(args: argparse.Namespace) -> str:
    from ebmlab.device import resolve_device
    return str(resolve_device(args.device))


# ---------------------------------------------------------------------------- train
def _cmd_train(args: argparse.Namespace) -> int:
    if args.print_config:
        return _print_config(args)
    from ebmlab.training import distributed
    if args.nproc is not None and args.nproc > 1 and not distributed.launched():
        distributed.check_nproc(args.nproc, _train_device(args))
        return distributed.launch(args.argv, args.nproc)
    if distributed.launched() and args.nproc is not None and args.nproc != distributed.current().world_size:
        raise EBMError(f"--nproc {args.nproc} but the launcher started {distributed.current().world_size} processes")
    try:
        return _train_here(args, distributed.current())
    finally:
        distributed.shutdown()


def _train_device(args: argparse.Namespace) -> Any:
    """The device a run will train on, known before any work: --device, else the resumed run's, else the
    --config file's, else cpu."""
    from ebmlab.device import resolve_device
    if args.device:
        return resolve_device(args.device)
    if args.resume:
        from ebmlab.rundir.checkpoint import read_json
        return resolve_device(str(read_json(Path(args.resume) / "config.json", "run configuration (config.json)")
                                  .get("device", "cpu")))
    if args.config:       # the run's device may come from its --config file (the flag overrides it)
        from ebmlab.rundir.config import load_config_file
        settings = load_config_file(args.config)
        if isinstance(settings, dict) and settings.get("device") is not None:
            return resolve_device(settings["device"])
    return resolve_device("cpu")


def _train_settings(args: argparse.Namespace) -> dict[str, Any]:
    """RunConfig keys of a new run: a --config file's settings, then the flags given."""
    settings: dict[str, Any] = {}
    if args.config:
        from ebmlab.rundir.config import load_config_file
        settings.update(load_config_file(args.config))
        settings.pop("data", None)
    settings.update({k: getattr(args, k) for k in TRAIN_FLAGS if getattr(args, k) is not None})
    return settings


def _check_train_args(args: argparse.Namespace) -> None:
    if args.resume:
        if args.data or args.out or args.force or args.labels:
            raise EBMError("--resume DIR continues a run as it was configured; do not combine it with "
                           "--data, --labels, --out or --force")
        # any other setting would be silently ignored (the run's config.json rules; ebmlab.train(resume=)
        # refuses them too): only --steps, a new horizon, goes with --resume
        given = (["--config"] if args.config else []) + [
            "--" + k.replace("_", "-") for k in TRAIN_FLAGS if k != "steps" and getattr(args, k) is not None]
        if given:
            raise EBMError(f"--resume DIR continues a run as it was configured (its config.json); only --steps may "
                           f"be given with it, not {', '.join(given)}")
        return
    if not args.data:
        raise EBMError("train needs --data (a built-in set, a .npy file or an image folder)")
    if not args.out and not args.print_config:
        raise EBMError("train needs --out DIR for the run directory")
    if args.tensorboard:
        from ebmlab.rundir.tensorboard import require_tensorboard
        require_tensorboard()


def _print_config(args: argparse.Namespace) -> int:
    from ebmlab.tasks.train_config import resolved_config
    _check_train_args(args)
    settings = {"steps": args.steps} if args.resume else _train_settings(args)
    print(json.dumps(resolved_config(args.data, settings, resume=args.resume).to_dict(), indent=2))
    return 0


def _train_here(args: argparse.Namespace, group: Any) -> int:
    from ebmlab.training.api import resume_run, start_run
    from ebmlab.training.progress import ProgressBar
    callbacks = [] if args.quiet or not group.is_main else [ProgressBar()]
    _check_train_args(args)
    if args.resume:
        trainer = resume_run(args.resume, callbacks, steps=args.steps, trust_code=args.trust_code)
        run_dir = Path(args.resume)
    else:
        trainer, _ = start_run(args.data, args.out, args.force, callbacks, **_train_settings(args))
        run_dir = Path(args.out)
        if trainer.data_desc.get("categories") and group.is_main and not args.json:
            c = trainer.config
            k = trainer.data_desc["categories"]
            print(f"ebmlab: categorical data {{0..{k - 1}}}^{trainer.data_desc['event_shape'][0] // k}: a discrete "
                  f"EBM on one-hot values (net {c.net}, sampler {c.sampler}, {c.negatives} CD, "
                  f"{_count(c.mcmc_steps, 'step')})", file=sys.stderr)
        folder = trainer.data_desc.get("source", {}).get("folder_report")
        if folder and group.is_main and not args.json:
            from ebmlab.data.images import FolderReport
            report = FolderReport(**folder)
            if not report.left_out:      # how many images were read (skipped files are ebmlab.train's warning)
                print(f"ebmlab: {report.summary()}", file=sys.stderr)
        if trainer.data_desc.get("binary") and group.is_main and not args.json:
            c = trainer.config
            print(f"ebmlab: binary data {{0,1}}^{trainer.data_desc['event_shape'][0]}: a discrete EBM "
                  f"(net {c.net}, sampler {c.sampler}, {c.negatives} CD, {_count(c.mcmc_steps, 'step')})",
                  file=sys.stderr)
    from ebmlab.training.api import release_run
    try:
        trainer.callbacks.append(_PlotRefresher())
        result = trainer.fit()
        for cb in trainer.callbacks:
            if isinstance(cb, ProgressBar):
                cb.close()
        if result.status == "interrupted":
            if not group.is_main:
                return 130
            nproc = f" --nproc {group.world_size}" if group.active else ""
            print(f"ebmlab: interrupted at step {result.step}/{trainer.config.steps}; checkpoint written; "
                  f"continue with: ebmlab train{nproc} --resume {run_dir}", file=sys.stderr)
            return 130
        if not group.is_main:
            return 0
        _final_picture(run_dir, trainer)   # still under the run's lock: no other trainer meanwhile
    finally:
        release_run(trainer)
    res: dict[str, Any] = {"run_dir": str(run_dir), "status": result.status, "steps": result.step,
                           "trained_steps": result.trained, "seconds": result.seconds}
    # the steps of this invocation: a resumed run counts from its checkpoint, not from 0
    done = f"{result.trained} steps" + (f" (steps {result.start_step} -> {result.step})" if result.start_step else "")
    summary = f"trained {done} in {result.seconds:.0f} s -> {run_dir}"
    # the model sample, eval and these numbers use: the EMA of the weights when the run keeps one
    final = trainer.sampling_model()
    if trainer.rollbacks:
        # each rollback is in events.jsonl; without this line a run that diverged and retried at a lower
        # learning rate ended with the same words as one that never diverged
        res["rollbacks"], res["lr_scale"] = trainer.rollbacks, trainer.lr_scale
        summary += (f"; diverged and rolled back {trainer.rollbacks} time(s), learning rate now "
                    f"{trainer.lr_scale:g}x (events.jsonl has each)")
    if trainer.ema is not None:
        res["ema_decay"] = trainer.ema.decay
        summary += f"; sample/eval use the EMA of the weights (decay {trainer.ema.decay:g})"
    k = trainer.data_desc.get("categories")
    sites = trainer.data_desc["event_shape"][0] // k if k else 0
    if k and sites * math.log2(k) <= MAX_ENUM_BITS:
        from ebmlab.estimate.discrete import exact_categorical_nll
        r = exact_categorical_nll(final, trainer.dataset.test, k)
        res["exact_test_nll"] = r["nll"]
        summary += f"; exact test NLL {r['nll']:.4f} nats (enumeration of {k}^{sites})"
    elif trainer.data_desc.get("binary") and trainer.data_desc["event_shape"][0] <= MAX_ENUM_BITS:
        from ebmlab.estimate.discrete import exact_binary_nll
        r = exact_binary_nll(final, trainer.dataset.test)
        res["exact_test_nll"] = r["nll"]
        summary += f"; exact test NLL {r['nll']:.4f} nats (enumeration of 2^{trainer.data_desc['event_shape'][0]})"
    elif trainer.data_desc["kind"] == "vector" and trainer.data_desc["event_shape"][0] <= 3:
        from ebmlab.estimate.nll import exact_nll
        r = exact_nll(final, trainer.dataset.to_model(trainer.dataset.test))
        res["exact_test_nll"] = r["nll"]
        summary += f"; exact test NLL {r['nll']:.4f} nats"
        if r["outside"]:
            # exact_nll averages over the points inside the support box (learned from the training data) and
            # counts the rest; a bare "inf" (a tiny set whose one held-out point fell outside) said nothing
            n_test = trainer.dataset.test.shape[0]
            res["test_points_outside_box"] = r["outside"]
            summary += (f" ({r['outside']} of {n_test} held-out points lie outside the support box learned from "
                        f"the training data{'' if r['outside'] == n_test else ', not counted'})")
    print(json.dumps(res, indent=2) if args.json else summary)
    return 0


def _final_picture(run_dir: Path, trainer: Any) -> None:
    from ebmlab.tasks.open import open_run
    from ebmlab.tasks.plot import plot_run
    written = plot_run(open_run(run_dir))
    if trainer.tensorboard is not None:     # the final pictures at the last step
        for p in written:
            if p.name in ("plot.png", "samples.png"):
                trainer.tensorboard.image(p.stem, p, trainer.step)


class _PlotRefresher:
    """Redraws the run's picture every ``plot_every`` steps, so a long run can be watched."""

    def on_checkpoint(self, trainer, step: int) -> None:
        c = trainer.config
        if trainer.run_dir is None or step % c.plot_every != 0 or step == c.steps:
            return
        from ebmlab.tasks.open import Run
        from ebmlab.tasks.sample import draw_samples, write_samples
        if trainer.data_desc["kind"] == "vector" and trainer.data_desc["event_shape"][0] != 2 \
                and not trainer.data_desc.get("image_shape"):       # binary images are trained as vectors
            return
        # the weights samples come from: the EMA of a run with ema_decay (a copy), else the model itself
        run = Run(trainer.run_dir, trainer.sampling_model(), c, trainer.data_desc)
        was_training = trainer.model.training
        # eval: a forward pass in training mode moves spectral norm's power-iteration vectors (module
        # buffers) after the checkpoint was written, and the run would train on from a state no
        # checkpoint holds (a resumed run, or the same run through ebmlab.train, would differ)
        trainer.model.eval()
        # a fixed seed of its own: drawing pictures must not touch the training generators
        x, _, _ = draw_samples(run, 1000 if run.is_vector else 64, seed=step)
        picture = trainer.run_dir / ("plot.png" if run.is_vector and not run.data.get("image_shape") else "samples.png")
        write_samples(run, x, picture, panel=True)
        trainer.model.train(was_training)
        if trainer.tensorboard is not None:
            trainer.tensorboard.image(picture.stem, picture, step)


# ---------------------------------------------------------------------------- the rest
def _cmd_sample(args: argparse.Namespace) -> int:
    from ebmlab.tasks.open import open_run
    from ebmlab.tasks.sample import draw_samples, write_samples
    run = open_run(args.run, _device(args), args.trust_code)
    if args.trajectory and run.is_vector and not run.data.get("image_shape"):     # before any sampling
        raise EBMError(f"--trajectory draws a strip of image chains; {run.path} holds a model of "
                       f"{run.data['event_shape'][0]}-dimensional vectors: sample without it")
    x, frames, info = draw_samples(run, args.n, args.n_steps, args.method, args.step_size, args.seed,
                                   args.start, args.trajectory, klass=args.klass, compile=args.compile)
    written = write_samples(run, x, Path(args.out), frames, frame_steps=info.get("frame_steps"))
    if args.json:
        print(json.dumps({"written": [str(w) for w in written], "n": args.n, "n_steps": info["n_steps"],
                          "acceptance": float(info["acceptance"])}, indent=2))
        return 0
    compiled = f", compiled in {info['compile_seconds']:.1f} s" if "compile_seconds" in info else ""
    print(f"wrote {', '.join(map(str, written))} ({args.n} samples, {info['n_steps']} steps, "
          f"acceptance {info['acceptance']:.2f}{compiled})")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from ebmlab.tasks.evaluate import evaluate_run
    from ebmlab.tasks.open import open_run
    run = open_run(args.run, _device(args), args.trust_code)
    res = evaluate_run(run, args.data, args.log_z, args.seed, ood=args.ood, fid=args.fid,
                       inception_weights=args.inception_weights)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    for k, v in res.items():
        if k != "ood":
            print(f"{k:<22} {v:.4f}" if isinstance(v, float) else f"{k:<22} {v}")
    if "ood" in res:
        print(f"\nOOD AUROC vs the {res['n_test']} test points (1 = separated, 0.5 = chance)")
        print(f"{'outlier set':<22} {'n':>6}  {'f (high = in)':>13}  {'|grad f| (low = in)':>19}")
        for row in res["ood"]:
            print(f"{row['outlier']:<22} {row['n_out']:>6}  {row['auroc_log_density']:>13.3f}  "
                  f"{row['auroc_score_norm']:>19.3f}")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from ebmlab.tasks.open import open_run
    from ebmlab.tasks.score import score_file
    run = open_run(args.run, _device(args), args.trust_code)
    res = score_file(run, args.data, args.out, args.log_p)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    spread = f"; min {res['min']:.4g}, median {res['median']:.4g}, max {res['max']:.4g}" if "min" in res else ""
    outside = f"; {res['outside_support']} outside the support box (-inf)" if res["outside_support"] else ""
    z = (f" (log Z {res['log_z']:.4f} by {res['log_z_method']})" if "log_z" in res
         else " (log density up to log Z: differences are exact log ratios)")
    points = "1 point" if res["n"] == 1 else f"{res['n']} points"
    print(f"wrote {res['written']}: {res['values']} of {points}{z}{spread}{outside}")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from ebmlab.tasks.open import open_run
    from ebmlab.tasks.plot import plot_run
    written = plot_run(open_run(args.run, _device(args), args.trust_code), args.seed)
    if args.json:
        print(json.dumps({"written": [str(p) for p in written]}, indent=2))
        return 0
    for p in written:
        print(f"wrote {p}")
    return 0


def _cmd_compose(args: argparse.Namespace) -> int:
    from ebmlab.tasks.compose import compose_runs
    weights = None
    if args.weights:
        try:
            weights = [float(w) for w in args.weights.split(",")]
        except ValueError:
            raise EBMError(f"--weights must be comma-separated numbers, got {args.weights!r}") from None
    out = compose_runs(args.runs, args.op, weights, Path(args.out), args.force, temperature=args.temperature,
                       trust_code=args.trust_code)
    print(json.dumps({"run_dir": str(out)}, indent=2) if args.json else f"wrote composite run {out}")
    return 0


def _cmd_inpaint(args: argparse.Namespace) -> int:
    import torch
    from ebmlab.viz.imageio import load_image_as_tensor, save_labelled_row
    from ebmlab.tasks.inpaint import inpaint, make_mask
    from ebmlab.tasks.open import open_run
    from ebmlab.tasks.sample import default_sample_steps
    run = open_run(args.run, _device(args), args.trust_code)
    if run.is_vector:
        what = ("binary images, whose chains flip bits rather than follow a gradient" if run.data.get("image_shape")
                else f"{run.data['event_shape'][0]}-dimensional vectors")
        raise EBMError(f"inpaint fills pixels by Langevin on a model of continuous images; {run.path} was trained "
                       f"on {what}")
    c, h, _ = run.data["event_shape"]
    img = load_image_as_tensor(args.image, c, h, resize=args.resize, convert=args.convert)
    from ebmlab.data.scaling import Scaling
    x = Scaling.from_range(0.0, 255.0).to_model(img)   # a PNG's pixels are 0..255 whatever the data's scale
    g = torch.Generator().manual_seed(args.seed)
    mask = make_mask(args.mask, tuple(x.shape), g)
    n_steps = args.n_steps if args.n_steps is not None else default_sample_steps(run.config, is_vector=False)
    m = args.fills
    filled = inpaint(run.model, x.repeat(m, 1, 1, 1), mask.repeat(m, 1, 1, 1), n_steps=n_steps, generator=g,
                     step_size=run.config.step_size, noise_scale=run.config.noise_scale,
                     grad_clip=run.config.grad_clip).mean(0, keepdim=True)
    prefix = Path(args.out) if args.out else Path(args.image).with_suffix("")
    masked = torch.where(mask, torch.zeros_like(x), x)
    path = save_labelled_row(torch.cat([x, masked, filled]), ["original", "masked", "filled"],
                             str(prefix) + "-inpaint.png")
    if args.json:
        print(json.dumps({"written": str(path), "panels": ["original", "masked", "filled"], "n_steps": n_steps,
                          "fills": m}, indent=2))
        return 0
    print(f"wrote {path} (original | masked | filled)")
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    from ebmlab.tasks.prepare import prepare_cache
    report = prepare_cache(args.image_dir, args.size, args.out, args.crop, args.force)
    if args.json:
        print(json.dumps({"written": str(report.out), "shape": list(report.shape), "resumed_at": report.resumed_at,
                          "loaded": report.folder.n_loaded, "unreadable": report.folder.n_unreadable,
                          "not_image": report.folder.n_not_image, "summary": report.summary()}, indent=2))
        return 0
    print(report.summary())
    return 0


def _cmd_runs(args: argparse.Namespace) -> int:
    from ebmlab.tasks.runs_list import format_rows, list_runs, to_json
    rows = list_runs(args.dir)
    if args.json:
        print(to_json(rows))
    elif not rows:
        print(f"no run directories under {args.dir}")
    for line in ([] if args.json else format_rows(rows)):
        print(line)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from ebmlab.rundir.export import export_run
    weights, card = export_run(args.run, args.out, args.force)
    if args.json:
        print(json.dumps({"weights": str(weights), "card": str(card)}, indent=2))
    else:
        print(f"wrote {weights} and {card} (load with: ebmlab.load({str(weights)!r}))")
    return 0


def _cmd_completion(args: argparse.Namespace) -> int:
    try:
        import argcomplete
    except ImportError:
        raise EBMError("shell completion needs argcomplete: pip install 'ebmlab[completion]'") from None
    print(argcomplete.shellcode(["ebmlab"], shell=args.shell))
    return 0


_COMMANDS = {"completion": _cmd_completion, "export": _cmd_export, "prepare": _cmd_prepare, "train": _cmd_train, "sample": _cmd_sample, "eval": _cmd_eval, "plot": _cmd_plot,
             "compose": _cmd_compose, "inpaint": _cmd_inpaint, "runs": _cmd_runs, "score": _cmd_score}

if __name__ == "__main__":
    sys.exit(main())
