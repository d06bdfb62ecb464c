"""Audit of session 15/16's features (score, input_gain, uint8 .npy scaling, unread-knob warnings, closed pipes):
each test failed before its fix."""
from __future__ import annotations

import numpy as np
import pytest

from ebmlab.cli import main as cli_main

from helpers_runs import fails_cleanly, tiny_data


def test_score_and_sample_refuse_the_run_s_labels_file(tmp_path, capsys):
    """Before: `score RUN --out labels.npy` of a conditional run replaced the labels it was trained on (it would not
    resume: 'labels must be integers')."""
    data = tiny_data(tmp_path / "pts.npy")
    labels = tmp_path / "lab.npy"
    np.save(labels, np.arange(200) % 2)
    assert cli_main(["train", "--data", str(data), "--labels", str(labels), "--objective", "conditional",
                     "--steps", "2", "--mcmc-steps", "2", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    before = labels.read_bytes()
    line = fails_cleanly(["score", str(tmp_path / "run"), "--data", str(data), "--out", str(labels)], capsys)
    assert "labels" in line and "was trained on" in line
    line = fails_cleanly(["sample", str(tmp_path / "run"), "--n", "3", "--out", str(labels)], capsys)
    assert "labels" in line and "was trained on" in line
    assert labels.read_bytes() == before


def test_a_composite_protects_every_component_s_data(tmp_path, capsys):
    """Before: a composite's run.data held only its first component's source, so `score COMPOSITE --out b.npy`
    replaced the second component's training file."""
    for name, seed in (("a", 0), ("b", 1)):
        tiny_data(tmp_path / f"{name}.npy", seed=seed)
        assert cli_main(["train", "--data", str(tmp_path / f"{name}.npy"), "--steps", "2", "--mcmc-steps", "2",
                         "--out", str(tmp_path / f"run_{name}"), "--quiet"]) == 0
    assert cli_main(["compose", str(tmp_path / "run_a"), str(tmp_path / "run_b"), "--op", "and",
                     "--out", str(tmp_path / "both")]) == 0
    capsys.readouterr()
    before = (tmp_path / "b.npy").read_bytes()
    line = fails_cleanly(["score", str(tmp_path / "both"), "--data", str(tmp_path / "a.npy"),
                          "--out", str(tmp_path / "b.npy")], capsys)
    assert "run_b" in line and "was trained on" in line
    line = fails_cleanly(["sample", str(tmp_path / "both"), "--n", "3", "--out", str(tmp_path / "b.npy")], capsys)
    assert "was trained on" in line
    assert (tmp_path / "b.npy").read_bytes() == before
    assert cli_main(["score", str(tmp_path / "both"), "--data", str(tmp_path / "a.npy"),
                     "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (200,)


def test_score_takes_one_categorical_point_and_names_its_option(tmp_path, capsys):
    """Before: a categorical run's score refused a file of one point ('N >= 2', training's rule for a test split) and
    hid every other problem of such a file behind that message; its errors named no --data."""
    g = np.random.default_rng(0)
    np.save(tmp_path / "cat.npy", g.integers(0, 3, (100, 2)))
    assert cli_main(["train", "--data", str(tmp_path / "cat.npy"), "--categories", "3", "--steps", "2",
                     "--mcmc-steps", "2", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    np.save(tmp_path / "one.npy", np.array([[0, 2]]))
    assert cli_main(["score", str(tmp_path / "run"), "--data", str(tmp_path / "one.npy"), "--out",
                     str(tmp_path / "s.npy"), "--log-p"]) == 0
    assert np.load(tmp_path / "s.npy").shape == (1,) and np.isfinite(np.load(tmp_path / "s.npy")).all()
    np.save(tmp_path / "bad.npy", np.array([[0, 5]]))
    capsys.readouterr()
    line = fails_cleanly(["score", str(tmp_path / "run"), "--data", str(tmp_path / "bad.npy"), "--out",
                          str(tmp_path / "t.npy")], capsys)
    assert "--data" in line and "0..2: 5" in line
    np.save(tmp_path / "none.npy", np.zeros((0, 2), np.int64))
    line = fails_cleanly(["score", str(tmp_path / "run"), "--data", str(tmp_path / "none.npy"), "--out",
                          str(tmp_path / "t.npy")], capsys)
    assert "--data" in line and "holds no points" in line
    assert not (tmp_path / "t.npy").exists()
