"""Training objectives: what a training step's loss is, and what its negatives (if any) sample.

The trainer (``training.trainer``) owns everything an objective shares — data batches, the MCMC
chains, the optimiser, mixed precision, the divergence guard, checkpoints — and asks the run's
objective (``config.objective``, looked up in ``OBJECTIVES``) for the rest:

  - ``needs_labels``: train a ``ConditionalEnergyModel`` on (x, y) pairs; the trainer checks the
    labels once and hands each batch's labels over as ``batch.y_pos``;
  - ``needs_negatives``: whether the trainer runs MCMC chains at all. If so it samples
    ``chain_target(model)`` (built once), calls ``before_chains(y_pos)`` before each run of the
    chains and passes their detached final states as ``batch.x_neg``; if not, ``batch.x_neg`` is None;
  - ``loss(model, batch, net)``: the scalar loss and its stats, detached on-device scalars that the
    trainer averages into metrics.jsonl (no host sync). ``f_pos`` / ``f_neg``, where present, are
    what the divergence guard watches.

A new objective (e.g. score matching or NCE, which need no MCMC negatives; diffusion recovery
likelihood, which needs noise per level — drawn from ``batch.gen`` so resume stays exact) is a
class here with the ``Objective`` members, an entry in ``OBJECTIVES`` and its name in
``rundir.config.OBJECTIVES`` (config sits below training, so it keeps a plain tuple of names; the
check at the bottom of this module keeps the two in step). Its loss function goes in
``training.losses``. A discrete EBM's other sampler would be chosen where the kernel is
(``training.negatives.sampler_from_config``), not here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Protocol

import torch
from torch import nn
from torch.nn import functional as F

from ebmlab.models.conditional import ChainClasses, _logsumexp_safe
from ebmlab.rundir import config as _config
from ebmlab.rundir.config import RunConfig
from ebmlab.training.losses import cd_loss, jem_loss

# net(fn, *args): fn(*args) — a forward pass of the network — under the run's autocast, as float32
Net = Callable[..., torch.Tensor]
Stats = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Batch:
    """What one training step hands its objective.

    x_pos: [B, *event] training data in the model scale (data noise already added).
    y_pos: [B] int64 labels on the device, or None unless the objective ``needs_labels``.
    x_neg: [B', *event] detached final chain states, or None unless the objective ``needs_negatives``.
    gen: the trainer's device generator (checkpointed): any noise a loss draws comes from it.
    """

    x_pos: torch.Tensor
    y_pos: torch.Tensor | None
    x_neg: torch.Tensor | None
    gen: torch.Generator


class Objective(Protocol):
    """The interface the trainer sees (see the module docstring)."""

    name: ClassVar[str]
    needs_labels: ClassVar[bool]
    needs_negatives: ClassVar[bool]

    @classmethod
    def from_config(cls, config: RunConfig) -> "Objective": ...
    def chain_target(self, model: nn.Module) -> nn.Module: ...
    def before_chains(self, y_pos: torch.Tensor | None) -> None: ...
    def loss(self, model: nn.Module, batch: Batch, net: Net) -> tuple[torch.Tensor, Stats]: ...


@dataclass
class CD:
    """Contrastive divergence on an unconditional f(x): loss = mean f(x-) - mean f(x+) (+ l2 penalty).

    Negatives sample the model itself. Stats: ``cd_loss``'s f_pos, f_neg, gap.
    """

    l2: float = 0.0
    name: ClassVar[str] = "cd"
    needs_labels: ClassVar[bool] = False
    needs_negatives: ClassVar[bool] = True

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
class ConditionalCD:
    """CD per class on f(x, y) = logits(x)[y]: chain i samples f(., y+_i), the class of positive i
    (``ChainClasses``); loss = mean f(x-, y+) - mean f(x+, y+) (+ l2), i.e. ``cd_loss`` per class.

    Stats: f_pos, f_neg, gap, and the batch's cross-entropy and accuracy train_ce, train_acc.
    """

    l2: float = 0.0
    name: ClassVar[str] = "conditional"
    needs_labels: ClassVar[bool] = True
    needs_negatives: ClassVar[bool] = True

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
class JEM:
    """JEM (Grathwohl et al. 2019): cross-entropy(logits(x+), y+) + alpha_cd * CD on the marginal
    f(x) = logsumexp_y logits (``jem_loss``); negatives sample that marginal, i.e. the model itself.

    Stats: f_pos, f_neg, gap (= -CD), train_ce, train_acc — the names the other objectives log.
    """

    alpha_cd: float = 1.0
    l2: float = 0.0
    name: ClassVar[str] = "jem"
    needs_labels: ClassVar[bool] = True
    needs_negatives: ClassVar[bool] = True

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


# the one table of objectives: config.objective -> class
OBJECTIVES: dict[str, type[Objective]] = {cls.name: cls for cls in (CD, ConditionalCD, JEM)}
assert tuple(OBJECTIVES) == _config.OBJECTIVES, (
    f"training.objectives.OBJECTIVES {tuple(OBJECTIVES)} and rundir.config.OBJECTIVES {_config.OBJECTIVES} "
    "must name the same objectives")


def make_objective(config: RunConfig) -> Objective:
    """The objective ``config.objective`` with its numbers from ``config``."""
    return OBJECTIVES[config.objective].from_config(config)
