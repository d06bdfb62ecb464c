"""Sharing runs: a composite stores its components relative to itself, so it can be copied with them."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import ebmlab
from ebmlab.cli import main
from ebmlab.training.api import release_run, start_run
from tests.helpers_runs import TINY, tiny_data


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("share")
    data = tiny_data(root / "d.npy")            # the data stay where they are (config.json names them)
    for name, seed in (("a", 0), ("b", 1)):
        trainer, _ = start_run(str(data), root / "runs" / name, seed=seed, tensorboard=False, **{**TINY, "steps": 6})
        trainer.fit()
        release_run(trainer)
    return root


def test_a_composite_copied_with_its_components_samples_and_evaluates(two_runs, tmp_path, capsys):
    runs = tmp_path / "runs"
    shutil.copytree(two_runs / "runs", runs)
    assert main(["compose", str(runs / "a"), str(runs / "b"), "--op", "and", "--out", str(runs / "ab")]) == 0
    spec = json.loads((runs / "ab" / "data.json").read_text())["spec"]
    assert spec["components"] == ["../a", "../b"]
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    want = ebmlab.load(runs / "ab").log_density(x)

    moved = tmp_path / "elsewhere" / "shared"
    shutil.move(str(runs), str(moved))                 # the whole folder moves: the old paths are gone
    assert not runs.exists()
    torch.testing.assert_close(ebmlab.load(moved / "ab").log_density(x), want)
    capsys.readouterr()
    assert main(["sample", str(moved / "ab"), "--n", "8", "--n-steps", "5", "--out", str(tmp_path / "s.npy"),
                 "--json"]) == 0
    assert np.load(tmp_path / "s.npy").shape == (8, 2)
    assert json.loads(capsys.readouterr().out)["n"] == 8
    assert main(["eval", str(moved / "ab"), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    # its own log Z; the scores on its first component's test set say so; no true NLL of that component
    assert res["n_test"] > 0 and "log_z" in res and "true_nll" not in res and "nll_gap" not in res
    assert "first component's test set" in res["composite_note"]


def test_a_component_outside_the_parent_tree_is_stored_absolute_and_a_missing_one_is_named(two_runs, tmp_path, capsys):
    a = two_runs / "runs" / "a"
    out = tmp_path / "mine" / "a-cold"
    assert main(["compose", str(a), "--temperature", "2", "--out", str(out)]) == 0
    assert json.loads((out / "data.json").read_text())["spec"]["components"] == [str(a.resolve())]
    # an old-style composite (absolute paths) next to a copy of its component: still loads
    local = tmp_path / "mine" / "a"
    shutil.copytree(a, local)
    assert main(["compose", str(local), "--temperature", "2", "--out", str(tmp_path / "mine" / "rel")]) == 0
    assert json.loads((tmp_path / "mine" / "rel" / "data.json").read_text())["spec"]["components"] == ["../a"]
    shutil.rmtree(local)                            # the composite's component is gone
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "mine" / "rel")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "component run '../a' not found" in err and str(local) in err
    torch.testing.assert_close(ebmlab.load(out).log_density(torch.zeros(3, 2)),
                               ebmlab.load(a).log_density(torch.zeros(3, 2)) / 2)


def test_export_round_trip_gives_the_same_log_density_and_a_card(two_runs, tmp_path, capsys):
    run = two_runs / "runs" / "a"
    out = tmp_path / "share" / "model.safetensors"
    assert main(["export", str(run), "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res == {"weights": str(out), "card": str(tmp_path / "share" / "model.json")}
    card = json.loads((tmp_path / "share" / "model.json").read_text())
    assert card["weights"] == "model.safetensors" and card["step"] == 6
    assert card["config"]["hidden"] == 16 and card["data"]["kind"] == "vector"
    assert card["metrics"]["step"] == 6 and "loss" in card["metrics"]
    assert "ebmlab.load('model.safetensors')" in card["how_to_load"]
    assert card["data_description"].startswith("vector data (2) from ")
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(1))
    want = ebmlab.load(run).log_density(x)
    for path in (out, tmp_path / "share" / "model.json"):
        got = ebmlab.load(path).log_density(x)
        assert torch.equal(got, want)
    # no training state travels: the file is the weights alone (and smaller than a checkpoint folder)
    ck = run / "checkpoints" / (run / "checkpoints" / "LATEST").read_text().strip()
    assert out.stat().st_size < sum(f.stat().st_size for f in ck.iterdir())
    # sample takes the exported file like a run directory
    assert main(["sample", str(out), "--n", "4", "--n-steps", "3", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (4, 2)
    capsys.readouterr()
    assert main(["export", str(run), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export", str(run), "--out", str(tmp_path / "m.pt")]) == 2
    assert "must end in .safetensors" in capsys.readouterr().err
