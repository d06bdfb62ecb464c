"""The digits benchmarks' ebmlab row (benchmarks/digits.py ``EbmlabRow``) trains the way ``ebmlab train`` does:
through ``Trainer.fit`` (guard, rollback, checkpoints), stopped at a CPU-time target, and keeps the preset's
length when its learning rate is scheduled over it. Tiny runs (tens of steps), nothing is measured."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import digits as bench  # noqa: E402


class FakeClock(bench.CpuClock):
    """A clock that advances one "second" each time it is read, so the stop is deterministic."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def now(self) -> float:
        self.reads += 1
        return float(self.reads)


def test_constant_lr_row_runs_until_the_budget(tmp_path):
    row = bench.EbmlabRow("ebmlab:digits+mcmc_steps=2", 0, tmp_path)
    assert row.trainer.config.steps == 10 ** 8          # a constant lr trains the same whatever the length
    clock = FakeClock()
    row.train_until(clock, 2.0)                         # read once per metrics row (every 25 steps)
    assert row.steps == 50 and not row.done
    row.train_until(clock, 3.0)                         # a second call continues the same run
    assert row.steps == 75
    rows = [json.loads(line) for line in (tmp_path / "runs" / bench.safe("ebmlab:digits+mcmc_steps=2")
                                          / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [25, 50, 75]    # fit's own metrics log, as `ebmlab train` writes it


def test_scheduled_lr_row_keeps_its_length_and_ends(tmp_path):
    row = bench.EbmlabRow("ebmlab:digits+mcmc_steps=2+lr_schedule=cosine+steps=30", 0, tmp_path)
    assert row.trainer.config.steps == 30               # the cosine is over the run's own length
    row.train_until(FakeClock(), 1e9)
    assert row.steps == 30 and row.done


def test_a_divergence_is_rolled_back_as_the_cli_does(tmp_path):
    # a limit on |f| the first steps already pass: the guard trips and fit rolls back (lr halved) up to
    # max_rollbacks times, then raises, as `ebmlab train` would
    spec = "ebmlab:digits+mcmc_steps=2+max_abs_f=1e-6+on_divergence=rollback+max_rollbacks=2"
    row = bench.EbmlabRow(spec, 0, tmp_path)
    with pytest.raises(Exception, match="diverged"):
        row.train_until(FakeClock(), 1e9)
    assert row.rollbacks == 2
    events = (tmp_path / "runs" / bench.safe(spec) / "events.jsonl").read_text()
    assert events.count('"rollback"') == 2 and '"diverged"' in events
