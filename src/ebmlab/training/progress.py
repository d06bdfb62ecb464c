"""The training progress bar (tqdm): f(x+) - f(x-), acceptance and gradient norm at every logged step.

A trainer callback, used by ``ebmlab train`` and by ``ebmlab.train(..., progress=True)``.
"""
from __future__ import annotations

import sys
from typing import Any

# metrics row key -> (label, format); shown when the row has them (objectives log different stats)
SHOWN = (("gap", "f+ - f-", "{:+.3f}"), ("accept", "acc", "{:.2f}"), ("grad_norm", "|grad|", "{:.2g}"),
         ("mcmc_grad_norm", "|∇x f|", "{:.2g}"), ("train_acc", "train acc", "{:.2f}"))


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
        post = {label: fmt.format(row[key]) for key, label, fmt in SHOWN if key in row}
        self.bar.set_postfix(post, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
