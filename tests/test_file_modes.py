"""Files and folders written atomically (temp file + rename) get the mode a plain open()/mkdir would
give, 0666/0777 & ~umask, not tempfile's private 0600/0700 (issue 3)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from ebmlab.atomic import atomic_write_bytes
from ebmlab.rundir.checkpoint import save_checkpoint
from ebmlab.viz.imageio import save_grid_png
from ebmlab.viz.plots import plot_training_curves

from helpers_runs import TINY, tiny_data


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_atomic_writes_respect_the_umask(tmp_path, umask):
    atomic_write_bytes(tmp_path / "a.json", b"{}")
    save_grid_png(torch.zeros(4, 1, 8, 8), tmp_path / "g.png")
    plot_training_curves([{"step": 1, "loss": 0.5}, {"step": 2, "loss": 0.4}], tmp_path / "c.png")
    ck = save_checkpoint(tmp_path, 5, {"w": torch.zeros(2)}, {"step": 5})
    for f in [tmp_path / "a.json", tmp_path / "g.png", tmp_path / "c.png", tmp_path / "checkpoints" / "LATEST",
              *ck.iterdir()]:
        assert _mode(f) == 0o666 & ~umask, (f, oct(_mode(f)))
    assert _mode(ck) == 0o777 & ~umask
    assert not [p for p in tmp_path.rglob(".*")], "no temporary file left behind"


def test_a_trained_run_directory_is_readable_by_others(tmp_path):
    from ebmlab.cli import main
    old = os.umask(0o022)
    try:
        (tmp_path / "tiny.toml").write_text("hidden = 16\ndepth = 2\n")
        assert main(["train", "--data", str(tiny_data(tmp_path / "x.npy")), "--out", str(tmp_path / "run"),
                     "--steps", "3", "--batch-size", "64", "--buffer-size", str(TINY["buffer_size"]),
                     "--mcmc-steps", "2", "--config", str(tmp_path / "tiny.toml"), "--quiet"]) == 0
    finally:
        os.umask(old)
    paths = list((tmp_path / "run").rglob("*"))
    assert any(p.name == "config.json" for p in paths) and any(p.suffix == ".safetensors" for p in paths)
    for p in paths:
        assert _mode(p) == (0o755 if p.is_dir() else 0o644), (p, oct(_mode(p)))
