"""Training losses on f: contrastive divergence (maximise f(x_train) - f(x_sample)) and JEM's hybrid.

Each returns (scalar loss, stats of detached on-device tensors); ``training.objectives`` picks one
per run and names the stats the trainer logs.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ebmlab.errors import EBMError


def cd_loss(f_pos: torch.Tensor, f_neg: torch.Tensor, l2: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss whose gradient is the CD estimate of -∇θ log-likelihood.

    Args:
        f_pos: f(x_train), [B] — with a graph to the parameters.
        f_neg: f(x_sample), [B'] — negatives must come from *detached* samples (no graph through
            the sampler), which is what makes this the CD gradient ∇f(x_train) - ∇f(x_sample).
        l2: weight of the energy-magnitude penalty mean(f_pos² + f_neg²) (IGEBM's regulariser:
            keeps f near zero so it cannot drift without bound).
    Returns: (scalar loss, stats of detached tensors: f_pos, f_neg, gap = f_pos - f_neg).
    """
    gap = f_pos.mean() - f_neg.mean()
    loss = -gap
    if l2:
        loss = loss + l2 * (f_pos.pow(2).mean() + f_neg.pow(2).mean())
    stats = {"f_pos": f_pos.detach().mean(), "f_neg": f_neg.detach().mean(), "gap": gap.detach()}
    return loss, stats


def jem_loss(logits_pos: torch.Tensor, labels: torch.Tensor, f_pos: torch.Tensor, f_neg: torch.Tensor,
             alpha_cd: float = 1.0, l2: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """JEM's hybrid loss = cross-entropy(logits_pos, labels) + alpha_cd * CD, a scalar.

    Grathwohl et al. 2019, "Your classifier is secretly an energy based model": the logits define
    p(x, y) ∝ exp(logit_y(x)), so maximising log p(y | x) + log p(x) is cross-entropy plus CD on the
    marginal f(x) = logsumexp_y logit_y(x).

    Args:
        logits_pos: [B, K] logits of the labelled data.
        labels: [B] integer classes in [0, K).
        f_pos: [B] f(x) = logsumexp logits on data (usually ``logits_pos.logsumexp(1)``).
        f_neg: [B'] f on negatives from the sampler.
        alpha_cd: weight of the generative term.
        l2: optional penalty l2 * mean(f_pos^2 + f_neg^2), as in ``cd_loss``.
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
