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
