"""`sample` and `score` never write over the data a run was trained on, nor over their own input file.

Before: `ebmlab sample RUN --out data.npy` replaced the run's 500 training points with 10 samples, silently (the
run could not even resume after it: its data's fingerprint changed), and a sample PNG written into an image
folder joined the training images; `score --data x.npy --out x.npy` replaced the points it scored.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ebmlab.cli import main as cli_main

from helpers_runs import tiny_data


def fails_cleanly(argv: list[str], capsys) -> str:
    capsys.readouterr()
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ebmlab: error: "), err
    return err[0]


@pytest.fixture(scope="module")
def trained_on_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    data = tiny_data(root / "pts.npy")
    assert cli_main(["train", "--data", str(data), "--out", str(root / "run"), "--steps", "2",
                     "--mcmc-steps", "2", "--quiet"]) == 0
    return root, data


def test_sample_refuses_the_run_s_training_file(trained_on_file, capsys, monkeypatch):
    root, data = trained_on_file
    before = data.read_bytes()
    monkeypatch.chdir(root)
    line = fails_cleanly(["sample", "run", "--out", "pts.npy", "--n", "4"], capsys)
    assert "was trained on" in line and "another file name" in line
    assert data.read_bytes() == before
    # another name next to it is written as before
    assert cli_main(["sample", "run", "--out", "samples.npy", "--n", "4"]) == 0
    assert np.load(root / "samples.npy").shape == (4, 2)


def test_score_refuses_the_training_file_and_its_own_input(trained_on_file, capsys, tmp_path):
    root, data = trained_on_file
    before = data.read_bytes()
    line = fails_cleanly(["score", str(root / "run"), "--data", str(data), "--out", str(data)], capsys)
    assert "was trained on" in line and data.read_bytes() == before
    points = tmp_path / "q.npy"
    np.save(points, np.zeros((3, 2), np.float32))
    line = fails_cleanly(["score", str(root / "run"), "--data", str(points), "--out", str(tmp_path / "." / "q.npy")],
                         capsys)
    assert "input file" in line
    assert np.load(points).shape == (3, 2)


def test_sample_refuses_a_png_inside_the_training_image_folder(tmp_path, capsys):
    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), "L").save(folder / f"{i}.png")
    assert cli_main(["train", "--data", str(folder), "--out", str(tmp_path / "run"), "--steps", "2",
                     "--mcmc-steps", "2", "--batch-size", "4", "--image-size", "8", "--quiet"]) == 0
    names = sorted(p.name for p in folder.iterdir())
    line = fails_cleanly(["sample", str(tmp_path / "run"), "--out", str(folder / "new.png"), "--n", "4"], capsys)
    assert "lies in the data" in line
    assert sorted(p.name for p in folder.iterdir()) == names
