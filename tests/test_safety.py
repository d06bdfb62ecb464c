"""Safe loading (issue 5, "What it must show" #2): a run directory holding a crafted malicious pickle
— one that creates a file when unpickled — is refused (or ignored) by ``ebmlab.load``,
``ebmlab sample`` and ``ebmlab train --resume``, and the file is never created. Pickled .npy data is
refused, and a run from another format version gets a clear error."""
from __future__ import annotations

import io
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import ebmlab
from ebmlab.cli import main as cli_main
from ebmlab.data.sources import load_data
from ebmlab.errors import EBMError
from ebmlab.training.api import start_run

from helpers_runs import TINY, tiny_data


class Evil:
    """Unpickling this creates ``marker`` (a stand-in for arbitrary code execution)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def payloads(marker: Path) -> dict[str, bytes]:
    plain = pickle.dumps({"weights": Evil(marker)})
    buf = io.BytesIO()
    torch.save({"state_dict": Evil(marker)}, buf)          # the torch.save zip format, pickle inside
    return {"pickle": plain, "torch-zip": buf.getvalue()}


def test_the_payloads_are_live(tmp_path):
    """Guard against a toothless test: unpickling each payload really creates the marker."""
    marker = tmp_path / "pwned"
    for kind, data in payloads(marker).items():
        if kind == "pickle":
            pickle.loads(data)
        else:
            torch.load(io.BytesIO(data), weights_only=False)
        assert marker.exists(), kind
        marker.unlink()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("safety")
    data = tiny_data(tmp / "x.npy")
    trainer, _ = start_run(str(data), tmp / "good", **{**TINY, "steps": 6})
    trainer.fit()
    return tmp / "good"


def _copy(run: Path, tmp: Path) -> Path:
    dst = tmp / "run"
    shutil.copytree(run, dst)
    return dst


def _all_entry_points(run: Path, tmp: Path, capsys) -> list[str]:
    """Open the run every way a user can; each must fail with one clean EBMError line."""
    msgs = []
    with pytest.raises(EBMError) as e:
        ebmlab.load(run)
    msgs.append(str(e.value))
    for argv in (["sample", str(run), "--n", "4", "--out", str(tmp / "s.npy")],
                 ["train", "--resume", str(run), "--quiet"],
                 ["eval", str(run)]):
        code = cli_main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, (argv, err)
        assert len(err) == 1 and err[0].startswith("ebmlab: error: "), (argv, err)
        msgs.append(err[0])
    assert not (tmp / "s.npy").exists()
    return msgs


@pytest.mark.parametrize("kind", ["pickle", "torch-zip"])
@pytest.mark.parametrize("target", ["model.safetensors", "train_state.safetensors", "state.json"])
def test_malicious_checkpoint_file_is_refused_and_never_unpickled(trained_run, tmp_path, capsys, kind, target):
    run = _copy(trained_run, tmp_path)
    marker = tmp_path / "pwned"
    ck = run / "checkpoints" / (run / "checkpoints" / "LATEST").read_text().strip()
    (ck / target).write_bytes(payloads(marker)[kind])
    msgs = _all_entry_points(run, tmp_path, capsys)
    want = "not a valid safetensors file" if target.endswith(".safetensors") else "not valid JSON"
    assert all(want in m for m in msgs), msgs
    assert not marker.exists(), "the malicious pickle was executed"


@pytest.mark.parametrize("target", ["config.json", "data.json"])
def test_malicious_run_header_is_refused(trained_run, tmp_path, capsys, target):
    run = _copy(trained_run, tmp_path)
    marker = tmp_path / "pwned"
    (run / target).write_bytes(payloads(marker)["pickle"])
    msgs = _all_entry_points(run, tmp_path, capsys)
    assert all("not valid JSON" in m for m in msgs), msgs
    assert not marker.exists()


def test_pickle_files_dropped_into_a_run_are_ignored(trained_run, tmp_path, capsys):
    """Files a peer tool would torch.load (model.pt, pytorch_model.bin, ...) are never opened."""
    run = _copy(trained_run, tmp_path)
    marker = tmp_path / "pwned"
    ck = run / "checkpoints" / (run / "checkpoints" / "LATEST").read_text().strip()
    for name in ("model.pt", "checkpoint.pt", "pytorch_model.bin", "buffer.pkl", "optimizer.pt"):
        for where in (run, ck):
            (where / name).write_bytes(payloads(marker)["torch-zip"])
    model = ebmlab.load(run)
    assert torch.isfinite(model.log_density(torch.zeros(3, 2))).all()
    assert cli_main(["sample", str(run), "--n", "4", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (4, 2)
    assert cli_main(["train", "--resume", str(run), "--steps", "9", "--quiet"]) == 0
    capsys.readouterr()
    assert not marker.exists()


def test_latest_pointer_cannot_escape_the_run(trained_run, tmp_path, capsys):
    run = _copy(trained_run, tmp_path)
    evil_ck = tmp_path / "elsewhere"
    shutil.copytree(run / "checkpoints" / (run / "checkpoints" / "LATEST").read_text().strip(), evil_ck)
    (run / "checkpoints" / "LATEST").write_text("../../elsewhere")
    msgs = _all_entry_points(run, tmp_path, capsys)
    assert all("damaged" in m for m in msgs), msgs


# ---------------------------------------------------------------------------- pickled .npy data
def test_pickled_npy_data_is_refused(tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.npy"
    np.save(evil, np.array([Evil(marker), Evil(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(EBMError, match="numeric .npy"):
        load_data(str(evil))
    out = tmp_path / "run"
    code = cli_main(["train", "--data", str(evil), "--out", str(out), "--steps", "3", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("ebmlab: error:") and "evil.npy" in err[0], err
    assert not out.exists(), "a run directory was created for refused data"
    assert not marker.exists()


# ---------------------------------------------------------------------------- format version
@pytest.mark.parametrize("where", ["state.json", "data.json"])
def test_format_version_mismatch_is_a_clear_error(trained_run, tmp_path, capsys, where):
    run = _copy(trained_run, tmp_path)
    path = run / "data.json" if where == "data.json" else \
        run / "checkpoints" / (run / "checkpoints" / "LATEST").read_text().strip() / "state.json"
    d = json.loads(path.read_text())
    d["format_version"] = 99
    path.write_text(json.dumps(d))
    msgs = _all_entry_points(run, tmp_path, capsys)
    for m in msgs:
        assert "format 99" in m and "this ebmlab reads format 1" in m, m


@pytest.mark.parametrize("meta", ["[1, 2]", '{"format_version": 1}',
                                  '{"format_version": 1, "step": 6, "skeleton": {"__tensor__": "nope"}}'])
def test_structurally_wrong_state_json_is_a_clear_error(trained_run, tmp_path, capsys, meta):
    run = _copy(trained_run, tmp_path)
    ck = run / "checkpoints" / (run / "checkpoints" / "LATEST").read_text().strip()
    (ck / "state.json").write_text(meta)
    msgs = _all_entry_points(run, tmp_path, capsys)
    assert all("damaged" in m or "format" in m for m in msgs), msgs


@pytest.mark.parametrize("content", ['[1, 2]', '{"format_version": 1}', '{"format_version": 1, "kind": "vector"}'])
def test_structurally_wrong_data_json_is_a_clear_error(tmp_path, content):
    from ebmlab.rundir.build import check_data_description
    with pytest.raises(EBMError, match="damaged"):
        check_data_description(json.loads(content), tmp_path / "data.json")
