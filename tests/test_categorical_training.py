"""Categorical data end to end: integer .npy with --categories K (one-hot inside), training with the
categorical GWG chains, samples back as integers in the data's shape, exact test NLL by enumerating
K^d in train and eval, the Python API on an array; and the bad inputs (one line, exit 2, nothing written)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

import ebmlab
from ebmlab.data.sources import load_data
from ebmlab.estimate.discrete import exact_categorical_nll
from ebmlab.models.categorical import from_one_hot, one_hot
from ebmlab.models.potts import Potts

from helpers_runs import fails_cleanly

SMALL = ["--steps", "30", "--batch-size", "64", "--buffer-size", "128", "--mcmc-steps", "4", "--hidden", "16",
         "--quiet", "--checkpoint-every", "15", "--plot-every", "1000"]


def ints(path: Path, n: int = 300, shape: tuple[int, ...] = (2, 3), k: int = 3, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, k, size=(n, *shape))
    x.reshape(n, -1)[:, 1] = x.reshape(n, -1)[:, 0]       # one copied site: a dependence to learn
    np.save(path, x)
    return path


def test_integer_npy_with_categories_is_one_hot_inside(tmp_path):
    ds = load_data(str(ints(tmp_path / "c.npy")), categories=3)
    assert ds.describe["categories"] == 3 and ds.describe["value_shape"] == [2, 3]
    assert ds.kind == "vector" and ds.train.shape[1] == 18
    assert torch.equal(ds.train.reshape(-1, 6, 3).sum(-1), torch.ones(ds.train.shape[0], 6))
    back = from_one_hot(torch.cat([ds.test, ds.train]), 3, (2, 3))
    assert sorted(map(tuple, back.reshape(300, -1).tolist())) == sorted(map(tuple, np.load(tmp_path / "c.npy").reshape(300, -1).tolist()))


def test_train_sample_eval_on_categorical_data(tmp_path, capsys):
    from ebmlab.cli import main
    run = tmp_path / "run"
    assert main(["train", "--data", str(ints(tmp_path / "c.npy")), "--categories", "3", "--out", str(run), *SMALL]) == 0
    cap = capsys.readouterr()
    assert "categorical data {0..2}^6" in cap.err and "sampler categorical-gwg" in cap.err
    assert "exact test NLL" in cap.out and "enumeration of 3^6" in cap.out
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["preset"] == "categorical" and cfg["categories"] == 3
    assert main(["sample", str(run), "--out", str(tmp_path / "s.npy"), "--n", "7", "--n-steps", "20"]) == 0
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (7, 2, 3) and s.dtype == np.int64 and s.min() >= 0 and s.max() <= 2
    assert main(["sample", str(run), "--out", str(tmp_path / "s.png"), "--n", "4", "--n-steps", "5"]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["log_z_method"] == "enumeration" and 0 < out["nll"] < 6 * np.log(3) + 1.0


def test_python_api_on_an_integer_array():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 4, size=(200, 3))
    res = ebmlab.train(None, x, categories=4, progress=False, steps=10, batch_size=32, buffer_size=64, mcmc_steps=2, hidden=8)
    assert res.model is not None
    onehot = one_hot(torch.as_tensor(x[:20]), 4)
    r = exact_categorical_nll(res.model, onehot, 4)
    assert np.isfinite(r["nll"]) and r["nll"] > 0


def test_exact_categorical_nll_of_a_potts_target_is_its_entropy():
    m = Potts.lattice(2, 2, 3, coupling=0.7)
    from ebmlab.models.categorical import categorical_states
    xs = categorical_states(4, 3)
    p = torch.softmax(m.log_density(xs).double(), 0)
    entropy = float(-(p * p.log()).sum())
    # the NLL of every state, weighted by its probability, is the entropy
    per_state = torch.tensor([exact_categorical_nll(m, xs[i:i + 1], 3)["nll"] for i in range(xs.shape[0])])
    assert abs(float((p * per_state.double()).sum()) - entropy) < 1e-6


def test_bad_categorical_inputs_fail_cleanly(tmp_path, capsys):
    x = np.zeros((20, 2, 3), dtype=np.int64)
    x[4, 1, 0] = 5
    np.save(tmp_path / "big.npy", x)
    y = np.zeros((20, 4), dtype=np.float32)
    y[2, 3] = 0.5
    np.save(tmp_path / "half.npy", y)
    z = np.zeros((20, 4), dtype=np.int64)
    z[7, 1] = -1
    np.save(tmp_path / "neg.npy", z)
    out = tmp_path / "run"
    line = fails_cleanly(["train", "--data", str(tmp_path / "big.npy"), "--categories", "3", "--out", str(out),
                          "--quiet"], capsys, "5 at index (4, 1, 0)")
    assert "0..2" in line and not out.exists()
    fails_cleanly(["train", "--data", str(tmp_path / "half.npy"), "--categories", "3", "--out", str(out), "--quiet"],
                  capsys, "0.5 at index (2, 3)")
    fails_cleanly(["train", "--data", str(tmp_path / "neg.npy"), "--categories", "3", "--out", str(out), "--quiet"],
                  capsys, "-1 at index (7, 1)")
    fails_cleanly(["train", "--data", str(tmp_path / "neg.npy"), "--categories", "1", "--out", str(out), "--quiet"],
                  capsys, "categories must be an integer >= 2")
    fails_cleanly(["train", "--data", str(ints(tmp_path / "c.npy")), "--categories", "3", "--sampler", "gwg",
                   "--out", str(out), "--quiet"], capsys, "categorical data needs a sampler of one-hot states")
    fails_cleanly(["train", "--data", str(tmp_path / "c.npy"), "--categories", "3", "--net", "rbm",
                   "--out", str(out), "--quiet"], capsys, "not categorical data")
    assert not out.exists()


def test_a_learned_potts_model_trains_on_categorical_data_and_reloads(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 3, size=(200, 4))
    x[:, 1] = x[:, 0]
    g = torch.Generator().manual_seed(0)
    # weights of scale 0.3: the guard bounds each update relative to the weights' size
    m = Potts(0.3 * torch.randn(12, 12, generator=g), 3, 0.3 * torch.randn(12, generator=g), learn=True)
    before = exact_categorical_nll(m, one_hot(torch.as_tensor(x), 3), 3)["nll"]
    res = ebmlab.train(m, x, tmp_path / "run", categories=3, progress=False, steps=60, batch_size=64,
                       buffer_size=128, mcmc_steps=4, lr=0.05)
    after = exact_categorical_nll(res.model, one_hot(torch.as_tensor(x), 3), 3)["nll"]
    assert after < before - 0.1                    # the copied site is learned: NLL drops well below log 3^4
    again = ebmlab.load(tmp_path / "run", network=Potts(torch.zeros(12, 12), 3, learn=True))
    assert abs(exact_categorical_nll(again, one_hot(torch.as_tensor(x), 3), 3)["nll"] - after) < 1e-5


def test_eval_of_a_categorical_space_too_large_to_enumerate(tmp_path, capsys):
    from ebmlab.cli import main
    rng = np.random.default_rng(3)
    np.save(tmp_path / "wide.npy", rng.integers(0, 3, size=(120, 16)))      # 3^16 = 4.3e7 > 2^24 states
    run = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "wide.npy"), "--categories", "3", "--out", str(run),
                 "--steps", "4", "--batch-size", "32", "--buffer-size", "64", "--mcmc-steps", "2", "--hidden", "8",
                 "--quiet", "--plot-every", "1000"]) == 0
    assert "exact test NLL" not in capsys.readouterr().out
    assert main(["eval", str(run), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "nll" not in out and "too many to enumerate" in out["log_z_note"] and "mmd2" in out
    fails_cleanly(["eval", str(run), "--log-z", "enumeration"], capsys, "3^16 = 4.3e+07 states")


def test_net_potts_on_the_command_line_trains_evaluates_and_resumes(tmp_path, capsys):
    from ebmlab.cli import main
    from helpers_runs import fails_cleanly
    data, run = ints(tmp_path / "c.npy"), tmp_path / "run"
    # lr 1e-2: the guard bounds an update relative to the weights' size, and they start at scale 0.01
    args = ["train", "--data", str(data), "--categories", "3", "--net", "potts", "--out", str(run), *SMALL,
            "--lr", "0.01", "--steps", "60"]
    assert main(args) == 0
    model = ebmlab.load(run)
    assert isinstance(model, Potts) and model.categories == 3 and model.J_raw.shape == (18, 18)
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # the copied site is learned: below the uniform model's log 3^6 = 6.59 nats
    assert out["log_z_method"] == "enumeration" and out["nll"] < 6 * np.log(3) - 0.1, out
    assert main(["train", "--resume", str(run), "--steps", "90", "--quiet"]) == 0
    assert isinstance(ebmlab.load(run), Potts)
    np.save(tmp_path / "f.npy", np.random.default_rng(0).normal(size=(50, 4)))
    fails_cleanly(["train", "--data", str(tmp_path / "f.npy"), "--net", "potts", "--out", str(tmp_path / "no"),
                   "--quiet"], capsys, "net 'potts' is the pairwise model of categorical data")
    assert not (tmp_path / "no").exists()
