"""Class-conditional EBMs: one network, K log-densities f(x, y) = logits(x)[y].

With p(x, y) ∝ exp(logits(x)[y]) the same network gives
  - the class-conditional model  f(x, y) = logits[y]            (sample one class: ``for_class``),
  - the marginal                 f(x)    = logsumexp_y logits[y] (an ordinary EBM over x),
  - the classifier               p(y | x) = softmax(logits)      (Z cancels, so this is exact).
JEM (Grathwohl et al. 2019) is this model trained with a hybrid loss (``training.objectives.JEM``).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ebmlab.errors import EBMError
from ebmlab.box import inside_bounds, register_bounds
from ebmlab.density import DensityMethods, score_of


class ConditionalEnergyModel(nn.Module):
    """Wraps ``net: [B, *event] -> logits [B, K]`` as the joint EBM f(x, y) = logits[y].

    Args:
        net: the network. Its output's width is the number of classes K.
        n_classes: K; defaults to ``net.n_classes`` if the net has it, else it is read from
            the first forward pass (class labels are then checked from that call on).
        bounds: optional support box ``[(lo, hi), ...]`` per flattened event dimension, as for
            ``EnergyModel``: f = -inf outside it.
    """

    def __init__(self, net: nn.Module, n_classes: int | None = None,
                 bounds: Sequence[Sequence[float]] | None = None) -> None:
        super().__init__()
        self.net = net
        k = n_classes if n_classes is not None else getattr(net, "n_classes", None)
        if k is not None and int(k) < 1:
            raise EBMError(f"n_classes must be at least 1, got {k}")
        self.n_classes: int | None = None if k is None else int(k)
        register_bounds(self, bounds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_density(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """logits(x), shape [B, K]; -inf everywhere outside the bounds."""
        out = self.net(x)
        if out.ndim != 2 or out.shape[0] != x.shape[0]:
            raise EBMError(f"a conditional model's network must return logits [B, K] for a batch of "
                           f"B={x.shape[0]}, got {tuple(out.shape)}")
        if self.n_classes is None:
            self.n_classes = int(out.shape[1])
        elif out.shape[1] != self.n_classes:
            raise EBMError(f"the network returned {out.shape[1]} logits but the model has {self.n_classes} classes")
        if self.bounds is not None:
            out = torch.where(self.inside(x)[:, None], out, torch.full_like(out, float("-inf")))
        return out

    def check_class(self, y: int | torch.Tensor) -> None:
        """Raise ``EBMError`` unless every label in y is an integer in [0, K)."""
        if isinstance(y, torch.Tensor):
            if y.dtype.is_floating_point or y.dtype == torch.bool or y.is_complex():
                raise EBMError(f"class labels must be integers, got a {y.dtype} tensor")
            if y.numel() == 0:
                return
            lo, hi = int(y.min()), int(y.max())  # a host sync, but only on the labelled (training) path
        else:
            if isinstance(y, bool) or int(y) != y:
                raise EBMError(f"a class label must be an integer, got {y!r}")
            lo = hi = int(y)
        if self.n_classes is not None and (lo < 0 or hi >= self.n_classes):
            bad = lo if lo < 0 else hi
            raise EBMError(f"class {bad} is out of range; this model has classes 0..{self.n_classes - 1}")
        if self.n_classes is None and lo < 0:
            raise EBMError(f"class {lo} is out of range; classes are numbered from 0")

    def log_density(self, x: torch.Tensor, y: int | torch.Tensor | None = None) -> torch.Tensor:
        """f(x, y) = logits[y] (y an int or a LongTensor [B]), or the marginal logsumexp_y logits if y is None; [B]."""
        logits = self.logits(x)
        if y is None:
            return _logsumexp_safe(logits)
        self.check_class(y)  # after the forward pass, which fixes K if it was not given
        if isinstance(y, torch.Tensor):
            if y.shape != (x.shape[0],):
                raise EBMError(f"labels must have shape [B]=({x.shape[0]},), got {tuple(y.shape)}")
            return logits.gather(1, y.to(logits.device).long()[:, None])[:, 0]
        return logits[:, int(y)]

    def inside(self, x: torch.Tensor) -> torch.Tensor:
        """Bool [B]: whether each point lies in the support box (all True without bounds)."""
        return inside_bounds(x, self.bounds)

    def energy(self, x: torch.Tensor, y: int | torch.Tensor | None = None) -> torch.Tensor:
        """-f(x, y), shape [B]."""
        return -self.log_density(x, y)

    def log_ratio(self, x: torch.Tensor, x2: torch.Tensor, y: int | torch.Tensor | None = None) -> torch.Tensor:
        """f(x, y) - f(x2, y), shape [B]."""
        return self.log_density(x, y) - self.log_density(x2, y)

    def score(self, x: torch.Tensor, y: int | torch.Tensor | None = None) -> torch.Tensor:
        """∇x f(x, y), shape like x; parameters receive no ``.grad``."""
        return score_of(lambda z: self.log_density(z, y), x)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """p(y | x) = softmax(logits), shape [B, K]; rows sum to 1 (exact: Z cancels)."""
        return torch.softmax(self.logits(x), dim=1)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """argmax_y p(y | x), shape [B] (long)."""
        return self.logits(x).argmax(dim=1)

    def for_class(self, y: int) -> "ClassConditional":
        """The model of class y alone, f(x) = logits[y]: what ``sample --class y`` samples from."""
        self.check_class(y)
        return ClassConditional(self, int(y))


def _logsumexp_safe(logits: torch.Tensor) -> torch.Tensor:
    """logsumexp over dim 1 with a zero (not nan) gradient on rows that are all -inf (outside the bounds)."""
    dead = torch.isneginf(logits).all(dim=1)
    out = torch.logsumexp(torch.where(dead[:, None], torch.zeros_like(logits), logits), dim=1)
    return torch.where(dead, torch.full_like(out, float("-inf")), out)


class _ConditionalView(DensityMethods, nn.Module):
    """An ordinary single-output model (log_density, score, bounds) cut out of a conditional one.

    Shares parameters with its parent (so samplers freeze them while sampling); ``state_dict``
    holds the parent's under ``parent.``. Subclasses say which logit is f.
    """

    def __init__(self, parent: ConditionalEnergyModel) -> None:
        super().__init__()
        self.parent = parent

    @property
    def bounds(self) -> torch.Tensor | None:
        return self.parent.bounds

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_density(x)

    def inside(self, x: torch.Tensor) -> torch.Tensor:
        return self.parent.inside(x)


class ClassConditional(_ConditionalView):
    """f(x) = f(x, y) for one fixed class y: what ``sample --class y`` samples from."""

    def __init__(self, parent: ConditionalEnergyModel, y: int) -> None:
        super().__init__(parent)
        self.y = y

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """logits(x)[y], shape [B]."""
        logits = self.parent.logits(x)
        if self.y >= logits.shape[1]:  # K was unknown when this view was made
            raise EBMError(f"class {self.y} is out of range; this model has classes 0..{logits.shape[1] - 1}")
        return logits[:, self.y]


class ChainClasses(_ConditionalView):
    """f(x_i) = f(x_i, y_i): a batch of chains, chain i sampling its own class ``labels[i]``.

    What conditional training runs its negative chains on: set ``labels`` (LongTensor [B], on the
    model's device) before each run of B chains. The labels are NOT range-checked here (that would
    be a host sync per MCMC step); the trainer checks them once when the data is loaded.
    Shares parameters with its parent (so samplers freeze them while sampling).
    """

    def __init__(self, parent: ConditionalEnergyModel) -> None:
        super().__init__(parent)
        self.labels: torch.Tensor | None = None

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """logits(x)[i, labels[i]], shape [B]."""
        if self.labels is None or self.labels.shape != (x.shape[0],):
            got = None if self.labels is None else tuple(self.labels.shape)
            raise EBMError(f"ChainClasses needs one label per chain, shape ({x.shape[0]},); has {got}")
        return self.parent.logits(x).gather(1, self.labels[:, None])[:, 0]
