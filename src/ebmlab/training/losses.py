"""The contrastive-divergence loss (lecture: maximise f(x_train) - f(x_sample))."""
from __future__ import annotations

import torch


def cd_loss(f_pos: torch.Tensor, f_neg: torch.Tensor, l2: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss whose gradient is the CD estimate of -∇θ log-likelihood.

    Args:
        f_pos: f(x_train), [B] — with a graph to the parameters.
        f_neg: f(x_sample), [B'] — negatives must come from *detached* samples (no graph through
            the sampler), which is what makes this the lecture's ∇f(x_train) - ∇f(x_sample).
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
