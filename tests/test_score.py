"""``ebmlab score``: f(x) (or exact log p(x)) of a trained model at the user's points, in file order."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ebmlab.cli import main
from ebmlab.data.scaling import Scaling
from helpers_runs import fails_cleanly


@pytest.fixture(scope="module")
def run_2d(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("score2d")
    assert main(["train", "--data", "moons", "--steps", "20", "--out", str(tmp / "r"), "--quiet"]) == 0
    return tmp / "r"


def _scores(capsys, argv):
    assert main(["score", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_f_is_the_model_s_log_density_in_file_order(run_2d, tmp_path, capsys):
    import ebmlab
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, -0.3], [50.0, 50.0]], dtype=np.float32)
    np.save(tmp_path / "p.npy", x)
    res = _scores(capsys, [str(run_2d), "--data", str(tmp_path / "p.npy"), "--out", str(tmp_path / "s.npy")])
    got = np.load(tmp_path / "s.npy")
    assert got.dtype == np.float64 and got.shape == (4,)
    with torch.no_grad():
        want = ebmlab.load(run_2d).log_density(torch.from_numpy(x)).double().numpy()
    assert np.array_equal(got, want)
    assert got[3] == -np.inf and res["outside_support"] == 1 and res["values"] == "f" and "log_z" not in res
    # the same values as a .csv under a header naming them
    _scores(capsys, [str(run_2d), "--data", str(tmp_path / "p.npy"), "--out", str(tmp_path / "s.csv")])
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "f" and np.array_equal(np.array([float(v) for v in lines[1:]]), want)


def test_log_p_agrees_with_eval_s_exact_nll(run_2d, tmp_path, capsys):
    """mean(-log p) over the run's held-out points is eval's exact NLL (the same quadrature log Z)."""
    from ebmlab.tasks.open import open_run, test_data
    np.save(tmp_path / "test.npy", test_data(open_run(run_2d)).numpy())
    res = _scores(capsys, [str(run_2d), "--data", str(tmp_path / "test.npy"), "--out", str(tmp_path / "lp.npy"),
                           "--log-p"])
    assert main(["eval", str(run_2d), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    log_p = np.load(tmp_path / "lp.npy")
    assert res["values"] == "log_p" and res["log_z_method"] == "quadrature"
    assert res["log_z"] == pytest.approx(ev["log_z"], abs=1e-9)
    assert float(-log_p.mean()) == pytest.approx(ev["nll"], abs=1e-6)


def test_image_points_are_read_in_the_run_s_scale(tmp_path, capsys):
    import ebmlab
    x = np.random.default_rng(0).integers(0, 256, (24, 1, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    ebmlab.train("auto", str(tmp_path / "x.npy"), out=tmp_path / "img", steps=2, mcmc_steps=2, batch_size=8,
                 progress=False)
    _scores(capsys, [str(tmp_path / "img"), "--data", str(tmp_path / "x.npy"), "--out", str(tmp_path / "s.npy")])
    with torch.no_grad():
        want = ebmlab.load(tmp_path / "img").log_density(Scaling.from_range(0, 255).to_model(torch.from_numpy(x)))
    assert np.allclose(np.load(tmp_path / "s.npy"), want.double().numpy(), rtol=0, atol=1e-6)
    # images have no exact log Z: one line naming the alternatives, nothing written
    line = fails_cleanly(["score", str(tmp_path / "img"), "--data", str(tmp_path / "x.npy"), "--out",
                          str(tmp_path / "lp.npy"), "--log-p"], capsys)
    assert "no exact log Z for images" in line and "--log-z ais" in line
    assert not (tmp_path / "lp.npy").exists()


def test_binary_log_p_sums_to_one_over_every_state(tmp_path, capsys):
    """A 4-bit binary run: exp(log p) over all 16 states sums to 1 (log Z by enumeration)."""
    import itertools
    import ebmlab
    bits = np.random.default_rng(1).integers(0, 2, (200, 4)).astype(np.float32)
    np.save(tmp_path / "b.npy", bits)
    ebmlab.train("auto", str(tmp_path / "b.npy"), out=tmp_path / "bin", steps=3, progress=False)
    states = np.array(list(itertools.product([0.0, 1.0], repeat=4)), dtype=np.float32)
    np.save(tmp_path / "all.npy", states)
    res = _scores(capsys, [str(tmp_path / "bin"), "--data", str(tmp_path / "all.npy"), "--out",
                           str(tmp_path / "lp.npy"), "--log-p"])
    assert res["log_z_method"] == "enumeration"
    assert np.exp(np.load(tmp_path / "lp.npy")).sum() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("case, words", [
    ("shape", "has shape (3, 3) but the model takes points of shape (2,)"),
    ("suffix", "--out must end in .npy or .csv"),
    ("nan", "contains NaN or infinite values"),
])
def test_bad_input_is_one_line_and_writes_nothing(run_2d, tmp_path, capsys, case, words):
    pts = {"shape": np.zeros((3, 3)), "nan": np.array([[0.0, np.nan]])}.get(case, np.zeros((3, 2)))
    np.save(tmp_path / "p.npy", pts)
    out = tmp_path / ("s.txt" if case == "suffix" else "s.npy")
    line = fails_cleanly(["score", str(run_2d), "--data", str(tmp_path / "p.npy"), "--out", str(out)], capsys)
    assert words in line
    assert case == "suffix" or "--data" in line          # a bad file is named by its option
    assert not out.exists()
