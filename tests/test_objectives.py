"""Training objectives behind one interface (training.objectives) and the run logs (rundir.logs)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import torch

import ebmlab.training.trainer as tr
from ebmlab.rundir import config as run_config
from ebmlab.rundir.logs import append_event, append_metrics, read_metrics, truncate_metrics
from ebmlab.training.api import start_run
from ebmlab.training.objectives import (CD, DRL, DSM, JEM, NCE, OBJECTIVES, SSM, Batch, ConditionalCD, Stateless,
                                       make_objective)

from helpers_runs import TINY, events, metric_rows, tiny_data


def test_the_objectives_table_matches_the_config_names():
    assert tuple(OBJECTIVES) == run_config.OBJECTIVES
    assert {OBJECTIVES[k] for k in OBJECTIVES} == {CD, ConditionalCD, JEM, DSM, SSM, NCE, DRL}
    cfg = run_config.RunConfig.from_dict({"objective": "jem", "alpha_cd": 0.25, "l2": 0.5, "labels": "builtin"})
    assert make_objective(cfg) == JEM(alpha_cd=0.25, l2=0.5)
    # the losses that reach f only through grad_x f (DDP must look for weights without a gradient)
    assert {k for k, cls in OBJECTIVES.items() if cls.score_only} == {"dsm", "ssm"}


@dataclass
class _DataOnly(Stateless):
    """An objective with no MCMC negatives (as score matching or NCE would be): pulls f(x+) to 0."""

    name: ClassVar[str] = "data-only"
    needs_labels: ClassVar[bool] = False
    needs_negatives: ClassVar[bool] = False

    def chain_target(self, model):
        raise AssertionError("no chains for this objective")

    def before_chains(self, y_pos):
        raise AssertionError("no chains for this objective")

    def loss(self, model, batch: Batch, net):
        assert batch.x_neg is None and batch.y_pos is None and isinstance(batch.gen, torch.Generator)
        f = net(model.log_density, batch.x_pos)
        return f.pow(2).mean(), {"f_pos": f.detach().mean()}


def test_an_objective_without_negatives_runs_no_chains(tmp_path, monkeypatch):
    monkeypatch.setattr(tr, "make_objective", lambda config: _DataOnly())
    monkeypatch.setattr(tr, "run_chains", lambda *a, **k: (_ for _ in ()).throw(AssertionError("chains ran")))
    trainer, _ = start_run(str(tiny_data(tmp_path / "x.npy")), tmp_path / "run",
                           **{**TINY, "steps": 4, "negatives": "persistent"})
    assert trainer.kernel is None and trainer.buffer is None
    assert trainer.fit().status == "finished"
    rows = metric_rows(tmp_path / "run")
    assert [r["step"] for r in rows] == [2, 4]
    assert set(rows[0]) == {"step", "f_pos", "loss", "grad_norm", "lr"}


def test_run_logs_append_read_and_truncate(tmp_path):
    for step in (1, 2, 3):
        append_metrics(tmp_path, {"step": step, "loss": 0.5 * step})
    with open(tmp_path / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 4, "lo')                           # a kill mid-write
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3]
    truncate_metrics(tmp_path, 2)
    assert (tmp_path / "metrics.jsonl").read_text().splitlines() == [
        json.dumps({"step": 1, "loss": 0.5}), json.dumps({"step": 2, "loss": 1.0})]
    append_event(tmp_path, {"event": "restart"})
    assert events(tmp_path) == [{"event": "restart"}]
    assert read_metrics(tmp_path / "nowhere") == []
    append_metrics(None, {"step": 1})                       # in-memory runs log nothing
    truncate_metrics(None, 0)
