"""The training progress bar (tqdm): the objective's own stats (f(x+) - f(x-) for CD), the chains' acceptance
and the gradient norm at every logged step.

A trainer callback, used by ``ebmlab train`` and by ``ebmlab.train(..., progress=True)``.
"""
from __future__ import annotations

import sys
from typing import Any

# the trainer's own stats, metrics row key -> (label, format), shown after the objective's own
# (``Objective.progress``: f+ - f- for CD, the dsm loss, NCE's accuracy and log Z...) when the row has them
SHOWN = (("accept", "acc", "{:.2f}"), ("grad_norm", "|grad|", "{:.2g}"), ("mcmc_grad_norm", "|∇x f|", "{:.2g}"))
# an objective of one's own without ``progress``: its loss
_LOSS = (("loss", "loss", "{:.4g}"),)


class ProgressBar:
    """A tqdm bar over the run's steps; call ``close()`` when training returns."""

    def __init__(self) -> None:
        self.bar = None

    def on_train_start(self, trainer: Any) -> None:
        from tqdm import tqdm
        self.bar = tqdm(total=trainer.config.steps, initial=trainer.step, desc="train", unit="step",
                        dynamic_ncols=True, file=sys.stderr)

    def on_log(self, trainer: Any, row: dict[str, float]) -> None:
        self.bar.update(trainer.step - self.bar.n)
        shown = (*getattr(trainer.objective, "progress", _LOSS), *SHOWN)
        post = {label: fmt.format(row[key]) for key, label, fmt in shown if key in row}
        self.bar.set_postfix(post, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
