"""Issue 12: train, checkpoint, kill, resume and reload a user's own network fed by a user Dataset."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import ebmlab
from ebmlab import EBMError
from ebmlab.rundir.config import RunConfig
from helpers_runs import assert_runs_identical, run_cli, subprocess_env
from user_networks import TINY, NaNAtInit, ResidualMLP, TwoBlobs, WrongShape

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _train(out, **kw):
    torch.manual_seed(0)
    settings = {k: v for k, v in TINY.items() if k != "batch_size"}
    settings.update(kw)
    return ebmlab.train(ResidualMLP(), DataLoader(TwoBlobs(), batch_size=32), out=out, progress=False,
                        network_kwargs={"dim": 2, "width": 32}, **settings)


def test_user_network_on_2d_data_does_not_inherit_the_builtin_first_layer(tmp_path):
    """The cd 2-D preset's hybrid first layer is the built-in MLP's: a user's network on 2-D data
    records the plain default and may use spectral norm (refused before: "net_features sine / hybrid
    and spectral_norm exclude each other")."""
    run = _train(tmp_path / "r", spectral_norm=True)
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert run.status == "finished" and config["net_features"] == "linear" and config["init"] == "data"


def test_train_returns_model_and_reload_is_exact(tmp_path):
    run = _train(tmp_path / "r")
    assert run.status == "finished" and run.step == TINY["steps"] and run.run_dir == tmp_path / "r"
    assert "gap" in run.metrics
    x = torch.randn(16, 2)
    loaded = ebmlab.load(tmp_path / "r", network=ResidualMLP())
    assert torch.equal(loaded.log_density(x), run.model.log_density(x))
    trusted = ebmlab.load(tmp_path / "r", trust_code=True)          # imports user_networks.ResidualMLP
    assert torch.equal(trusted.log_density(x), run.model.log_density(x))


def test_loader_batch_size_is_used_and_order_is_ebmlabs(tmp_path):
    a = _train(tmp_path / "a")
    cfg = RunConfig.from_dict(json.loads((tmp_path / "a/config.json").read_text()))
    assert cfg.batch_size == 32 and cfg.net == "custom" and cfg.network["class"] == "user_networks:ResidualMLP"
    # a second run with the same seed is identical: the order comes from ebmlab's generator, not the loader's
    b = _train(tmp_path / "b")
    assert_runs_identical(tmp_path / "a", tmp_path / "b")
    assert a.metrics["gap"] == b.metrics["gap"]


def test_in_memory_run_writes_nothing(tmp_path):
    torch.manual_seed(0)
    run = ebmlab.train(ResidualMLP(), TensorDataset(torch.randn(100, 2)), steps=3, progress=False, buffer_size=64)
    assert run.run_dir is None and run.step == 3
    assert not any(tmp_path.iterdir())


def test_sigkill_then_resume_is_bit_identical(tmp_path):
    """A child trains the user network on the user Dataset; SIGKILL after a checkpoint; resume = uninterrupted."""
    _train(tmp_path / "ref")
    out = tmp_path / "killed"
    code = (f"import sys, torch; torch.set_num_threads(1); sys.path.insert(0, {str(HERE)!r}); "
            f"import user_networks; user_networks.child_train({str(out)!r}, resume=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], env=subprocess_env(), cwd=HERE)
    deadline = time.time() + 120
    # kill once a mid-run checkpoint exists (step 9 or later), before the run ends
    while time.time() < deadline:
        latest = out / "checkpoints" / "LATEST"
        if latest.exists() and int(latest.read_text().strip().split("-")[1]) >= 9:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    step = int((out / "checkpoints" / "LATEST").read_text().strip().split("-")[1])
    assert step < TINY["steps"] or proc.returncode == 0
    torch.manual_seed(123)      # resume must not depend on the global RNG
    ebmlab.train(ResidualMLP(), DataLoader(TwoBlobs(), batch_size=32), resume=out, progress=False)
    assert_runs_identical(tmp_path / "ref", out)


def test_resume_needs_the_data_and_the_network(tmp_path):
    _train(tmp_path / "r", steps=6)
    with pytest.raises(EBMError, match="pass the same data again"):
        ebmlab.resume(tmp_path / "r", model=ResidualMLP(), steps=9)
    with pytest.raises(EBMError, match="your own network"):
        ebmlab.resume(tmp_path / "r", data=TwoBlobs(), steps=9)
    with pytest.raises(EBMError, match="has changed"):
        ebmlab.resume(tmp_path / "r", model=ResidualMLP(), data=TwoBlobs(seed=1), steps=9)


@pytest.mark.parametrize("net, data, message", [
    (WrongShape(), TwoBlobs(), r"shape \[B\].*got \(4, 3\)"),
    (NaNAtInit(), TwoBlobs(), "non-finite f"),
    (ResidualMLP(), TensorDataset(torch.randn(50, 3)), "fails on a batch"),
    (ResidualMLP(), [("not", "a tensor")] * 10, "not a map-style Dataset|items must be tensors|must be a built-in"),
    ("mlp", TwoBlobs(), None),
])
def test_bad_network_or_dataset_is_one_line_and_writes_nothing(tmp_path, net, data, message):
    out = tmp_path / "run"
    if message is None:      # the control: a built-in network name on a user Dataset trains
        assert ebmlab.train(net, data, out=out, steps=2, progress=False, buffer_size=64).step == 2
        return
    with pytest.raises(EBMError, match=message):
        ebmlab.train(net, data, out=out, steps=2, progress=False)
    assert not out.exists()


def test_dataset_item_of_wrong_shape_is_named(tmp_path):
    class Ragged(TwoBlobs):
        def __getitem__(self, i):
            return self.x[i] if i % 7 else self.x[i, :1]
    with pytest.raises(EBMError, match="every item must have the same shape"):
        torch.manual_seed(0)
        ebmlab.train(ResidualMLP(), Ragged(), out=tmp_path / "r", steps=3, progress=False, buffer_size=64)


def test_unavailable_device_is_one_line_and_writes_nothing(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(EBMError, match="not available"):
        ebmlab.train(ResidualMLP(), TwoBlobs(), out=tmp_path / "r", device="cuda", progress=False)
    assert not (tmp_path / "r").exists()
    r = run_cli("train", "--data", "moons", "--out", str(tmp_path / "c"), "--device", "cuda:0", "--steps", "1")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not available" in r.stderr
    assert not (tmp_path / "c").exists()


def test_cli_refuses_custom_run_without_trust_and_accepts_it_with(tmp_path):
    _train(tmp_path / "r", steps=3)
    r = run_cli("sample", str(tmp_path / "r"), "--n", "4", "--out", str(tmp_path / "x.npy"), cwd=HERE)
    assert r.returncode == 2 and "--trust-code" in r.stderr and r.stderr.count("\n") == 1
    r = run_cli("sample", str(tmp_path / "r"), "--n", "4", "--out", str(tmp_path / "x.npy"), "--trust-code",
                "--threads", "1", cwd=HERE)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "x.npy").exists()


def test_threads_is_restored(tmp_path):
    before = torch.get_num_threads()
    ebmlab.train(ResidualMLP(), TwoBlobs(), steps=1, progress=False, threads=1, buffer_size=64)
    assert torch.get_num_threads() == before


def test_readme_bring_your_own_network_runs_verbatim(tmp_path, monkeypatch):
    """The README's "Bring your own network" code blocks, executed as written (in a scratch folder)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Bring your own network", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    scope: dict = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), scope)


def test_dataset_item_with_nan_is_named(tmp_path):
    class WithNaN(TwoBlobs):
        def __getitem__(self, i):
            row = self.x[i].copy()
            if i == 17:
                row[0] = float("nan")
            return row
    with pytest.raises(EBMError, match="item 17 contains NaN"):
        torch.manual_seed(0)
        ebmlab.train(ResidualMLP(), WithNaN(), out=tmp_path / "r", steps=30, progress=False, buffer_size=64,
                     batch_size=200)
    assert not (tmp_path / "r").exists()      # found while describing the data, before anything is written


def test_a_dataset_of_x_y_pairs_trains_a_conditional_model_without_a_labels_setting():
    """The labels of a Dataset's (x, y) items were usable only with labels="builtin" (a name for the
    digits' own labels); without it the conditional objective was refused with advice about --labels
    builtin / FILE.npy that fits no Dataset. Its items carry the labels: no setting is needed."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (120,), generator=g)
    x = torch.randn(120, 2, generator=g) + y[:, None].float()
    run = ebmlab.train("auto", TensorDataset(x, y), steps=3, progress=False, preset="conditional")
    assert run.status == "finished" and run.model.n_classes == 3
    with pytest.raises(ebmlab.EBMError, match="items must be"):       # items without a y: still one line
        ebmlab.train("auto", TensorDataset(x), steps=3, progress=False, preset="conditional")


def test_a_dataloader_left_at_its_default_batch_of_one_is_warned_about():
    """DataLoader(ds) has batch_size 1, which ebmlab takes as the user's choice: every step then trained on
    one point without a word. It still does (the loader's batch size is the user's), but says so."""
    data = TensorDataset(torch.randn(60, 2, generator=torch.Generator().manual_seed(0)))
    with pytest.warns(UserWarning, match="batch size is 1"):
        run = ebmlab.train("auto", DataLoader(data), steps=2, progress=False, buffer_size=64)
    assert run.step == 2
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # a chosen batch size: no warning
        ebmlab.train("auto", DataLoader(data, batch_size=16), steps=2, progress=False, buffer_size=64)
