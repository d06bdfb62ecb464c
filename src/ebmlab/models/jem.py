"""JEM (Grathwohl et al. 2019, "Your classifier is secretly an energy based model"): a classifier's logits as an EBM.

The logits define p(x, y) ∝ exp(logit_y(x)), hence f(x) = logsumexp_y logit_y(x) and the usual
softmax p(y | x). Training maximises log p(y | x) + log p(x): cross-entropy plus contrastive
divergence on f, with negatives from short-run SGLD out of a replay buffer. The model object is
``ebmlab.models.conditional.ConditionalEnergyModel``; this module adds the loss, a small digits net and
the paper's recipe. ``ebmlab train --preset jem --labels ...`` trains with it (``training.presets``
takes its numbers from ``JEM_PRESET``; the trainer calls ``jem_loss``).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ebmlab.models.conditional import ConditionalEnergyModel
from ebmlab.errors import EBMError

# JEM's recipe. Sampler and buffer numbers are the paper's (§3.1 / appendix) and its
# reference code's training command; ebmlab's Langevin update x <- x + step_size ∇f + noise_scale z
# is JEM's SGLD x <- x + α ∇f + σ z with α = step_size = 1 and σ = noise_scale = 0.01 (deliberately
# *not* the exact-Langevin sqrt(2 α) noise). Entries marked "ebmlab" are our choices for 8x8 digits.
JEM_PRESET: dict = {
    "source": "Grathwohl et al. 2019 (JEM), arXiv:1912.03263, and its reference training command",
    "sampler": "langevin",
    "n_steps": 20,            # SGLD steps per training iteration
    "step_size": 1.0,         # α
    "noise_scale": 0.01,      # σ
    "buffer_size": 10000,
    "reinit_prob": 0.05,      # fraction of chains restarted from noise each iteration
    "init": "uniform",        # buffer and restarts: uniform noise in [-1, 1]
    "optimizer": "adam",
    "lr": 1e-4,
    "warmup_iters": 1000,     # linear learning-rate warm-up
    "batch_size": 64,
    "data_noise": 0.03,       # Gaussian noise added to training images
    "alpha_cd": 1.0,          # weight of log p(x) against log p(y|x) (JEM uses 1 and 1)
    "network": "DigitsClassifier",  # ebmlab: JEM used a WRN-28-10 without batch norm on 32x32 images
    "n_classes": 10,          # ebmlab: digits
}


class DigitsClassifier(nn.Module):
    """Logits for 8x8 digit images: x [B, 1, 8, 8] (or [B, 64]) in [-1, 1] -> [B, n_classes].

    Small conv net, no batch norm (its batch statistics make f(x) depend on the rest of the
    batch, which breaks sampling — JEM drops it for the same reason) and SiLU activations
    (smooth, so ∇x f is smooth for Langevin).
    """

    def __init__(self, n_classes: int = 10, width: int = 32) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.SiLU(),                       # 8x8
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.SiLU(),     # 4x4
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.SiLU(), # 2x2
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * width, 4 * width), nn.SiLU(),
                                  nn.Linear(4 * width, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.reshape(x.shape[0], 1, 8, 8)))


def jem_model(n_classes: int = 10, width: int = 32) -> ConditionalEnergyModel:
    """A JEM for digits: ``ConditionalEnergyModel(DigitsClassifier(n_classes, width))``."""
    return ConditionalEnergyModel(DigitsClassifier(n_classes, width), n_classes=n_classes)


def jem_loss(logits_pos: torch.Tensor, labels: torch.Tensor, f_pos: torch.Tensor, f_neg: torch.Tensor,
             alpha_cd: float = 1.0, l2: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """JEM's hybrid loss = cross-entropy(logits_pos, labels) + alpha_cd * CD, a scalar.

    Args:
        logits_pos: [B, K] logits of the labelled data.
        labels: [B] integer classes in [0, K).
        f_pos: [B] f(x) = logsumexp logits on data (usually ``logits_pos.logsumexp(1)``).
        f_neg: [B'] f on negatives from the sampler.
        alpha_cd: weight of the generative term.
        l2: optional penalty l2 * mean(f_pos^2 + f_neg^2), as in ``training.losses.cd_loss``.
    CD = -(mean f_pos - mean f_neg): lowering it raises f on data and lowers it on samples.
    Returns (loss, stats): stats are detached scalars ``ce``, ``cd``, ``f_pos``, ``f_neg``, ``acc``.
    No host sync: the label range is checked only on CPU tensors.
    """
    if logits_pos.ndim != 2 or labels.shape != (logits_pos.shape[0],):
        raise EBMError(f"jem_loss: logits must be [B, K] and labels [B], got {tuple(logits_pos.shape)} "
                       f"and {tuple(labels.shape)}")
    if labels.dtype.is_floating_point:
        raise EBMError("jem_loss: labels must be integers")
    k = logits_pos.shape[1]
    if labels.device.type == "cpu" and labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= k):
        raise EBMError(f"jem_loss: labels must lie in 0..{logits_pos.shape[1] - 1}")
    ce = F.cross_entropy(logits_pos, labels.long())
    cd = -(f_pos.mean() - f_neg.mean())
    loss = ce + alpha_cd * cd
    if l2:
        loss = loss + l2 * (f_pos.pow(2).mean() + f_neg.pow(2).mean())
    acc = (logits_pos.argmax(1) == labels).float().mean()
    stats = {"ce": ce.detach(), "cd": cd.detach(), "f_pos": f_pos.detach().mean(),
             "f_neg": f_neg.detach().mean(), "acc": acc.detach()}
    return loss, stats
