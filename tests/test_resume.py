"""Exact resume under SIGKILL (issue 5, "What it must show" #1).

Training is killed with SIGKILL at seeded random moments — mid-step, and at every stage of a
checkpoint write (files written but folder not renamed, folder renamed but LATEST not updated,
LATEST updated but old checkpoints not pruned, a torn metrics line, before the first checkpoint) —
and resumed each time until it finishes. The final checkpoint must be bit-identical to an
uninterrupted run: weights, optimiser, scheduler, replay buffer, both generator states, data
permutation and position, and the metrics log (less its wall-clock column).

Two drivers:
- forked children (cheap: no re-import of torch), the fast default test and a 24-kill slow test;
- real `python -c` subprocesses running the ebmlab CLI, resumed with `ebmlab train --resume DIR`
  (slow: each start re-imports torch).
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import time
import traceback
import warnings
from pathlib import Path

import pytest
import torch

from ebmlab.rundir.checkpoint import latest_checkpoint, load_checkpoint
from ebmlab.training.api import resume_run, start_run

from helpers_runs import (PHASES, TINY, TINY_TOML, assert_runs_identical, child_cmd, install_pause_hook,
                          subprocess_env, tiny_data)


def _cfg(**kw):
    return {**TINY, "seed": 3, **kw}


def _reference(tmp: Path, data: Path, cfg: dict) -> tuple[Path, float]:
    ref = tmp / "ref"
    trainer, _ = start_run(str(data), ref, **cfg)
    t0 = time.time()
    assert trainer.fit().status == "finished"
    return ref, time.time() - t0           # the training loop alone (kill delays count from its start)


# ---------------------------------------------------------------------------- forked children
def _fork_train(run_dir: Path, data: Path, cfg: dict, start: bool, phase: str | None, k: int,
                marker: Path) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # "multi-threaded process ... fork()"
        pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        torch.set_num_threads(1)
        if phase not in (None, "time"):
            install_pause_hook(phase, k, marker)
        if start:
            trainer, _ = start_run(str(data), run_dir, **cfg)
        else:
            trainer = resume_run(run_dir)
        (marker / "started").write_text("1")
        trainer.fit()
        code = 0
    except BaseException:
        (marker / "error").write_text(traceback.format_exc())
    finally:
        os._exit(code)


def _wait(pid: int, marker: Path, phase: str | None, delay: float, timeout: float = 120) -> bool:
    """Let the child run until its kill point; SIGKILL it there. Returns True if it was killed."""
    t_end = time.time() + timeout
    started_at = None
    while time.time() < t_end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            err = marker / "error"
            assert os.WEXITSTATUS(status) == 0, err.read_text() if err.exists() else f"status {status}"
            return False
        if phase == "time":
            if started_at is None and (marker / "started").exists():
                started_at = time.time()
            if started_at is not None and time.time() - started_at >= delay:
                break
        elif phase is not None and (marker / "paused").exists():
            break
        time.sleep(0.002)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise AssertionError("child neither finished nor reached its kill point in time")
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return True


def _check_still_loadable(run_dir: Path) -> None:
    """After any kill the newest complete checkpoint (if any) opens cleanly."""
    if (run_dir / "checkpoints").exists():
        ck = latest_checkpoint(run_dir)
        if ck is not None:
            load_checkpoint(ck)


def _fork_campaign(tmp: Path, data: Path, cfg: dict, plan: list[tuple[str, int, float]]) -> tuple[Path, int]:
    run_dir = tmp / "run"
    kills = 0
    for i, (phase, k, delay) in enumerate([*plan, (None, 0, 0.0)] + [(None, 0, 0.0)] * 3):
        marker = tmp / f"m{i}"
        marker.mkdir()
        pid = _fork_train(run_dir, data, cfg, i == 0, phase, k, marker)
        if _wait(pid, marker, phase, delay):
            kills += 1
            _check_still_loadable(run_dir)
        elif phase is None:
            return run_dir, kills
    raise AssertionError("the run never finished")


def _plan(rng: random.Random, n: int, t_ref: float) -> list[tuple[str, int, float]]:
    plan = []
    for i in range(n):
        phase = rng.choice(("time", "time", *PHASES))
        plan.append((phase, rng.randint(1, 3), rng.uniform(0.0, 0.6) * t_ref))
    return plan


def test_sigkill_resume_is_exact_fast(tmp_path):
    """Default-suite variant: 6 kills, one at each kind of moment, via forked children."""
    data = tiny_data(tmp_path / "x.npy")
    cfg = _cfg()
    ref, t_ref = _reference(tmp_path, data, cfg)
    # first kill: inside the very first checkpoint write (no complete checkpoint exists yet)
    plan = [("tmpdir", 1, 0), ("time", 0, 0.3 * t_ref), ("renamed", 1, 0), ("latest", 2, 0),
            ("step", 2, 0), ("metrics", 2, 0), ("prune", 1, 0)]
    run_dir, kills = _fork_campaign(tmp_path, data, cfg, plan)
    print(f"SIGKILL (fork) fast: {kills} kills, reference run {t_ref:.2f} s")
    assert kills >= 6
    assert_runs_identical(ref, run_dir)
    assert not list((run_dir / "checkpoints").glob(".step-*")), "temporary checkpoint folders left behind"


@pytest.mark.slow
def test_sigkill_resume_is_exact_24_kills_fork(tmp_path):
    data = tiny_data(tmp_path / "x.npy")
    cfg = _cfg(steps=150)
    ref, t_ref = _reference(tmp_path, data, cfg)
    rng = random.Random(20240605)
    plan = [("tmpdir", 1, 0)] + _plan(rng, 29, t_ref / 4)
    run_dir, kills = _fork_campaign(tmp_path, data, cfg, plan)
    print(f"SIGKILL (fork) slow: {kills} kills, reference run {t_ref:.2f} s")
    assert kills >= 20
    assert_runs_identical(ref, run_dir)


# ---------------------------------------------------------------------------- CLI subprocesses
def _cli_args(data: Path, run_dir: Path, toml: Path, cfg: dict) -> list[str]:
    return ["train", "--data", str(data), "--out", str(run_dir), "--config", str(toml), "--quiet",
            "--seed", str(cfg["seed"]), "--steps", str(cfg["steps"]), "--batch-size", str(cfg["batch_size"]),
            "--buffer-size", str(cfg["buffer_size"]), "--mcmc-steps", str(cfg["mcmc_steps"]),
            "--checkpoint-every", str(cfg["checkpoint_every"]), "--log-every", str(cfg["log_every"]),
            "--plot-every", str(cfg["plot_every"])]


@pytest.mark.slow
def test_sigkill_resume_is_exact_cli_20_kills(tmp_path):
    """>= 20 SIGKILLs of real `ebmlab train` processes, each resumed with `ebmlab train --resume DIR`."""
    data = tiny_data(tmp_path / "x.npy")
    cfg = _cfg(steps=150)
    ref, t_ref = _reference(tmp_path, data, cfg)
    toml = tmp_path / "tiny.toml"
    toml.write_text(TINY_TOML)
    run_dir = tmp_path / "run"
    rng = random.Random(7)
    plan = [("tmpdir", 1, 0.0)] + _plan(rng, 27, t_ref / 4)
    kills, i = 0, 0
    while True:
        phase, k, delay = plan[i] if i < len(plan) else (None, 0, 0.0)
        marker = tmp_path / f"c{i}"
        marker.mkdir()
        env = subprocess_env()
        env["EBMLAB_TEST_MARKER"] = str(marker)
        if phase not in (None, "time"):
            env["EBMLAB_TEST_PAUSE"] = f"{phase}:{k}"
        args = _cli_args(data, run_dir, toml, cfg) if i == 0 else ["train", "--resume", str(run_dir), "--quiet"]
        proc = subprocess.Popen(child_cmd(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        t_end, started_at, killed = time.time() + 300, None, False
        while proc.poll() is None and time.time() < t_end:
            if phase == "time":
                if started_at is None and (marker / "started").exists():
                    started_at = time.time()
                if started_at is not None and time.time() - started_at >= delay:
                    killed = True
            elif phase is not None and (marker / "paused").exists():
                killed = True
            if killed:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        out, err = proc.communicate(timeout=60)
        if killed and proc.returncode == -signal.SIGKILL:
            kills += 1
            _check_still_loadable(run_dir)
        else:
            assert proc.returncode == 0, f"run {i} ({phase}) failed: {err[-3000:]}"
            assert "Traceback" not in err
            if phase is None:
                break
        i += 1
        assert i < len(plan) + 5, "the run never finished"
    print(f"SIGKILL (CLI) slow: {kills} kills over {i + 1} processes")
    assert kills >= 20
    assert_runs_identical(ref, run_dir)


# ---------------------------------------------------------------------------- Ctrl-C
def _interrupt_cli(tmp: Path, cfg: dict, n_sigint: int,
                   signum: int = signal.SIGINT) -> tuple[Path, subprocess.CompletedProcess, Path]:
    data = tiny_data(tmp / "x.npy")
    toml = tmp / "tiny.toml"
    toml.write_text(TINY_TOML)
    run_dir, marker = tmp / "run", tmp / "marker"
    marker.mkdir()
    env = subprocess_env()
    env["EBMLAB_TEST_MARKER"] = str(marker)
    proc = subprocess.Popen(child_cmd(*_cli_args(data, run_dir, toml, cfg)), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    t_end = time.time() + 300
    while proc.poll() is None and not (run_dir / "checkpoints" / "LATEST").exists() and time.time() < t_end:
        time.sleep(0.002)
    assert proc.poll() is None, "training finished before it could be interrupted"
    for _ in range(n_sigint):
        proc.send_signal(signum)
        time.sleep(0.001)
    out, err = proc.communicate(timeout=120)
    return run_dir, subprocess.CompletedProcess(proc.args, proc.returncode, out, err), data


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl_c", "sigterm"])
def test_ctrl_c_checkpoints_exits_130_and_resumes_exactly(tmp_path, capsys, signum):
    # SIGTERM: what a cluster scheduler sends at a time limit or preemption; the process used to die at once,
    # losing every step since the last periodic checkpoint
    from ebmlab.cli import main as cli_main
    cfg = _cfg(steps=150, checkpoint_every=7)
    run_dir, res, data = _interrupt_cli(tmp_path, cfg, 1, signum)
    assert res.returncode == 130, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert "Traceback" not in res.stderr and len(lines) == 1, res.stderr
    msg = lines[0]
    assert msg.startswith("ebmlab: interrupted at step ") and f"--resume {run_dir}" in msg, msg
    step = int(msg.split("at step ")[1].split("/")[0])
    assert 0 < step < cfg["steps"]
    assert (run_dir / "checkpoints" / "LATEST").read_text().strip() == f"step-{step:07d}"
    assert cli_main(["train", "--resume", str(run_dir), "--quiet"]) == 0
    capsys.readouterr()
    ref, _ = _reference(tmp_path, data, cfg)
    assert_runs_identical(ref, run_dir)


@pytest.mark.slow
def test_double_ctrl_c_stops_at_once_and_still_resumes_exactly(tmp_path, capsys):
    from ebmlab.cli import main as cli_main
    cfg = _cfg(steps=150, checkpoint_every=7)
    run_dir, res, data = _interrupt_cli(tmp_path, cfg, 2)
    assert res.returncode == 130, res.stderr[-2000:]
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert cli_main(["train", "--resume", str(run_dir), "--quiet"]) == 0
    capsys.readouterr()
    ref, _ = _reference(tmp_path, data, cfg)
    assert_runs_identical(ref, run_dir)


def test_interrupt_right_after_a_checkpoint_does_not_rewrite_it(tmp_path):
    """Ctrl-C just after checkpoint 6 (or straight after a resume): the state on disk is already
    current, so the folder LATEST points to is not deleted and rewritten (a kill in that window
    would leave LATEST dangling)."""
    data = tiny_data(tmp_path / "x.npy")

    class StopAt6:
        def on_checkpoint(self, trainer, step):
            if step == 6:
                trainer.request_stop()

    trainer, _ = start_run(str(data), tmp_path / "run", callbacks=[StopAt6()], **_cfg())
    res = trainer.fit()
    assert (res.status, res.step) == ("interrupted", 6)
    ck = tmp_path / "run" / "checkpoints" / "step-0000006"
    ino = ck.stat().st_ino
    trainer = resume_run(tmp_path / "run")
    trainer.request_stop()
    assert trainer.fit().status == "interrupted"
    assert ck.stat().st_ino == ino


def test_request_stop_is_honoured_once_and_the_next_fit_trains_on(tmp_path):
    """request_stop() from a callback stops fit at that step (checkpointed, "interrupted"); the
    request is then spent, so calling fit again finishes the run (it used to stop at once)."""
    data = tiny_data(tmp_path / "x.npy")

    class StopAt4:
        def on_log(self, trainer, row):
            if row["step"] == 4:
                trainer.request_stop()

    trainer, _ = start_run(str(data), tmp_path / "run", callbacks=[StopAt4()], **_cfg(steps=9, log_every=2))
    res = trainer.fit()
    assert (res.status, res.step) == ("interrupted", 4)
    assert latest_checkpoint(tmp_path / "run").name == "step-0000004"
    trainer.callbacks.clear()
    res = trainer.fit()
    assert (res.status, res.step) == ("finished", 9)


def test_resume_before_any_checkpoint_starts_over_identically(tmp_path):
    """Killed before its first checkpoint: --resume trains from step 0 and matches a fresh run."""
    data = tiny_data(tmp_path / "x.npy")
    cfg = _cfg(steps=9)
    start_run(str(data), tmp_path / "run", **cfg)            # header written, never trained
    trainer = resume_run(tmp_path / "run")
    assert trainer.step == 0 and trainer.fit().status == "finished"
    ref, _ = _reference(tmp_path, data, cfg)
    assert_runs_identical(ref, tmp_path / "run")


def test_resume_refuses_changed_data(tmp_path):
    """Exact resume needs the same data: a .npy edited since the run started is refused, clearly."""
    from ebmlab.errors import EBMError
    data = tiny_data(tmp_path / "x.npy")
    trainer, _ = start_run(str(data), tmp_path / "run", **_cfg(steps=3))
    trainer.fit()
    tiny_data(data, seed=1)                                   # same shape, different points
    with pytest.raises(EBMError, match="has changed since this run started"):
        resume_run(tmp_path / "run")


def test_a_refused_resume_with_new_steps_leaves_config_json_alone(tmp_path):
    """``--resume --steps N`` refused (here: the data changed; likewise a different --nproc) must write
    nothing: config.json kept its old horizon, not the new one of a resume that never happened."""
    from ebmlab.errors import EBMError
    data = tiny_data(tmp_path / "x.npy")
    trainer, _ = start_run(str(data), tmp_path / "run", **_cfg(steps=3))
    trainer.fit()
    before = (tmp_path / "run" / "config.json").read_text()
    tiny_data(data, seed=1)                                   # same shape, different points
    with pytest.raises(EBMError, match="has changed since this run started"):
        resume_run(tmp_path / "run", steps=9)
    assert (tmp_path / "run" / "config.json").read_text() == before


def test_the_run_picture_leaves_the_trained_model_as_the_checkpoint_holds_it(tmp_path):
    """`ebmlab train` redraws plot.png right after a checkpoint (``_PlotRefresher``) from the model being
    trained. A forward pass in training mode moves spectral norm's power-iteration vectors u, v: the run
    then trains on from weights its checkpoint does not hold, so a resumed run is not the uninterrupted
    one (and a CLI run is not the same run through ebmlab.train). The picture must leave them alone."""
    from ebmlab.cli import _PlotRefresher
    from ebmlab.training.api import release_run
    data = tiny_data(tmp_path / "x.npy")
    trainer, _ = start_run(str(data), tmp_path / "run", **_cfg(steps=9, spectral_norm=True, net_features="linear",
                                                                 plot_every=3, tensorboard=False))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    _PlotRefresher().on_checkpoint(trainer, 3)
    release_run(trainer)
    assert (tmp_path / "run" / "plot.png").exists()
    after = trainer.model.state_dict()
    assert [k for k in before if not torch.equal(before[k], after[k])] == []
    assert trainer.model.training
