"""Training objectives: what a training step's loss is, and what its negatives (if any) sample.

The trainer (``training.trainer``) owns everything an objective shares — data batches, the MCMC
chains, the optimiser, mixed precision, the divergence guard, checkpoints — and asks the run's
objective (``config.objective``, looked up in ``OBJECTIVES``) for the rest:

  - ``needs_labels``: train a ``ConditionalEnergyModel`` on (x, y) pairs; the trainer checks the
    labels once and hands each batch's labels over as ``batch.y_pos``;
  - ``needs_negatives``: whether the trainer runs MCMC chains at all. If so it samples
    ``chain_target(model)`` (built once), calls ``before_chains(y_pos)`` before each run of the
    chains and passes their detached final states as ``batch.x_neg``; if not, ``batch.x_neg`` is None;
  - ``score_only``: the loss depends on the weights only through ∇x f, so a constant offset of f (the
    last layer's bias) gets no gradient; with several processes DDP must then look for such weights;
  - ``loss(model, batch, net)``: the scalar loss and its stats, detached on-device scalars that the
    trainer averages into metrics.jsonl (no host sync). ``f_pos`` / ``f_neg``, where present, are
    what the divergence guard watches;
  - ``progress``: which of those stats the progress bar shows, as (key, label, format) rows (the
    trainer's own, the gradient norm and the chains' acceptance, are shown for every objective);
  - ``remedies``: what a divergence message advises, in the objective's own knobs (dsm has no
    --mcmc-steps to raise).

Objectives with state of their own (NCE's learned log Z and its fitted noise) also have:

  - ``check_data(dataset)``: EBMError (one line naming what fits) for data the objective cannot
    train on, called before the run directory is written;
  - ``setup(model, x_train, to_model, device, seed)``: once, before the optimiser is built (fit a
    noise distribution, create parameters);
  - ``parameters()``: extra trainable tensors, optimised, guarded and checkpointed with the model's;
  - ``state_dict()`` / ``load_state_dict(st)``: that state, in every checkpoint (so rollback and
    resume restore it). ``Stateless`` gives the defaults (nothing).

Objectives without the trainer's MCMC negatives (``DSM``, ``SSM``, ``NCE``, and ``DRL``, whose
short chains start at each example's own noisy point and so belong to the loss) draw their noise from ``batch.gen``
(the trainer's checkpointed generator), so resume stays exact.

A new objective is a class here with the ``Objective`` members, an entry in ``OBJECTIVES`` and its name in
``rundir.config.OBJECTIVES`` (config sits below training, so it keeps a plain tuple of names; the
check at the bottom of this module keeps the two in step). Its loss function goes in
``training.losses``. A discrete EBM's other sampler would be chosen where the kernel is
(``training.negatives.sampler_from_config``), not here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Protocol

import torch
from torch import nn
from torch.nn import functional as F

from ebmlab.data.dataset import DataSet
from ebmlab.errors import EBMError
from ebmlab.models.conditional import ChainClasses, _logsumexp_safe
from ebmlab.rundir import config as _config
from ebmlab.rundir.config import RunConfig
from ebmlab.samplers.base import frozen_parameters
from ebmlab.samplers.recovery import recover
from ebmlab.training.guard import REMEDIES
from ebmlab.training.losses import cd_loss, jem_loss
from ebmlab.training.nce import NCENoise, auto_components, nce_loss
from ebmlab.training.score_matching import dsm_loss, orthogonal_directions, ssm_loss

# net(fn, *args): fn(*args) — a forward pass of the network — under the run's autocast, as float32
Net = Callable[..., torch.Tensor]
Stats = dict[str, torch.Tensor]
# a progress-bar entry: (metrics key, label, format)
Shown = tuple[tuple[str, str, str], ...]
GAP: Shown = (("gap", "f+ - f-", "{:+.3f}"),)
TRAIN_ACC: Shown = (("train_acc", "train acc", "{:.2f}"),)


@dataclass(frozen=True)
class Batch:
    """What one training step hands its objective.

    x_pos: [B, *event] training data in the model scale (data noise already added).
    y_pos: [B] int64 labels on the device, or None unless the objective ``needs_labels``.
    x_neg: [B', *event] detached final chain states, or None unless the objective ``needs_negatives``.
    gen: the trainer's device generator (checkpointed): any noise a loss draws comes from it.
    lr_factor: this step's learning rate over the configured one (the schedule's factor; 1 without one).
    phase: where this step is in the run, in [0, 1] (training.schedule.phase: step / steps, stretched alike
        when a resume extends the run).
    """

    x_pos: torch.Tensor
    y_pos: torch.Tensor | None
    x_neg: torch.Tensor | None
    gen: torch.Generator
    lr_factor: float = 1.0
    phase: float = 0.0


class Objective(Protocol):
    """The interface the trainer sees (see the module docstring)."""

    name: ClassVar[str]
    needs_labels: ClassVar[bool]
    needs_negatives: ClassVar[bool]
    score_only: ClassVar[bool]
    progress: ClassVar[Shown]
    remedies: ClassVar[str]

    @classmethod
    def from_config(cls, config: RunConfig) -> "Objective": ...
    def chain_target(self, model: nn.Module) -> nn.Module: ...
    def before_chains(self, y_pos: torch.Tensor | None) -> None: ...
    def loss(self, model: nn.Module, batch: Batch, net: Net) -> tuple[torch.Tensor, Stats]: ...
    def check_data(self, dataset: DataSet) -> None: ...
    def setup(self, model: nn.Module, x_train: torch.Tensor, to_model: Callable[[torch.Tensor], torch.Tensor],
              device: torch.device, seed: int) -> None: ...
    def parameters(self) -> list[torch.Tensor]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, st: dict[str, Any] | None) -> None: ...


class Stateless:
    """The defaults of the state members: any data fits, no setup, no parameters, no state; and a loss
    that reaches every weight (``score_only`` False)."""

    score_only: ClassVar[bool] = False

    def check_data(self, dataset: DataSet) -> None:
        pass

    def setup(self, model: nn.Module, x_train: torch.Tensor, to_model: Callable[[torch.Tensor], torch.Tensor],
              device: torch.device, seed: int) -> None:
        pass

    def parameters(self) -> list[torch.Tensor]:
        return []

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, st: dict[str, Any] | None) -> None:
        pass


class _NoChains:
    """Objectives that need no MCMC negatives: the trainer never asks for a chain target."""

    needs_labels: ClassVar[bool] = False
    needs_negatives: ClassVar[bool] = False
    score_only: ClassVar[bool] = False

    def chain_target(self, model: nn.Module) -> nn.Module:
        raise EBMError(f"objective {self.name!r} runs no MCMC chains")

    def before_chains(self, y_pos: torch.Tensor | None) -> None:
        pass


@dataclass
class CD(Stateless):
    """Contrastive divergence on an unconditional f(x): loss = mean f(x-) - mean f(x+) (+ l2 penalty).

    Negatives sample the model itself. Stats: ``cd_loss``'s f_pos, f_neg, gap.
    """

    l2: float = 0.0
    name: ClassVar[str] = "cd"
    needs_labels: ClassVar[bool] = False
    needs_negatives: ClassVar[bool] = True
    progress: ClassVar[Shown] = GAP
    remedies: ClassVar[str] = REMEDIES

    @classmethod
    def from_config(cls, config: RunConfig) -> "CD":
        return cls(l2=config.l2)

    def chain_target(self, model: nn.Module) -> nn.Module:
        return model

    def before_chains(self, y_pos: torch.Tensor | None) -> None:
        pass

    def loss(self, model: nn.Module, batch: Batch, net: Net) -> tuple[torch.Tensor, Stats]:
        return cd_loss(net(model.log_density, batch.x_pos), net(model.log_density, batch.x_neg), self.l2)


@dataclass
class ConditionalCD(Stateless):
    """CD per class on f(x, y) = logits(x)[y]: chain i samples f(., y+_i), the class of positive i
    (``ChainClasses``); loss = mean f(x-, y+) - mean f(x+, y+) (+ l2), i.e. ``cd_loss`` per class.

    Stats: f_pos, f_neg, gap, and the batch's cross-entropy and accuracy train_ce, train_acc.
    """

    l2: float = 0.0
    name: ClassVar[str] = "conditional"
    needs_labels: ClassVar[bool] = True
    needs_negatives: ClassVar[bool] = True
    progress: ClassVar[Shown] = GAP + TRAIN_ACC
    remedies: ClassVar[str] = REMEDIES

    def __post_init__(self) -> None:
        self._chains: ChainClasses | None = None

    @classmethod
    def from_config(cls, config: RunConfig) -> "ConditionalCD":
        return cls(l2=config.l2)

    def chain_target(self, model: nn.Module) -> nn.Module:
        self._chains = ChainClasses(model)
        return self._chains

    def before_chains(self, y_pos: torch.Tensor | None) -> None:
        self._chains.labels = y_pos

    def loss(self, model: nn.Module, batch: Batch, net: Net) -> tuple[torch.Tensor, Stats]:
        y = batch.y_pos[:, None]
        logits_pos = net(model.logits, batch.x_pos)
        f_pos = logits_pos.gather(1, y)[:, 0]
        f_neg = net(model.logits, batch.x_neg).gather(1, y)[:, 0]
        loss, stats = cd_loss(f_pos, f_neg, self.l2)
        with torch.no_grad():
            stats["train_ce"] = F.cross_entropy(logits_pos, batch.y_pos)
            stats["train_acc"] = (logits_pos.argmax(1) == batch.y_pos).float().mean()
        return loss, stats


@dataclass
class JEM(Stateless):
    """JEM (Grathwohl et al. 2019): cross-entropy(logits(x+), y+) + alpha_cd * CD on the marginal
    f(x) = logsumexp_y logits (``jem_loss``); negatives sample that marginal, i.e. the model itself.

    Stats: f_pos, f_neg, gap (= -CD), train_ce, train_acc — the names the other objectives log.
    """

    alpha_cd: float = 1.0
    l2: float = 0.0
    name: ClassVar[str] = "jem"
    needs_labels: ClassVar[bool] = True
    needs_negatives: ClassVar[bool] = True
    progress: ClassVar[Shown] = GAP + TRAIN_ACC
    remedies: ClassVar[str] = REMEDIES

    @classmethod
    def from_config(cls, config: RunConfig) -> "JEM":
        return cls(alpha_cd=config.alpha_cd, l2=config.l2)

    def chain_target(self, model: nn.Module) -> nn.Module:
        return model

    def before_chains(self, y_pos: torch.Tensor | None) -> None:
        pass

    def loss(self, model: nn.Module, batch: Batch, net: Net) -> tuple[torch.Tensor, Stats]:
        logits_pos = net(model.logits, batch.x_pos)
        f_pos = _logsumexp_safe(logits_pos)           # the marginal f(x), as model.log_density(x)
        f_neg = net(model.log_density, batch.x_neg)
        loss, js = jem_loss(logits_pos, batch.y_pos, f_pos, f_neg, self.alpha_cd, self.l2)
        return loss, {"f_pos": js["f_pos"], "f_neg": js["f_neg"], "gap": -js["cd"], "train_ce": js["ce"],
                      "train_acc": js["acc"]}


def check_continuous(name: str, dataset: DataSet) -> None:
    """Score matching needs a density with a gradient: refuse data whose every coordinate takes at
    most two values (binary data), where the score is undefined. Looks at up to 4096 rows."""
    x = dataset.train[:4096]
    flat = x.reshape(x.shape[0], -1)
    if flat.shape[0] < 3:
        return
    srt = flat.sort(0).values
    distinct = 1 + (srt[1:] != srt[:-1]).sum(0)
    if bool((distinct <= 2).all()):
        # continuous data whose coordinates take two values each (two distinct rows) are not "binary data"
        kind = ("one-hot categorical" if dataset.describe.get("categories") else
                "binary" if dataset.describe.get("binary") else "such two-valued")
        raise EBMError(f"objective {name!r} needs continuous data (it fits the gradient of log p), but every "
                       f"coordinate of {dataset.name!r} takes at most two values; use objective 'cd' "
                       f"for {kind} data")


def support_rows(model: nn.Module, dim: int) -> torch.Tensor | None:
    """The model's support box as [d, 2] rows (low, high) per flattened coordinate, or None without one."""
    box = getattr(model, "bounds", None)
    if box is None:
        return None
    return box.reshape(-1, 2).expand(dim, 2) if box.numel() == 2 else box.reshape(dim, 2)


class UniformFloor(Stateless):
    """Score matching against (1 - λ) data + λ uniform over the model's support box (λ = ``uniform``).

    Why: score matching only sees f where its training points fall, so on a box with empty regions
    (checkerboard's margin, the gaps between separated modes) f is free there, and a run can put
    most of its mass where there is no data (ebmlab's ssm on checkerboard: +10.7 nats). Replacing
    a fraction λ of each batch by uniform points makes the loss the Fisher divergence to the mixture,
    a density that is positive and flat off the data, so f is pinned there too (score 0, f level).
    (In principle the box is then one connected support on which the score fixes the weights of
    separated modes too; in practice the floor's weight there is small, and on eight-gaussians it did
    not fix dsm's mode weights: training/presets.py.) The price is the floor itself: the model of a
    mixture, at most -log(1 - λ) nats of test NLL. Only for models with a support box (vector data);
    λ = 0 (the default) is plain score matching and draws nothing from the generator.
    With ``uniform_schedule`` "lr" the step's fraction is λ times the learning rate's schedule factor
    (``Batch.lr_factor``): the floor pins f while the weights move most and fades with the cosine, so
    the trained model pays only lr_min_factor · λ of that price (training/presets.py, ssm 2d).
    """

    uniform: float = 0.0
    uniform_schedule: str = "constant"

    def check_floor(self, dataset: DataSet) -> None:
        if self.uniform > 0 and dataset.kind != "vector":
            raise EBMError(f"objective {self.name!r}: sm_uniform (a uniform floor over the support box) needs "
                           f"vector data with a support box, not {dataset.kind} data; set sm_uniform 0")

    def setup(self, model: nn.Module, x_train: torch.Tensor, to_model: Callable[[torch.Tensor], torch.Tensor],
              device: torch.device, seed: int) -> None:
        self._box = None
        if self.uniform > 0:
            self._box = support_rows(model, x_train[0].numel())
            if self._box is None:
                raise EBMError(f"objective {self.name!r}: sm_uniform needs a model with a support box "
                               "(bounds); this one has none, set sm_uniform 0")
            self._box = self._box.to(device, torch.float32)

    def floored(self, x: torch.Tensor, gen: torch.Generator, lr_factor: float = 1.0) -> torch.Tensor:
        """x [B, *event] with each row replaced, with probability λ (times ``lr_factor`` under the "lr"
        schedule), by a uniform point of the box."""
        lam = self.uniform * (lr_factor if self.uniform_schedule == "lr" else 1.0)
        if self.uniform <= 0:
            return x
        b = x.shape[0]
        lo, width = self._box[:, 0].to(x.dtype), (self._box[:, 1] - self._box[:, 0]).to(x.dtype)
        flat = lo + width * torch.rand((b, lo.shape[0]), generator=gen, device=x.device, dtype=x.dtype)
        pick = torch.rand((b,), generator=gen, device=x.device) < lam
        return torch.where(pick.reshape(-1, *([1] * (x.ndim - 1))), flat.reshape(x.shape), x)


@dataclass
class DSM(_NoChains, UniformFloor):
    """Denoising score matching (``training.score_matching.dsm_loss``) at the levels ``sigmas``.

    Each example gets a level drawn uniformly from ``sigmas`` and noise ε ~ N(0, I), both from
    ``batch.gen``. One level: f learns the data blurred by N(0, σ²). Several: a σ²-weighted sum
    (Song & Ermon 2019) on one unconditional f, sampled by the ``annealed-langevin`` sampler; or,
    on a noise-conditional model (``models.noise_conditional``, ``dsm_conditional``), each example's
    loss on its own level's f(·, σ_i) (NCSN).
    With ``anneal_factor`` k > 1 (unconditional f only) every level is k^(1 - t / ``anneal_until``) times
    itself at phase t (``Batch.phase``) until t reaches ``anneal_until``, then itself: a blurrier start,
    where separated modes overlap and their relative weights are visible to the score, then the levels.
    With ``antithetic`` each example's noise is used as a pair ε, -ε (``dsm_loss``): the same objective, a
    lower-variance estimate, two forwards per example.
    Stats: f_pos (f on the clean batch, for the guard), dsm, score_norm.
    """

    sigmas: tuple[float, ...] = (0.1,)
    uniform: float = 0.0
    uniform_schedule: str = "constant"
    anneal_factor: float = 1.0
    anneal_until: float = 0.7
    antithetic: bool = False
    name: ClassVar[str] = "dsm"
    score_only: ClassVar[bool] = True      # f enters the loss only through ∇x f
    progress: ClassVar[Shown] = (("dsm", "dsm", "{:.4g}"),)
    # no chains and no --l2: the step and the steepest score (the smallest level's) are what can blow up
    remedies: ClassVar[str] = "lower the learning rate (--lr) or raise the smallest noise level (--dsm-sigmas)"

    @classmethod
    def from_config(cls, config: RunConfig) -> "DSM":
        return cls(sigmas=tuple(float(s) for s in config.dsm_sigmas), uniform=config.sm_uniform,
                   uniform_schedule=config.sm_uniform_schedule, anneal_factor=config.dsm_anneal_factor,
                   anneal_until=config.dsm_anneal_until, antithetic=config.dsm_antithetic)

    def scale(self, phase: float) -> float:
        """The factor on every level at ``phase`` (1 once the curriculum is over, and without one)."""
        if self.anneal_factor == 1.0:
            return 1.0
        return self.anneal_factor ** max(0.0, 1.0 - phase / self.anneal_until)

    def _levels(self, k: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """The levels times ``k`` as a tensor [L]. Without the curriculum's factor (k = 1) it is the same tensor
        every step: made once per dtype and device (a torch.tensor from a list cost ~10 µs a step), never
        written to (indexing it makes a new tensor)."""
        if k != 1.0:
            return torch.tensor([s * k for s in self.sigmas], dtype=dtype, device=device)
        cache = getattr(self, "_levels_cache", None)
        if cache is None or cache[0] != (dtype, device):
            cache = self._levels_cache = ((dtype, device), torch.tensor(self.sigmas, dtype=dtype, device=device))
        return cache[1]

    def check_data(self, dataset: DataSet) -> None:
        check_continuous(self.name, dataset)
        self.check_floor(dataset)

    def loss(self, model: nn.Module, batch: Batch, net: Net) -> tuple[torch.Tensor, Stats]:
        x, g = self.floored(batch.x_pos, batch.gen, batch.lr_factor), batch.gen
        k = self.scale(batch.phase)
        levels = self._levels(k, x.dtype, x.device)
        idx = torch.randint(0, len(self.sigmas), (x.shape[0],), generator=g, device=x.device)
        sigma = levels[idx]
        eps = torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)
        if hasattr(model, "noise_log_density"):
            # the model's levels are stored largest first: its index of each example's σ
            i = (model.noise_levels[None, :].to(x.dtype) - sigma[:, None]).abs().argmin(1)
            if self.antithetic:
                i = torch.cat([i, i])                      # dsm_loss stacks the pairs as [x + σε; x - σε]
            loss, stats = dsm_loss(lambda t: net(model.noise_log_density, t, i), x, eps, sigma, self.antithetic)
        else:
            loss, stats = dsm_loss(lambda t: net(model.log_density, t), x, eps, sigma, self.antithetic)
        with torch.no_grad():
            stats["f_pos"] = net(model.log_density, x).mean()
        return loss, stats


@dataclass
class SSM(_NoChains, UniformFloor):
    """Sliced score matching (``training.score_matching.ssm_loss``), variance-reduced or plain
    (``variance_reduced``), with ``projections`` directions per data point drawn from ``batch.gen``:
    standard normal, Rademacher (±1), or orthogonal (``directions``: each point's directions are rows of one
    random orthogonal frame times √d, so with ``projections`` = d the Hessian trace is exact).

    Stats: f_pos, ssm_hess, ssm_norm.
    """

    projections: int = 1
    uniform: float = 0.0
    uniform_schedule: str = "constant"
    directions: str = "gaussian"
    variance_reduced: bool = True
    name: ClassVar[str] = "ssm"
    score_only: ClassVar[bool] = True      # f enters the loss only through ∇x f
    progress: ClassVar[Shown] = (("loss", "ssm", "{:.4g}"),)
    # no chains and no --l2: a little blur of the data bounds the score ssm fits (the 2-D preset's data_noise)
    remedies: ClassVar[str] = "lower the learning rate (--lr) or blur the data a little (--data-noise)"

    @classmethod
    def from_config(cls, config: RunConfig) -> "SSM":
        return cls(projections=config.ssm_projections, uniform=config.sm_uniform,
                   uniform_schedule=config.sm_uniform_schedule, directions=config.ssm_directions,
                   variance_reduced=config.ssm_variance_reduced)

    def check_data(self, dataset: DataSet) -> None:
        check_continuous(self.name, dataset)
        self.check_floor(dataset)

    def loss(self, model: nn.Module, batch: Batch, net: Net) -> tuple[torch.Tensor, Stats]:
        x = self.floored(batch.x_pos, batch.gen, batch.lr_factor)
        if self.directions == "orthogonal":        # rows of a random orthogonal frame times sqrt(d)
            v = orthogonal_directions(self.projections, x.shape, batch.gen, x.device, x.dtype)
        else:
            v = torch.randn((self.projections, *x.shape), generator=batch.gen, device=x.device, dtype=x.dtype)
        if self.directions == "rademacher":      # +-1 entries (torchebm's default), from the same draw
            v = torch.where(v < 0, -1.0, 1.0).to(x.dtype)
        return ssm_loss(lambda t: net(model.log_density, t), x, v, self.variance_reduced)


@dataclass
class NCE(_NoChains):
    """Noise-contrastive estimation (``training.nce``): f(x) - log Z against a Gaussian-mixture
    noise fitted to the training data, ``ratio`` noise points per data point from ``batch.gen``.

    log Z is a parameter of this objective (optimised with the network, checkpointed in the train
    state, logged as ``log_z``); the fitted noise is checkpointed too. Stats: f_pos, nce_acc, log_z.
    """

    components: int = 0
    ratio: int = 1
    name: ClassVar[str] = "nce"
    progress: ClassVar[Shown] = (("nce_acc", "nce acc", "{:.2f}"), ("log_z", "log Z", "{:+.3f}"))
    remedies: ClassVar[str] = ("lower the learning rate (--lr) or fit the noise closer to the data "
                               "(--nce-components)")

    def __post_init__(self) -> None:
        self.log_z: torch.Tensor | None = None
        self.noise: NCENoise | None = None

    @classmethod
    def from_config(cls, config: RunConfig) -> "NCE":
        return cls(components=config.nce_components, ratio=config.nce_ratio)

    def check_data(self, dataset: DataSet) -> None:
        # the noise is a continuous density: it never lands on discrete data's points, so a classifier tells
        # them apart perfectly and NCE has no consistent optimum there (measured on 6 Bernoulli(0.8) bits, 3000
        # steps: nce_acc 0.994, learned log Z 0.04 against the enumerated 5.11, test NLL 3.60 nats against the
        # entropy 3.00 and cd's 3.02)
        kind = "categorical" if dataset.describe.get("categories") else "binary" if dataset.describe.get("binary") else None
        if kind:
            raise EBMError(f"objective 'nce' contrasts the data with continuous Gaussian noise, which never falls on "
                           f"{kind} data's points; use objective 'cd' for {kind} data")

    def setup(self, model: nn.Module, x_train: torch.Tensor, to_model: Callable[[torch.Tensor], torch.Tensor],
              device: torch.device, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        n = x_train.shape[0]
        idx = torch.randperm(n, generator=g)[:20000] if n > 20000 else torch.arange(n)
        x = to_model(x_train[idx.to(x_train.device)].to(device)).detach().cpu()
        dim = x[0].numel()
        box = getattr(model, "bounds", None)
        if box is not None:                # one (low, high) row per coordinate
            box = box.reshape(-1, 2).expand(dim, 2) if box.numel() == 2 else box.reshape(dim, 2)
        self.noise = NCENoise.fit(x, self.components or auto_components(dim), seed, device, box=box)
        self.log_z = nn.Parameter(torch.zeros((), device=device))

    def parameters(self) -> list[torch.Tensor]:
        return [self.log_z]

    def state_dict(self) -> dict[str, Any]:
        return {"log_z": self.log_z.detach().clone(), "noise": self.noise.state_dict()}

    def load_state_dict(self, st: dict[str, Any] | None) -> None:
        if not st:
            return
        with torch.no_grad():
            self.log_z.copy_(st["log_z"].to(self.log_z.device))
        self.noise = NCENoise.from_state(st["noise"], self.log_z.device)

    def loss(self, model: nn.Module, batch: Batch, net: Net) -> tuple[torch.Tensor, Stats]:
        x = batch.x_pos
        y = self.noise.sample(self.ratio * x.shape[0], batch.gen).to(x.dtype)
        f_data = net(model.log_density, x)
        f_noise = net(model.log_density, y)
        loss, stats = nce_loss(f_data, f_noise, self.noise.log_prob(x), self.noise.log_prob(y), self.log_z,
                               self.ratio)
        stats["f_pos"] = f_data.detach().mean()
        return loss, stats


@dataclass
class DRL(_NoChains, Stateless):
    """Diffusion recovery likelihood (Gao et al. 2021) on a ``models.recovery.RecoveryEnergyModel``.

    Each example of the batch gets a level t drawn uniformly from 0..L-1 and its noise from
    ``batch.gen``: the positive ỹ = a_t x_t and the noisier x_{t+1} (``model.diffuse``). The
    negative is ``steps`` Langevin steps on level t's recovery conditional started at x_{t+1}
    (``samplers.recovery.recover``, step ``step_scale`` σ_t²), and the loss is CD on the
    conditional: mean f(ỹ-, t) - mean f(ỹ+, t), whose gradient is the recovery likelihood's (the
    tether term has no parameters), + l2 (mean n(ỹ+)² + mean n(ỹ-)²) on the network's output n = c σ_t² f. The negatives are the objective's own, not the trainer's
    chains (they start at each example's noisy point), so the trainer runs none.
    Stats: ``cd_loss``'s f_pos, f_neg, gap; drl_move (mean ‖ỹ- - x_{t+1}‖ / (σ_t sqrt(d)): ~1 when the
    chains travel the conditional's width, ~0 when they stay at their start).
    """

    steps: int = 10
    step_scale: float = 0.2
    l2: float = 0.0
    name: ClassVar[str] = "drl"
    progress: ClassVar[Shown] = GAP + (("drl_move", "move", "{:.2f}"),)
    # its chains are the recovery Langevin of the loss (--step-size), not the trainer's
    remedies: ClassVar[str] = ("lower the learning rate (--lr), lower the recovery chains' step (--step-size), "
                               "or add a stronger energy penalty (--l2)")

    @classmethod
    def from_config(cls, config: RunConfig) -> "DRL":
        return cls(steps=config.mcmc_steps, step_scale=config.step_size, l2=config.l2)

    def check_data(self, dataset: DataSet) -> None:
        if dataset.kind != "image":
            raise EBMError("objective 'drl' (diffusion recovery likelihood) trains on images; for vector or 2-D "
                           "data use cd, dsm, ssm or nce")

    def loss(self, model: nn.Module, batch: Batch, net: Net) -> tuple[torch.Tensor, Stats]:
        x, g = batch.x_pos, batch.gen
        t = torch.randint(0, model.levels, (x.shape[0],), generator=g, device=x.device)
        eps_t = torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)
        eps_next = torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)
        y_pos, anchor = model.diffuse(x, t, eps_t, eps_next)
        sigma = model.sigmas[t]
        with frozen_parameters(model):
            y_neg = recover(lambda z: net(model.level_log_density, z, t), anchor, sigma, self.steps,
                            self.step_scale, g)
        f_pos, f_neg = net(model.level_log_density, y_pos, t), net(model.level_log_density, y_neg, t)
        loss, stats = cd_loss(f_pos, f_neg, 0.0)
        if self.l2:
            # the penalty on the network's output n = σ_t² f, not on f: f's 1/σ_t² would make it
            # ~300x stronger at the cleanest level than at the noisiest (L = 6)
            s2 = getattr(model, "energy_scale", 1.0) * sigma ** 2      # n = c σ_t² f
            loss = loss + self.l2 * ((s2 * f_pos).pow(2).mean() + (s2 * f_neg).pow(2).mean())
        with torch.no_grad():
            d = (y_neg - anchor).reshape(x.shape[0], -1)
            stats["drl_move"] = (d.norm(dim=1) / (sigma * d.shape[1] ** 0.5)).mean()
        return loss, stats


# the one table of objectives: config.objective -> class
OBJECTIVES: dict[str, type[Objective]] = {cls.name: cls for cls in (CD, ConditionalCD, JEM, DSM, SSM, NCE, DRL)}
assert tuple(OBJECTIVES) == _config.OBJECTIVES, (
    f"training.objectives.OBJECTIVES {tuple(OBJECTIVES)} and rundir.config.OBJECTIVES {_config.OBJECTIVES} "
    "must name the same objectives")


def make_objective(config: RunConfig) -> Objective:
    """The objective ``config.objective`` with its numbers from ``config``."""
    return OBJECTIVES[config.objective].from_config(config)
