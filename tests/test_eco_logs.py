"""metrics.csv and TensorBoard's event files hold the same rows as metrics.jsonl, also across a resume."""
from __future__ import annotations

import math

import pytest

from ebmlab.cli import main
from ebmlab.rundir.logs import read_csv, read_metrics
from ebmlab.training.api import release_run, resume_run, start_run
from tests.helpers_runs import TINY, TINY_TOML, tiny_data

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


class _Crash(Exception):
    pass


class _CrashAfterRow:
    """Stops the run right after the row of ``step`` is logged (and flushed): a kill between two checkpoints."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_log(self, trainer, row) -> None:
        if row["step"] == self.step:
            trainer.tensorboard.flush()
            raise _Crash


def _scalars(run_dir):
    acc = event_accumulator.EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_csv_and_tensorboard_match_jsonl_after_a_resume_without_duplicates(tmp_path):
    data = tiny_data(tmp_path / "d.npy")
    run = tmp_path / "run"
    trainer, _ = start_run(str(data), run, callbacks=[_CrashAfterRow(22)], **TINY)
    with pytest.raises(_Crash):
        trainer.fit()
    release_run(trainer)
    # the stopped process logged step 22; its newest checkpoint is step 21 (checkpoint_every 3)
    assert read_metrics(run)[-1]["step"] == 22
    t2 = resume_run(run)
    t2.fit()
    release_run(t2)

    rows = read_metrics(run)
    steps = [r["step"] for r in rows]
    assert steps == list(range(2, 41, 2))               # step 22 once: the resume dropped the stale row
    table = read_csv(run)
    assert [int(r["step"]) for r in table] == steps
    for r, c in zip(rows, table):
        assert set(c) == set(r)
        assert all(float(c[k]) == pytest.approx(v, rel=1e-12) for k, v in r.items())

    acc = _scalars(run)
    keys = [k for k in rows[0] if k != "step"]
    assert sorted(acc.Tags()["scalars"]) == sorted(f"metrics/{k}" for k in keys)
    for k in keys:
        events = acc.Scalars(f"metrics/{k}")
        assert [e.step for e in events] == steps, k     # purge_step removed the killed process's step 22
        for e, r in zip(events, rows):                 # TensorBoard stores float32
            assert math.isclose(e.value, r[k], rel_tol=1e-6, abs_tol=1e-30), (k, e.step, e.value, r[k])


def test_cli_writes_the_pictures_to_tensorboard_at_each_refresh(tmp_path, capsys):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY_TOML + "batch_size = 64\nmcmc_steps = 5\n")
    common = ["train", "--data", "eight-gaussians", "--config", str(cfg), "--steps", "6", "--log-every", "2",
              "--checkpoint-every", "3", "--plot-every", "3", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "on")]) == 0
    acc = _scalars(tmp_path / "on")
    assert acc.Tags()["images"] == ["pictures/plot"]
    assert [e.step for e in acc.Images("pictures/plot")] == [3, 6]    # a refresh at 3, the final picture at 6
    assert [e.step for e in acc.Scalars("metrics/loss")] == [2, 4, 6]
    assert (tmp_path / "on" / "metrics.csv").read_text().count("\n") == 4      # header + 3 rows



def test_no_tensorboard_writes_no_event_files_and_the_flag_parses(tmp_path):
    from ebmlab.cli import _parser
    assert _parser().parse_args(["train", "--no-tensorboard"]).tensorboard is False
    trainer, _ = start_run(str(tiny_data(tmp_path / "d.npy")), tmp_path / "off", tensorboard=False,
                           **{**TINY, "steps": 4})
    trainer.fit()
    release_run(trainer)
    assert not (tmp_path / "off" / "tb").exists()
    assert len(read_csv(tmp_path / "off")) == 2


def test_tensorboard_flag_without_the_package_is_one_error_line(tmp_path, capsys, monkeypatch):
    import ebmlab.rundir.tensorboard as tb
    monkeypatch.setattr(tb, "tensorboard_available", lambda: False)
    code = main(["train", "--data", "eight-gaussians", "--out", str(tmp_path / "r"), "--tensorboard"])
    err = capsys.readouterr().err
    assert code == 2 and "ebmlab[tensorboard]" in err
    assert not (tmp_path / "r").exists()


class _CrashAtCheckpoint:
    def __init__(self, step: int) -> None:
        self.step = step

    def on_checkpoint(self, trainer, step) -> None:
        if step == self.step:
            raise _Crash


def test_resume_with_more_steps_stretches_the_cosine_without_a_jump_and_counts_its_own_steps(tmp_path, capsys,
                                                                                              monkeypatch):
    import json
    import ebmlab.cli
    monkeypatch.setattr(ebmlab.cli, "_final_picture", lambda *a: None)     # the pictures are not under test here
    from ebmlab.rundir.config import RunConfig
    from ebmlab.training.schedule import lr_factor
    data = tiny_data(tmp_path / "d.npy")
    run = tmp_path / "run"
    trainer, _ = start_run(str(data), run, callbacks=[_CrashAtCheckpoint(12)], tensorboard=False,
                           **{**TINY, "steps": 20, "lr": 1e-2})
    with pytest.raises(_Crash):
        trainer.fit()
    release_run(trainer)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", "30", "--quiet"]) == 0
    summary = capsys.readouterr().out
    assert "trained 18 steps (steps 12 -> 30)" in summary           # not "trained 30 steps"
    lrs = [(r["step"], r["lr"]) for r in read_metrics(run)]
    assert [s for s, _ in lrs] == list(range(2, 31, 2))
    # non-increasing through the resume (recomputing t = step / 30 would raise the lr at step 14)
    assert all(b <= a * (1 + 1e-12) for (_, a), (_, b) in zip(lrs, lrs[1:])), lrs
    c = RunConfig.from_dict(json.loads((run / "config.json").read_text()))
    assert c.lr_anchor == {"step": 12, "phase": 12 / 20}
    lr = dict(lrs)
    assert lr[30] == pytest.approx(1e-2 * c.lr_min_factor, rel=1e-9)
    # continuous at the resume: the new schedule at step 12 is the old one's value there
    old = c.replace(steps=20, lr_anchor=None)
    assert lr_factor(c, 12) == pytest.approx(lr_factor(old, 12), rel=1e-12)
    assert lr[12] == pytest.approx(1e-2 * lr_factor(old, 12), rel=1e-9)
    # the largest step between two rows after the resume is no larger than before it
    drops = [a - b for (_, a), (_, b) in zip(lrs, lrs[1:])]
    assert max(drops[6:]) <= max(drops[:6]) * 1.01
