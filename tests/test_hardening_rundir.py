"""Issue 11, findings 1, 4 and 5: --force replaces only ebmlab's own runs, compose never overwrites
one of its components (at any depth) and refuses cycles, one writer per run (a lock), and no write
or deletion through a symbolic link."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ebmlab.cli import main as cli_main
from ebmlab.errors import EBMError
from ebmlab.rundir.checkpoint import _prune, save_checkpoint
from ebmlab.training.api import resume_run, start_run

from helpers_runs import TINY6, copy_run, run_cli, tiny_data, train_tiny_run



def _one_line(code: int, capsys, contains: str | None = None) -> str:
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert code == 2, cap.err
    assert len(lines) == 1 and lines[0].startswith("ebmlab: error: "), cap.err
    assert "Traceback" not in cap.err
    if contains is not None:
        assert contains in lines[0], lines[0]
    return lines[0]


def _tree(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("harden_run"))


@pytest.fixture()
def run(trained, tmp_path) -> Path:
    """A private copy of the trained run (without its lock file)."""
    return copy_run(trained, tmp_path)


def _train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--out", str(out), "--steps", "1", "--batch-size", "64",
            "--mcmc-steps", "2", "--quiet", *extra]


# ---------------------------------------------------------------------------- 1. --force
def test_force_refuses_a_folder_that_merely_holds_a_config_json(tmp_path, capsys):
    p = tmp_path / "p"
    (p / "src").mkdir(parents=True)
    (p / "config.json").write_text("{}")
    (p / "src" / "important.py").write_text("x = 1\n")
    before = _tree(p)
    line = _one_line(cli_main(_train_args(tiny_data(tmp_path / "x.npy"), p, "--force")), capsys, "no .ebmlab-run")
    assert "2 entries" in line and "src/" in line
    assert _tree(p) == before


def test_force_replaces_a_marked_run_and_a_clean_legacy_run(trained, run, tmp_path, capsys):
    data = tiny_data(tmp_path / "x.npy")
    marker = json.loads((run / ".ebmlab-run").read_text())
    assert marker == {"format_version": 1, "kind": "run"}
    start_run(str(data), run, force=True, **TINY6)[0].run_lock.release()
    assert not (run / "checkpoints").exists()                 # replaced by a fresh run
    # a trained run written before the marker existed: only ebmlab's own files -> still replaceable
    legacy = tmp_path / "legacy"
    shutil.copytree(trained, legacy, ignore=shutil.ignore_patterns(".ebmlab-lock", ".ebmlab-run"))
    (legacy / "checkpoints" / ".step-0000009.ab_cd").mkdir()  # a write killed half-way is ebmlab's too
    start_run(str(data), legacy, force=True, **TINY6)[0].run_lock.release()
    assert (legacy / ".ebmlab-run").exists() and not (legacy / "checkpoints").exists()
    # ... but not once it holds something ebmlab never writes
    shutil.rmtree(legacy)
    shutil.copytree(trained, legacy, ignore=shutil.ignore_patterns(".ebmlab-lock", ".ebmlab-run"))
    (legacy / "notes.txt").write_text("mine")
    _one_line(cli_main(_train_args(data, legacy, "--force")), capsys, "notes.txt")
    assert (legacy / "notes.txt").read_text() == "mine" and (legacy / "checkpoints").is_dir()


def test_force_refuses_a_marker_of_an_unknown_format(run, tmp_path, capsys):
    (run / ".ebmlab-run").write_text(json.dumps({"format_version": 99, "kind": "run"}))
    (run / "thesis.tex").write_text("x")
    _one_line(cli_main(_train_args(tiny_data(tmp_path / "x.npy"), run, "--force")), capsys, ".ebmlab-run")
    assert (run / "thesis.tex").exists()


def test_compose_out_may_not_be_a_nested_component(run, tmp_path, capsys):
    b, c = tmp_path / "B", tmp_path / "C"
    assert cli_main(["compose", str(run), "--temperature", "2", "--out", str(b)]) == 0
    assert cli_main(["compose", str(b), "--temperature", "2", "--out", str(c)]) == 0
    assert json.loads((c / ".ebmlab-run").read_text())["kind"] == "composite"
    before = _tree(run)
    _one_line(cli_main(["compose", str(c), "--temperature", "3", "--out", str(run), "--force"]), capsys,
              "one of the runs being composed")
    assert _tree(run) == before


def _composite(path: Path, components: list) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "data.json").write_text(json.dumps({"format_version": 1, "kind": "composite", "spec": {
        "op": "temperature", "components": components, "T": 2.0}}))


@pytest.mark.parametrize("how", ["self", "pair"])
def test_a_composite_cycle_is_one_line_not_a_recursion_error(tmp_path, capsys, how):
    a, b = tmp_path / "A", tmp_path / "B"
    if how == "self":
        _composite(a, [str(a)])
    else:
        _composite(a, [str(b)])
        _composite(b, ["../A"])
    from ebmlab.rundir.load import load
    with pytest.raises(EBMError, match="cycle"):
        load(a)
    _one_line(cli_main(["sample", str(a), "--out", str(tmp_path / "s.npy")]), capsys, "cycle")
    _one_line(cli_main(["compose", str(a), "--temperature", "2", "--out", str(tmp_path / "D")]), capsys, "cycle")


# ---------------------------------------------------------------------------- 4. one writer
_HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, str(os.getpid()).encode())
print("locked", flush=True)
time.sleep(600)
"""


@pytest.fixture()
def held(run):
    """Another process holds the run's lock (as a training process would)."""
    p = subprocess.Popen([sys.executable, "-c", _HOLDER, str(run / ".ebmlab-lock")], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    yield p
    p.kill()
    p.wait()


def test_a_second_trainer_is_refused_while_a_run_is_locked(run, held, tmp_path, capsys):
    before = _tree(run)
    _one_line(cli_main(["train", "--resume", str(run), "--quiet"]), capsys, f"being trained by process {held.pid}")
    _one_line(cli_main(_train_args(tiny_data(tmp_path / "x.npy"), run, "--force")), capsys, str(held.pid))
    _one_line(cli_main(["plot", str(run)]), capsys, "being trained")
    _one_line(cli_main(["sample", str(run), "--n", "4", "--out", str(run / "s.npy")]), capsys, "being trained")
    assert _tree(run) == before
    # reading is fine: sampling to a file outside the run works while it trains
    assert cli_main(["sample", str(run), "--n", "4", "--n-steps", "2", "--out", str(tmp_path / "s.npy")]) == 0


def test_a_lock_left_by_a_killed_process_is_free(run, held):
    held.send_signal(signal.SIGKILL)
    held.wait()
    # the kernel dropped the flock with the process; the PID left in the file does not matter
    trainer = resume_run(run, steps=7)
    assert trainer.fit().step == 7
    trainer.run_lock.release()


def test_the_lock_is_held_by_the_training_process(run):
    """resume_run takes the lock (this process); another ``ebmlab train --resume`` is refused until
    it is released."""
    trainer = resume_run(run, steps=7)
    r = run_cli("train", "--resume", str(run), "--quiet", timeout=120)
    assert r.returncode == 2 and f"being trained by process {os.getpid()}" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    trainer.fit()
    trainer.run_lock.release()
    from ebmlab.rundir.lock import lock_holder
    assert lock_holder(run) is None


# ---------------------------------------------------------------------------- 5. symlinks
def test_pruning_never_follows_a_symlinked_checkpoints_folder(run, tmp_path):
    victim = tmp_path / "elsewhere"
    for s in (1, 2, 3):
        (victim / f"step-{s:07d}").mkdir(parents=True)
        (victim / f"step-{s:07d}" / "precious.txt").write_text("keep")
    shutil.rmtree(run / "checkpoints")
    (run / "checkpoints").symlink_to(victim, target_is_directory=True)
    with pytest.raises(EBMError, match="symbolic link"):
        save_checkpoint(run, 9, {"w": torch.zeros(2)}, {"step": 9})
    assert sorted(p.name for p in victim.iterdir()) == ["step-0000001", "step-0000002", "step-0000003"]
    _prune(run / "checkpoints", 1, "step-0000003")       # even called directly: not a real folder, no-op
    assert all((victim / f"step-{s:07d}" / "precious.txt").exists() for s in (1, 2, 3))


def test_pruning_deletes_only_what_ebmlab_named(tmp_path):
    ck = tmp_path / "checkpoints"
    outside = tmp_path / "outside"
    (outside / "inner").mkdir(parents=True)
    for s in (1, 2, 3):
        (ck / f"step-{s:07d}").mkdir(parents=True)
    (ck / "step-0-mine").mkdir()                        # sorts first; not a name ebmlab writes
    (ck / "step-0-mine" / "notes.txt").write_text("mine")
    (ck / "step-0000000").symlink_to(outside, target_is_directory=True)
    (ck / ".step-0000004.abc_12").symlink_to(outside / "inner", target_is_directory=True)
    _prune(ck, 1, "step-0000003")
    assert sorted(p.name for p in ck.iterdir()) == [".step-0000004.abc_12", "step-0-mine", "step-0000000",
                                                    "step-0000003"]
    assert (ck / "step-0-mine" / "notes.txt").exists() and (outside / "inner").is_dir()


@pytest.mark.parametrize("name", ["metrics.jsonl", "events.jsonl", "checkpoints"])
def test_resume_refuses_a_run_whose_log_or_checkpoints_is_a_symlink(run, tmp_path, capsys, name):
    victim = tmp_path / f"victim-{name}"
    if name == "checkpoints":
        shutil.move(str(run / name), victim)
    else:
        victim.write_text("do not touch\n")
        (run / name).unlink(missing_ok=True)
    (run / name).symlink_to(victim)
    before = _tree(victim) if victim.is_dir() else victim.read_bytes()
    _one_line(cli_main(["train", "--resume", str(run), "--steps", "9", "--quiet"]), capsys, "symbolic link")
    assert (_tree(victim) if victim.is_dir() else victim.read_bytes()) == before


def test_open_for_append_refuses_links(tmp_path):
    from ebmlab.rundir.layout import open_for_append
    victim = tmp_path / "victim.txt"
    victim.write_text("v\n")
    (tmp_path / "link.jsonl").symlink_to(victim)
    (tmp_path / "dangling.jsonl").symlink_to(tmp_path / "nowhere" / "new.txt")
    (tmp_path / "nowhere").mkdir()
    for name in ("link.jsonl", "dangling.jsonl"):
        with pytest.raises(EBMError, match="symbolic link"):
            open_for_append(tmp_path / name)
    assert victim.read_text() == "v\n" and not (tmp_path / "nowhere" / "new.txt").exists()
    with open_for_append(tmp_path / "real.jsonl") as fh:
        fh.write("a\n")
    with open_for_append(tmp_path / "real.jsonl") as fh:
        fh.write("b\n")
    assert (tmp_path / "real.jsonl").read_text() == "a\nb\n"
