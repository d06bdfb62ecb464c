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


def _fake_run(d, objective: str, steps: int = 60, events: list[dict] | None = None):
    """A run directory as `ebmlab runs` sees one (config.json, data.json; no checkpoint yet)."""
    import json
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"steps": steps, "objective": objective}))
    (d / "data.json").write_text(json.dumps({"kind": "vector", "event_shape": [2]}))
    if events is not None:
        (d / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return d


def test_runs_lists_the_objective_and_a_diverged_run_as_diverged(tmp_path, capsys):
    # `ebmlab runs` showed no objective (a dsm and a cd run looked alike), and a run the divergence guard
    # stopped was "partial" ("resume it"), though resuming repeats the divergence unless settings change
    from ebmlab.tasks.runs_list import format_rows, list_runs
    diverged = {"event": "diverged", "step": 1, "quantity": "param_update", "value": 19.2, "message": "..."}
    _fake_run(tmp_path / "a-dsm", "dsm")
    _fake_run(tmp_path / "b-div", "cd", events=[diverged])
    _fake_run(tmp_path / "c-rolled", "nce", events=[diverged, {"event": "rollback", "diverged_at": 1}])
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in list_runs(tmp_path)}
    assert rows["a-dsm"]["objective"] == "dsm" and rows["a-dsm"]["status"] == "partial"
    assert rows["b-div"]["status"] == "diverged"
    assert rows["c-rolled"]["status"] == "partial" and rows["c-rolled"]["objective"] == "nce"
    lines = format_rows(list(sorted(rows.values(), key=lambda r: r["path"])))
    assert " dsm " in lines[0] and " diverged " in lines[1] and " nce " in lines[2]

