"""Binary data end to end: detection, the built-in binarised digits, training with discrete samplers
(MLP + GWG, RBM + block Gibbs), samples back as 0/1 in the data's shape, exact test NLL by
enumeration in eval, resume; and the bad inputs of issue 14 (one line, exit 2, nothing written)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import ebmlab
from ebmlab.data.sources import load_data
from ebmlab.errors import EBMError
from ebmlab.estimate.discrete import exact_binary_nll
from ebmlab.models.rbm import RBM

from helpers_runs import fails_cleanly

SMALL = ["--steps", "30", "--batch-size", "64", "--buffer-size", "128", "--mcmc-steps", "4", "--hidden", "16",
         "--quiet", "--checkpoint-every", "15", "--plot-every", "1000"]


def bits(path: Path, n: int = 300, d: int = 10, seed: int = 0, shape: tuple[int, ...] | None = None) -> Path:
    rng = np.random.default_rng(seed)
    x = (rng.random((n, d)) < np.linspace(0.1, 0.9, d)).astype(np.float32)
    x[:, 1] = x[:, 0]                      # one correlated pair
    np.save(path, x.reshape(n, *shape) if shape else x)
    return path


def test_a_npy_of_zeros_and_ones_is_detected_as_binary(tmp_path):
    ds = load_data(str(bits(tmp_path / "b.npy")))
    assert ds.describe["binary"] is True and ds.kind == "vector" and ds.train.shape[1] == 10
    img = load_data(str(bits(tmp_path / "i.npy", d=16, shape=(1, 4, 4))))
    assert img.describe["image_shape"] == [1, 4, 4] and img.train.shape[1:] == (16,)
    cont = np.random.default_rng(0).random((50, 3)).astype(np.float32)
    np.save(tmp_path / "c.npy", cont)
    assert "binary" not in load_data(str(tmp_path / "c.npy")).describe


def test_builtin_binarised_digits():
    ds = load_data("digits-binary")
    small = load_data("digits-binary-4x4")
    assert ds.train.shape[1] == 64 and small.train.shape[1] == 16
    for d in (ds, small):
        assert set(torch.cat([d.train, d.test]).unique().tolist()) == {0.0, 1.0}
    assert small.describe["image_shape"] == [1, 4, 4]


def test_train_sample_eval_on_binary_vectors(tmp_path, capsys):
    from ebmlab.cli import main
    data = bits(tmp_path / "b.npy")
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *SMALL]) == 0
    cap = capsys.readouterr()
    assert "binary data {0,1}^10" in cap.err and "sampler gwg" in cap.err
    assert "exact test NLL" in cap.out
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["preset"] == "binary" and cfg["sampler"] == "gwg"
    assert main(["sample", str(run), "--out", str(tmp_path / "s.npy"), "--n", "16", "--n-steps", "20"]) == 0
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (16, 10) and set(np.unique(s)) <= {0.0, 1.0}
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["log_z_method"] == "enumeration" and np.isfinite(res["nll"]) and res["log_z_stderr"] == 0.0
    # the enumeration is the truth: equal to a brute-force sum over 2^10 states
    model = ebmlab.load(run)
    from ebmlab.models.binary import binary_states
    with torch.no_grad():
        lz = float(torch.logsumexp(model.log_density(binary_states(10)).double(), 0))
    assert abs(res["log_z"] - lz) < 1e-4


def test_rbm_trains_with_block_gibbs_and_resumes(tmp_path, capsys):
    from ebmlab.cli import main
    data = bits(tmp_path / "i.npy", d=16, shape=(1, 4, 4))
    run = tmp_path / "rbm"
    small = dict(steps=15, batch_size=64, buffer_size=128, hidden=16, checkpoint_every=15, plot_every=1000)
    first = ebmlab.train("rbm", str(data), out=run, progress=False, **small)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["net"] == "rbm" and cfg["sampler"] == "block-gibbs" and cfg["preset"] == "rbm" and first.step == 15
    resumed = ebmlab.resume(run, steps=30, progress=False)
    assert resumed.step == 30 and isinstance(resumed.model, RBM)
    assert resumed.model.hidden(torch.zeros(2, 16)).shape == (2, 16)
    assert main(["sample", str(run), "--out", str(tmp_path / "s.npy"), "--n", "8", "--n-steps", "5"]) == 0
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (8, 1, 4, 4) and set(np.unique(s)) <= {0.0, 1.0}      # images come back as images
    assert main(["sample", str(run), "--out", str(tmp_path / "s.png"), "--n", "8", "--n-steps", "5"]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0
    capsys.readouterr()


def test_python_api_trains_on_a_binary_array():
    x = (torch.rand(400, 8, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    run = ebmlab.train(None, x, progress=False, steps=20, batch_size=64, buffer_size=128, mcmc_steps=3, hidden=16)
    r = exact_binary_nll(run.model, x)
    assert np.isfinite(r["nll"]) and r["nll"] < 8 * np.log(2) + 0.5      # no worse than ~uniform bits


def test_bad_binary_inputs_fail_cleanly(tmp_path, capsys):
    x = np.zeros((20, 5), dtype=np.float32)
    x[3, 2] = 0.5
    np.save(tmp_path / "half.npy", x)
    cont = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    np.save(tmp_path / "cont.npy", cont)
    out = tmp_path / "run"
    line = fails_cleanly(["train", "--data", str(tmp_path / "half.npy"), "--binary", "--out", str(out), "--quiet"],
                         capsys, "0.5 at index (3, 2)")
    assert "declared binary" in line and not out.exists()
    fails_cleanly(["train", "--data", str(tmp_path / "cont.npy"), "--net", "rbm", "--out", str(out), "--quiet"],
                  capsys, "net 'rbm' models binary")
    fails_cleanly(["train", "--data", str(tmp_path / "cont.npy"), "--sampler", "gwg", "--out", str(out), "--quiet"],
                  capsys, "continuous")
    fails_cleanly(["train", "--data", str(bits(tmp_path / "b.npy")), "--sampler", "langevin", "--out", str(out),
                   "--quiet"], capsys, "binary data needs a sampler")
    fails_cleanly(["train", "--data", str(tmp_path / "b.npy"), "--sampler", "block-gibbs", "--out", str(out),
                   "--quiet"], capsys, "--net rbm")
    assert not out.exists()


def test_enumeration_too_large_is_refused_with_its_size(tmp_path, capsys):
    with pytest.raises(EBMError, match=r"d = 30: 2\^30"):
        exact_binary_nll(torch.nn.Identity(), torch.zeros(2, 30))   # never evaluated: refused first
    big = tmp_path / "big.npy"
    bits(big, n=300, d=30)
    run = tmp_path / "big"
    trained = ebmlab.train(None, str(big), out=run, progress=False, steps=2, batch_size=32, mcmc_steps=1, hidden=8)
    assert trained.step == 2
    fails_cleanly(["eval", str(run), "--log-z", "enumeration"], capsys, "2^30")


def test_zero_one_images_trained_as_continuous_keep_their_shape_in_eval_and_plot(tmp_path):
    """binary=False trains a .npy of 0/1 images as continuous images [1, 8, 8]; the run's held-out set
    (what eval, plot and the final picture of `ebmlab train` read) must come back the same way, not
    re-detected as binary and flattened to [64] (the model then fails on it)."""
    from ebmlab.tasks.open import open_run, test_data
    path = bits(tmp_path / "i.npy", d=64, shape=(1, 8, 8))
    ebmlab.train("auto", str(path), tmp_path / "run", binary=False, steps=2, batch_size=32, mcmc_steps=2,
                 checkpoint_every=2, plot_every=1000, progress=False)
    run = open_run(tmp_path / "run")
    assert run.data["kind"] == "image" and "binary" not in run.data
    x = test_data(run)
    assert tuple(x.shape[1:]) == (1, 8, 8)
    assert run.model.log_density(x[:4]).shape == (4,)
