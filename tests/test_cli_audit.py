"""An audit of the commands other than ``train`` (sample, eval, plot, compose, inpaint, runs, export,
prepare, completion) across the kinds of run: each finding a user could hit, pinned by a test."""
from __future__ import annotations

from ebmlab.cli import _parser


def _subparser(name: str):
    import argparse
    (sub,) = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sub, sub.choices[name]


def test_train_help_names_every_objective_not_only_cd():
    # `ebmlab --help` said "train an EBM by contrastive divergence" after dsm/ssm/nce/drl arrived
    sub, _ = _subparser("train")
    line = next(a.help for a in sub._choices_actions if a.dest == "train")
    for word in ("contrastive divergence", "score matching", "NCE", "recovery likelihood"):
        assert word in line, line
