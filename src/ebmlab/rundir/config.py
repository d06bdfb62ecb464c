"""Run configuration: one frozen dataclass, validated, round-tripped through JSON and read from TOML.

Every number a run depends on lives here and is written to ``config.json`` in the run directory,
so a run can be reproduced or resumed from its directory alone.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ebmlab.atomic import atomic_write_text
from ebmlab.errors import EBMError
from ebmlab.samplers.registry import SAMPLER_NAMES

NEGATIVES = ("persistent", "short-run", "cd")
SAMPLERS = SAMPLER_NAMES                 # the sampler table's names (ebmlab.samplers.registry)
# "custom": a user's own nn.Module, recorded in ``network`` (rundir/network.py) and never imported unasked
# rbm: binary data only (models/rbm.py); shortrun: nets/shortrun.py (Nijkamp et al. 2019);
# potts: categorical data only, the pairwise model with learned couplings (models/potts.py)
NETS = ("auto", "mlp", "conv", "resnet", "custom", "rbm", "shortrun", "potts")
INITS = ("uniform", "data", "gaussian")
ON_DIVERGENCE = ("stop", "rollback")
# "cd": an unconditional EBM f(x); "conditional": f(x, y) = logits[y] trained by CD per class;
# "jem": cross-entropy on the logits + alpha_cd * CD on f(x) = logsumexp_y logits (Grathwohl et al. 2019)
# "dsm" / "ssm": denoising (Vincent 2011) / sliced (Song et al. 2019) score matching, no MCMC in the loss;
# "nce": noise-contrastive estimation with a learned log Z (Gutmann & Hyvarinen 2010)
# "drl": diffusion recovery likelihood on images (Gao et al. 2021), one conditional EBM per noise level
OBJECTIVES = ("cd", "conditional", "jem", "dsm", "ssm", "nce", "drl")   # training.objectives.OBJECTIVES (checked to match)
LABELLED_OBJECTIVES = ("conditional", "jem")   # those that train a ConditionalEnergyModel on (x, y)
# network precision in training (autocast); chain states, weights and checkpoints stay float32
PRECISIONS = ("fp32", "bf16", "fp16")
ACTIVATIONS = ("silu", "relu")          # nets.mlp.ACTIVATIONS (checked to match by a test)
NET_FEATURES = ("linear", "sine", "hybrid")       # nets.mlp.FEATURES (checked to match by a test)
# Upper bounds on sizes and step counts, checked wherever a config is built (flags, --config files
# and a run's config.json alike), so a typo or a hand-edited config.json (mcmc_steps = 10**18, a
# 10**6-wide network) is one error line instead of a process that never returns or exhausts memory.
# They are far above every preset; MAX_CHAIN_STEPS also bounds `ebmlab sample --n-steps`.
MAX_CHAIN_STEPS = 10**7
LIMITS = {"mcmc_steps": MAX_CHAIN_STEPS, "steps": 10**9, "warmup_steps": 10**9, "batch_size": 2**20,
          "buffer_size": 10**7, "hidden": 8192, "depth": 64, "image_size": 1024, "n_test": 10**7,
          "keep_checkpoints": 10**4, "log_every": 10**9, "checkpoint_every": 10**9, "plot_every": 10**9,
          "net_width": 4096, "categories": 4096}
MAX_MLP_WEIGHTS = 2**26              # hidden^2 * depth: 67M weights (256 MiB), 100x the largest recipe


# how the dsm / ssm floor fraction moves over training (RunConfig.sm_uniform_schedule)
SM_UNIFORM_SCHEDULES = ("constant", "lr")
# the random directions of sliced score matching (RunConfig.ssm_directions)
SSM_DIRECTIONS = ("gaussian", "rademacher", "orthogonal")

@dataclass(frozen=True)
class RunConfig:
    """Hyper-parameters of one training run (defaults: the 2-D recipe; presets override them).

    Langevin update used everywhere: ``x <- x + step_size * clip(∇f) + noise_scale * z``
    (noise_scale None means sqrt(2 * step_size), the exact Langevin of the lecture).
    """

    data: str = ""
    preset: str | None = None
    seed: int = 0
    steps: int = 3000
    batch_size: int = 256
    lr: float = 5e-3
    lr_schedule: str = "cosine"          # "cosine" (to lr_min_factor * lr) or "constant"
    lr_min_factor: float = 0.02
    warmup_steps: int = 0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    l2: float = 0.0                      # energy-magnitude penalty on f(x+)^2 + f(x-)^2
    # class labels (conditional EBMs and JEM): "builtin" (digits) or a .npy of integers, one per example
    objective: str = "cd"
    labels: str | None = None
    alpha_cd: float = 1.0                # JEM: weight of the CD term against the cross-entropy
    # network
    net: str = "auto"
    network: dict | None = None          # net "custom": {"class": "module:Qualname", "kwargs", "parametrisation", "bounds"}
    hidden: int = 128
    depth: int = 3
    spectral_norm: bool = False
    image_size: int | None = None
    # negatives
    negatives: str = "persistent"
    sampler: str = "mh-jump"
    mcmc_steps: int = 20
    step_size: float = 0.05              # Langevin/MALA/HMC step; for MH it is the local scale as a fraction of the box width
    noise_scale: float | None = None
    grad_clip: float | None = None
    jump_prob: float = 0.2
    buffer_size: int = 10000
    reinit_prob: float = 0.05
    init: str = "uniform"
    data_noise: float = 0.0
    margin: float = 0.125                # support box = data range widened by this fraction on each side
    n_test: int = 5000                   # held-out points for built-in sets (a fraction for files)
    test_fraction: float = 0.1
    # bookkeeping
    log_every: int = 25
    checkpoint_every: int = 250
    plot_every: int = 500
    keep_checkpoints: int = 2
    device: str = "cpu"
    precision: str = "fp32"              # "bf16"/"fp16": the network runs under autocast (training only)
    # torch.compile the density the negative chains sample (samplers/compiled.py); off by default:
    # benchmarks/results/compile_speed.md says when it pays back its compile time
    compile: bool = False
    # divergence guard
    on_divergence: str = "stop"
    max_rollbacks: int = 3
    max_abs_f: float = 1e6
    max_grad_norm: float = 1e8
    # checked after every optimiser step, before anything is logged or checkpointed (training.guard):
    # the largest |weight|, the relative change of the weights' norm in one update, and how far chains
    # may reach / one Langevin move may jump, in half-widths of the data's support box ([-1, 1] for
    # images). Measured over every training step of the test suite (2d, conditional, jem, digits,
    # short-run recipes): max|θ| <= 1.03, update <= 0.012, chain reach <= 1.0, Langevin move <= 0.024
    max_abs_param: float = 1e4
    max_param_update: float = 1.0
    max_chain_scale: float = 100.0
    extra: dict = field(default_factory=dict)
    # TensorBoard event files in DIR/tb beside metrics.jsonl (rundir/tensorboard.py): on, they are
    # written whenever the tensorboard package is importable (and silently skipped when it is not)
    tensorboard: bool = True
    # the cosine schedule's anchor after `--resume --steps N` changed the horizon: {"step", "phase"}
    # (training/schedule.py stretches the rest of the cosine from there, so the lr does not jump)
    lr_anchor: dict | None = None
    # ---- binary data (data/binary.py): None detects a .npy of 0/1 values, True declares it (other
    # values are an error), False treats 0/1 data as continuous
    binary: bool | None = None
    # width w of the image network (net "conv": SmallConvNet, "resnet": ResNetEnergy, "auto": the
    # default net for the image size); None keeps the network's own default (16 / 64)
    net_width: int | None = None
    # ---- objectives beyond CD (training/objectives.py, training/score_matching.py, training/nce.py)
    # dsm: the noise levels sigma (model scale); one level is plain DSM, several are a sigma^2-weighted
    # sum (Song & Ermon 2019), sampled by the "annealed-langevin" sampler over the same levels
    dsm_sigmas: list = field(default_factory=lambda: [0.1])
    ssm_projections: int = 1             # ssm: random directions v per data point
    # nce: components of the Gaussian-mixture noise fitted to the data; 0 = auto (8 for d <= 3, else
    # 1: a single full-covariance Gaussian); nce_ratio noise samples per data point
    nce_components: int = 0
    nce_ratio: int = 1
    # hidden-layer activation of the vector MLP (nets/mlp.py ACTIVATIONS); "silu" also for every run
    # written before this key existed, whose config.json lacks it
    activation: str = "silu"
    # ---- categorical data (data/categorical.py): K categories per value; a .npy of integers 0..K-1
    # is one-hot encoded inside (models/categorical.py) and samples come back as integers
    categories: int | None = None
    # drl: the number L of noise levels (models/recovery.py: the cosine schedule they follow); each
    # level's conditional is sampled by mcmc_steps Langevin steps of step_size * sigma_t^2 (sampler "recovery")
    drl_levels: int = 6
    # dsm / ssm: the fraction of each batch drawn uniformly over the support box instead of from the
    # data (training/objectives.py UniformFloor: pins f where there is no data); 0 = plain score
    # matching, also for every run written before this key existed
    sm_uniform: float = 0.0
    # dsm: a noise-conditional f(x, sigma_i) = n(x, i) / sigma_i (NCSN, Song & Ermon 2019;
    # models/noise_conditional.py) instead of one f for every level, sampled by annealed Langevin on each
    # level's own f and a final Tweedie denoising step. Images only. False for every run written before
    # this key existed (one unconditional f, the sigma^2-weighted sum)
    dsm_conditional: bool = False
    # drl: c in each level's f = n / (c sigma_t^2) (models/recovery.py); Gao et al. 2021 take c = b^2 (the
    # step_size), which makes the walk's drift n's own gradient / 2 whatever b^2. 1.0 for every run written
    # before this key existed
    drl_energy_scale: float = 1.0
    # the vector MLP's first hidden layer (nets/mlp.py FEATURES): "linear" (activation(W x + b), like the
    # others; also every run written before this key existed, whose config.json lacks it) or "sine"
    # (learned Fourier features sin(W x + b): an option, not the 2d default; see the 2d preset's comment)
    net_features: str = "linear"
    # decay of an exponential moving average of the weights (training/ema.py), which generation and evaluation
    # use (the raw weights stay for --resume; the training chains sample the raw weights). None: no EMA,
    # also for every run written before this key existed
    ema_decay: float | None = None
    # dsm / ssm: how the floor fraction sm_uniform moves during training: "constant" (every step; also every
    # run written before this key existed) or "lr" (sm_uniform times the learning rate's schedule factor
    # lr_t / lr: with the cosine it fades to lr_min_factor * sm_uniform, so the trained model carries almost
    # none of the floor's mass; training/presets.py, the ssm 2d block, says why)
    sm_uniform_schedule: str = "constant"
    # ssm: the directions v ("gaussian" N(0, I), "rademacher" +-1 entries as torchebm draws them, or
    # "orthogonal": each point's ssm_projections directions are rows of a random orthogonal frame times sqrt(d),
    # so with ssm_projections = d the Hessian trace is exact; training.score_matching.orthogonal_directions) and the
    # norm term (variance-reduced ½‖s‖², or torchebm's plain ½(vᵀs)²). "gaussian" and True, the
    # variance-reduced form of Song et al. 2019, for every run written before these keys existed
    ssm_directions: str = "gaussian"
    ssm_variance_reduced: bool = True
    # dsm: a noise curriculum on the unconditional f: every level starts at dsm_anneal_factor times itself and
    # shrinks geometrically to itself by the fraction dsm_anneal_until of the run (schedule.phase), then stays.
    # Why: dsm at a small sigma cannot see the relative weights of separated modes; a blurrier start connects
    # them (training/presets.py, the dsm 2d block). 1.0 (fixed levels) for every run written before these keys
    dsm_anneal_factor: float = 1.0
    dsm_anneal_until: float = 0.7
    # the vector MLP sees gain x (x - mean) / std: the standardised input's scale, i.e. the first layer's initial
    # frequency in data units (the same for every data set, not fitted to its units). 1.0 for every run written
    # before this key existed. The 2-D nce preset sets 1.4 (training/presets.py; results/objectives2d_gain_*_s16.md)
    input_gain: float = 1.0
    # dsm: each example's noise used as an antithetic pair ε, -ε (training.score_matching.dsm_loss): the same
    # objective, the gradient's noise of first order in ε cancelled, two forwards per example. False for every run written
    # before this key existed; the 2-D dsm preset sets it (training/presets.py; results/objectives2d_dsm_antithetic_s18.md)
    dsm_antithetic: bool = False

    def __post_init__(self) -> None:
        _validate(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        if not isinstance(d, dict):
            raise EBMError(f"a configuration must be a table/object of settings, got {type(d).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise EBMError(f"unknown configuration key(s) {', '.join(map(repr, unknown))}{nearest_keys(unknown)}; "
                           f"known keys: {', '.join(sorted(known))}")
        return cls(**{k: _coerce(known[k], v) for k, v in d.items()})

    def save_json(self, path: Path) -> None:
        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2, sort_keys=True))


def nearest_keys(unknown: list[str]) -> str:
    """`` (did you mean 'stepz' -> 'steps'?)`` for the unknown keys that are near a setting's name, else "":
    a typo's intended key, which the list of all ~70 keys buried."""
    import difflib
    known = [f.name for f in fields(RunConfig)]
    hints = [f"{k!r} -> {m[0]!r}" for k in unknown if (m := difflib.get_close_matches(k, known, n=1, cutoff=0.75))]
    return f" (did you mean {', '.join(hints)}?)" if hints else ""


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a ``.toml`` or ``.json`` file into a dict of settings (not yet validated)."""
    p = Path(path)
    if not p.is_file():
        raise EBMError(f"configuration file {str(p)!r} does not exist")
    try:
        if p.suffix == ".toml":
            import tomllib
            settings = tomllib.loads(p.read_text())
        elif p.suffix == ".json":
            settings = json.loads(p.read_text())
        else:
            raise EBMError(f"configuration file must end in .toml or .json, got {str(p)!r}")
    except (ValueError, UnicodeDecodeError) as e:
        raise EBMError(f"cannot parse configuration file {str(p)!r}: {str(e).splitlines()[0]}") from None
    # checked here, not only by RunConfig: the settings become keyword arguments of start_run, where a key
    # such as "out" or "force" (not a setting) or a JSON list ended as a TypeError, an internal error
    if not isinstance(settings, dict):
        raise EBMError(f"configuration file {str(p)!r} must hold a table/object of settings, got "
                       f"{type(settings).__name__}")
    unknown = sorted(set(settings) - {f.name for f in fields(RunConfig)})
    if unknown:
        raise EBMError(f"configuration file {str(p)!r}: unknown key(s) {', '.join(map(repr, unknown))}"
                       f"{nearest_keys(unknown)} (--data, "
                       f"--out and --force are flags, not settings); `ebmlab train --data D --print-config` "
                       "shows every key")
    return settings


# the smallest dsm noise level (_validate_objective_knobs: why)
MIN_NOISE_LEVEL = 1e-6
_FLOAT32_MAX = 3.4028234663852886e38     # torch.finfo(torch.float32).max, without importing torch here

_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "dict": dict, "list": list}


def _coerce(f: dataclasses.Field, v: Any) -> Any:
    """Check a value against the field's annotation; ints are accepted for floats."""
    ann = str(f.type)
    optional = "None" in ann
    if v is None:
        if optional:
            return None
        raise EBMError(f"configuration key {f.name!r} cannot be empty")
    base = ann.split("|")[0].strip()
    t = _TYPES.get(base, object)
    if t is float and isinstance(v, int) and not isinstance(v, bool):
        try:
            return float(v)
        except OverflowError:          # an int beyond float range (1e309 written as digits)
            raise EBMError(f"configuration key {f.name!r} is too large: {str(v)[:20]}...") from None
    if t is int and isinstance(v, float) and v.is_integer():
        return int(v)
    if t is list and isinstance(v, tuple):     # ebmlab.train(dsm_sigmas=(0.5, 0.1)): a tuple from Python
        return list(v)
    if t is not object and (not isinstance(v, t) or (t is not bool and isinstance(v, bool))):
        raise EBMError(f"configuration key {f.name!r} must be {base}, got {v!r}")
    return v


def check_new_run_config(c: RunConfig) -> None:
    """Rules for a run about to start (not for opening one written before the rule: such a run still opens,
    samples, scores and resumes as it was configured)."""
    # CD's negatives (and drl's, conditional's, jem's) are the chains' end points: with no step they stay where they
    # start (noise, the replay buffer), and the run learns data against noise instead of against its own samples
    if c.mcmc_steps == 0 and c.objective not in ("dsm", "ssm", "nce"):
        raise EBMError(f"mcmc_steps 0 leaves objective {c.objective!r}'s negatives where its chains start (noise or "
                       "the replay buffer), so it would learn data against noise: give at least 1")


def _validate(c: RunConfig) -> None:
    def need(cond: bool, msg: str) -> None:
        if not cond:
            raise EBMError(msg)

    for f in fields(c):
        _coerce(f, getattr(c, f.name))
    for name in ("lr", "step_size", "lr_min_factor", "max_abs_f", "max_grad_norm", "max_abs_param",
                 "max_param_update", "max_chain_scale"):
        v = getattr(c, name)
        need(math.isfinite(v) and v > 0, f"{name} must be a positive finite number, got {v}")
    for name in ("steps", "batch_size", "buffer_size", "log_every", "checkpoint_every", "plot_every",
                 "keep_checkpoints", "hidden", "depth", "n_test"):
        need(getattr(c, name) > 0, f"{name} must be a positive integer, got {getattr(c, name)}")
    for name in ("mcmc_steps", "warmup_steps", "max_rollbacks", "seed"):
        need(getattr(c, name) >= 0, f"{name} must be >= 0, got {getattr(c, name)}")
    # torch generators take seeds below 2**64; the trainer derives seed + 1 and seed + 7919 * retry
    need(c.seed < 2**63, f"seed must be below 2**63, got {c.seed}")
    need(c.max_rollbacks <= 1000, f"max_rollbacks must be <= 1000, got {c.max_rollbacks}")
    for name in ("jump_prob", "reinit_prob"):
        v = getattr(c, name)
        need(0.0 <= v <= 1.0, f"{name} must be a probability in [0, 1], got {v}")
    need(0.0 < c.test_fraction < 1.0, f"test_fraction must be in (0, 1), got {c.test_fraction}")
    for name in ("l2", "data_noise", "margin", "alpha_cd"):
        v = getattr(c, name)
        need(math.isfinite(v) and v >= 0, f"{name} must be >= 0, got {v}")
    need(c.noise_scale is None or (math.isfinite(c.noise_scale) and c.noise_scale >= 0),
         f"noise_scale must be >= 0 or empty, got {c.noise_scale}")
    # 0 would clip every gradient to nothing: chains of pure noise, not "no clipping" (that is empty)
    need(c.grad_clip is None or (math.isfinite(c.grad_clip) and c.grad_clip > 0),
         f"grad_clip must be > 0, or empty for no clipping, got {c.grad_clip}")
    # the optimiser and the samplers compute in float32: a number beyond its range is inf there
    # (torch refuses lr 1e39 with a RuntimeError mid-step)
    for name in ("lr", "step_size", "noise_scale", "grad_clip", "l2", "data_noise", "alpha_cd"):
        v = getattr(c, name)
        if v is not None and abs(v) > _FLOAT32_MAX:
            raise EBMError(f"{name} = {v:g} does not fit in float32 (largest {_FLOAT32_MAX:.4g}), "
                           "which training computes in")
    need(0.0 <= c.adam_beta1 < 1.0 and 0.0 <= c.adam_beta2 < 1.0, "Adam betas must be in [0, 1)")
    need(c.ema_decay is None or (math.isfinite(c.ema_decay) and 0.0 <= c.ema_decay < 1.0),
         f"ema_decay must be in [0, 1) (e.g. 0.999), or empty for no EMA of the weights; got {c.ema_decay}")
    need(c.net_width is None or c.net_width > 0, f"net_width must be a positive integer, got {c.net_width}")
    need(c.categories is None or c.categories >= 2, f"categories must be an integer >= 2, got {c.categories}")
    need(c.categories is None or not c.binary, "--categories and --binary exclude each other (binary data is K = 2 "
         "as 0/1 values; give one of them)")
    need(c.image_size is None or c.image_size > 0, f"image_size must be a positive integer, got {c.image_size}")
    for name, choices in (("negatives", NEGATIVES), ("sampler", SAMPLERS), ("net", NETS), ("init", INITS),
                          ("on_divergence", ON_DIVERGENCE), ("lr_schedule", ("cosine", "constant")),
                          ("objective", OBJECTIVES), ("precision", PRECISIONS), ("activation", ACTIVATIONS),
                          ("net_features", NET_FEATURES), ("sm_uniform_schedule", SM_UNIFORM_SCHEDULES),
                          ("ssm_directions", SSM_DIRECTIONS)):
        need(getattr(c, name) in choices, f"{name} must be one of {', '.join(choices)}; got {getattr(c, name)!r}")
    need(not (c.precision == "fp16" and c.device.split(":")[0] == "cpu"),
         "precision fp16 is not supported on the CPU; use bf16 (or fp16 with --device cuda)")
    # labels and a labelled objective come together: silently ignoring labels, or training a
    # conditional model without them, would both be surprises
    # a torch Dataset / DataLoader from Python (data "<ItsType>") carries its labels in its (x, y) items
    own_labels = c.data.startswith("<") and c.data.endswith(">") and c.data != "<array>"
    need(c.objective not in LABELLED_OBJECTIVES or c.labels is not None or own_labels,
         f"objective {c.objective!r} needs class labels: --labels builtin (for --data digits) or --labels FILE.npy "
         "(from Python: labels= a .npy path for an array, or a Dataset whose items are (x, y) pairs)")
    need(c.objective in LABELLED_OBJECTIVES or c.labels is None,
         "--labels needs a conditional objective: add --preset conditional or --preset jem")
    need(not (own_labels and c.labels is not None),     # else labels= was silently ignored
         f"labels= is for an array or a .npy data file; a {c.data[1:-1]} carries its labels in its (x, y) items, "
         "so drop labels=")
    need(c.labels is None or c.labels != "", "labels must be 'builtin' or the path of a .npy file, got ''")
    for name, cap in LIMITS.items():
        v = getattr(c, name)
        need(v is None or v <= cap, f"{name} must be at most {cap}, got {v}")
    _validate_objective_knobs(c, need)
    need(not (c.net_features != "linear" and c.spectral_norm),
         "net_features sine / hybrid and spectral_norm exclude each other (spectral norm would cap the sine layer's "
         "frequencies below one radian per unit); use --net-features linear with --spectral-norm")
    need(c.hidden * c.hidden * c.depth <= MAX_MLP_WEIGHTS,
         f"a network of width {c.hidden} and depth {c.depth} has more than {MAX_MLP_WEIGHTS} weights; make it smaller")


def _validate_objective_knobs(c: RunConfig, need: Any) -> None:
    """The knobs of dsm / ssm / nce (checked for every objective: a config file may set them)."""
    need(len(c.dsm_sigmas) > 0, "dsm_sigmas must hold at least one noise level, got an empty list")
    for s in c.dsm_sigmas:
        ok = isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) and 0 < s <= _FLOAT32_MAX
        need(ok, f"each noise level in dsm_sigmas must be a positive finite number, got {s!r}")
        # the model scale's data are O(1) (standardised vectors, images in [-1, 1]): below float32's resolution
        # there, x + σε rounds back to x and the loss sees no noise (1e-50 is 0 in float32: trained nothing,
        # silently, on vectors; f = n / σ infinite on a noise-conditional network)
        need(s >= MIN_NOISE_LEVEL, f"each noise level in dsm_sigmas must be at least {MIN_NOISE_LEVEL:g} (the data's "
             f"model scale is O(1): a smaller level is below float32's resolution there, so no noise), got {s!r}")
    need(len(c.dsm_sigmas) <= 1000, f"dsm_sigmas may hold at most 1000 levels, got {len(c.dsm_sigmas)}")
    # the levels are a set (the model and the sampler sort them): a repeated one is a typo, and on a
    # noise-conditional network a level the loss never trains (each example goes to the first equal one)
    # that annealed sampling still walks through
    twice = next((s for i, s in enumerate(c.dsm_sigmas) if s in c.dsm_sigmas[:i]), None)
    need(twice is None, f"dsm_sigmas holds {twice} twice; give each noise level once (their order does not matter)")
    need(1.0 <= c.dsm_anneal_factor <= 1000.0,          # NaN fails the comparison too
         f"dsm_anneal_factor must be in [1, 1000] (1: fixed noise levels), got {c.dsm_anneal_factor}")
    need(0.0 < c.dsm_anneal_until <= 1.0,
         f"dsm_anneal_until must be in (0, 1] (a fraction of the run), got {c.dsm_anneal_until}")
    need(c.dsm_anneal_factor == 1.0 or (c.objective == "dsm" and not c.dsm_conditional),
         "dsm_anneal_factor belongs to objective dsm with one unconditional f (a noise-conditional network has "
         "its levels fixed); use 1")
    need(0.0 < c.input_gain <= 1000.0,                   # NaN fails the comparison too
         f"input_gain must be in (0, 1000] (1: the standardised input as it is), got {c.input_gain}")
    need(1 <= c.ssm_projections <= 1024, f"ssm_projections must be in 1..1024, got {c.ssm_projections}")
    need(0 <= c.nce_components <= 256, f"nce_components must be in 0..256 (0: auto), got {c.nce_components}")
    need(0.0 <= c.sm_uniform < 1.0 and math.isfinite(c.sm_uniform),
         f"sm_uniform must be in [0, 1) (a fraction of each batch), got {c.sm_uniform}")
    need(1 <= c.nce_ratio <= 1024, f"nce_ratio must be in 1..1024, got {c.nce_ratio}")
    # sliced score matching's loss holds v' (Hessian of f) v, which is zero almost everywhere for a ReLU net
    need(not (c.objective == "ssm" and c.activation == "relu"),
         "objective ssm needs a smooth network (its loss uses second derivatives, zero for ReLU); use --activation silu")
    need(not c.dsm_conditional or c.objective == "dsm",
         f"dsm_conditional (a noise-conditional network) belongs to objective dsm, not {c.objective!r}")
    need(not c.dsm_conditional or c.sampler == "annealed-langevin",
         f"a noise-conditional dsm model generates by annealing over its levels: use the sampler annealed-langevin "
         f"(--sampler in train, --method in sample), not {c.sampler!r}")
    need(math.isfinite(c.drl_energy_scale) and 0 < c.drl_energy_scale <= 1e6,
         f"drl_energy_scale must be a positive number (at most 1e6), got {c.drl_energy_scale}")
    need(1 <= c.drl_levels <= 1000, f"drl_levels (noise levels) must be in 1..1000, got {c.drl_levels}")
    # a drl model is a sequence of conditionals: only the sampler that walks its levels generates from it
    need(c.objective != "drl" or c.sampler == "recovery",
         f"objective 'drl' generates by walking down its noise levels: use --sampler recovery, not {c.sampler!r}")
