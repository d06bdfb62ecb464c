"""Issue 11, fault injection: ENOSPC / EFBIG / EROFS at each write of a checkpoint.

Expected every time: the previous checkpoint (and LATEST) intact and loadable, no temporary folder
left, one EBMError line naming the errno (``ebmlab: error: ...``, exit 2 from the CLI), and after the
fault is gone ``--resume`` ends bit-identical to an uninterrupted run (weights, optimiser, buffer,
RNG states and every metrics row; helpers_runs.assert_runs_identical)."""
from __future__ import annotations

import errno
import itertools
import os
from pathlib import Path

import pytest
from safetensors import SafetensorError

import ebmlab.rundir.checkpoint as ckpt
from ebmlab.cli import main as cli_main
from ebmlab.errors import EBMError
from ebmlab.rundir.checkpoint import latest_checkpoint, load_checkpoint
from ebmlab.training.api import resume_run, start_run

from helpers_runs import TINY, TINY_TOML, assert_runs_identical, tiny_data

CFG = {**TINY, "steps": 9, "checkpoint_every": 3, "seed": 5}
POINTS = ("model.safetensors", "train_state.safetensors", "state.json", "fsync", "rename", "LATEST")
ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EROFS)
FAULT_AT_STEP = 6                  # the second checkpoint: step-0000003 must survive


def _oserror(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


def install_fault(monkeypatch, point: str, code: int) -> None:
    """Make the checkpoint of step FAULT_AT_STEP fail at ``point`` with errno ``code``."""
    def at_fault_step(path) -> bool:
        return f"step-{FAULT_AT_STEP:07d}" in str(path)

    if point in ("model.safetensors", "train_state.safetensors"):
        real = ckpt.save_file

        def save_file(tensors, filename, *a, **kw):
            if Path(filename).name == point and at_fault_step(filename):
                if point == "model.safetensors":     # what safetensors itself raises on a full disk
                    raise SafetensorError(f"Error while serializing: IoError(Os {{ code: {code}, kind: "
                                          f"Other, message: \"{os.strerror(code)}\" }})")
                raise _oserror(code, filename)
            return real(tensors, filename, *a, **kw)
        monkeypatch.setattr(ckpt, "save_file", save_file)
    elif point == "state.json":
        real_wt = Path.write_text

        def write_text(self, *a, **kw):
            if self.name == "state.json" and at_fault_step(self):
                raise _oserror(code, str(self))
            return real_wt(self, *a, **kw)
        monkeypatch.setattr(Path, "write_text", write_text)
    elif point == "fsync":
        real_fs = ckpt.fsync_file

        def fsync_file(path):
            if at_fault_step(path):
                raise _oserror(code, str(path))
            return real_fs(path)
        monkeypatch.setattr(ckpt, "fsync_file", fsync_file)
    elif point == "rename":
        real_rp = ckpt.replace_atomically

        def replace_atomically(src, dst):
            if at_fault_step(dst):
                raise _oserror(code, str(dst))
            return real_rp(src, dst)
        monkeypatch.setattr(ckpt, "replace_atomically", replace_atomically)
    elif point == "LATEST":
        real_aw = ckpt.atomic_write_text

        def atomic_write_text(path, text):
            if Path(path).name == "LATEST" and text == f"step-{FAULT_AT_STEP:07d}":
                raise _oserror(code, str(path))
            return real_aw(path, text)
        monkeypatch.setattr(ckpt, "atomic_write_text", atomic_write_text)
    else:
        raise ValueError(point)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("faults_ref")
    data = tiny_data(tmp / "x.npy")
    trainer, _ = start_run(str(data), tmp / "ref", **CFG)
    trainer.fit()
    trainer.run_lock.release()
    return data, tmp / "ref"


def _check_fault(monkeypatch, reference, tmp_path: Path, point: str, code: int) -> None:
    data, ref = reference
    run = tmp_path / f"run-{point}-{code}"
    with monkeypatch.context() as m:
        install_fault(m, point, code)
        trainer, _ = start_run(str(data), run, **CFG)
        with pytest.raises(EBMError) as err:
            trainer.fit()
        trainer.run_lock.release()
    msg = str(err.value)
    assert "\n" not in msg and f"[{errno.errorcode[code]}]" in msg, msg
    assert "the previous checkpoint step-0000003 is intact" in msg, msg
    ck = latest_checkpoint(run)
    assert ck is not None and ck.name == "step-0000003"
    assert load_checkpoint(ck)[0] == 3
    assert not list((run / "checkpoints").glob(".step-*")), "temporary checkpoint folder left behind"
    trainer = resume_run(run)                     # the fault is gone ("space returned")
    assert trainer.fit().status == "finished"
    trainer.run_lock.release()
    assert_runs_identical(ref, run)


@pytest.mark.parametrize("point,code", list(zip(POINTS, itertools.cycle(ERRNOS))))
def test_fault_at_each_checkpoint_write_fast(monkeypatch, reference, tmp_path, point, code):
    _check_fault(monkeypatch, reference, tmp_path, point, code)


@pytest.mark.slow
@pytest.mark.parametrize("point,code", list(itertools.product(POINTS, ERRNOS)))
def test_fault_at_each_checkpoint_write_all_errnos(monkeypatch, reference, tmp_path, point, code):
    _check_fault(monkeypatch, reference, tmp_path, point, code)


def test_disk_full_through_the_cli_is_one_line(monkeypatch, reference, tmp_path, capsys):
    data, _ = reference
    (tmp_path / "tiny.toml").write_text(TINY_TOML)
    install_fault(monkeypatch, "model.safetensors", errno.ENOSPC)
    code = cli_main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--steps", "7",
                     "--checkpoint-every", "3", "--batch-size", "64", "--mcmc-steps", "2",
                     "--config", str(tmp_path / "tiny.toml"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("ebmlab: error: cannot write checkpoint step-0000006") and "[ENOSPC]" in err[0], err
    assert latest_checkpoint(tmp_path / "r").name == "step-0000003"
