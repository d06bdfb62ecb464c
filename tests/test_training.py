"""Training end to end on a built-in 2-D set: the exact NLL falls; the CLI's happy path works."""
import json

import numpy as np
import pytest
import torch

import ebmlab
from ebmlab.cli import main
from ebmlab.estimate.nll import exact_nll
from ebmlab.training.api import start_run
from ebmlab.training.losses import cd_loss

TINY = dict(steps=120, batch_size=128, buffer_size=1000, mcmc_steps=10, hidden=32, depth=2,
            log_every=20, checkpoint_every=60, plot_every=1000, n_test=1000)


def test_cd_loss_sign_pushes_data_up_and_samples_down():
    f_pos = torch.zeros(4, requires_grad=True)
    f_neg = torch.zeros(4, requires_grad=True)
    loss, stats = cd_loss(f_pos, f_neg, l2=0.0)
    loss.backward()
    assert (f_pos.grad < 0).all() and (f_neg.grad > 0).all()   # descent raises f(x+), lowers f(x-)
    assert float(stats["gap"]) == 0.0


def test_exact_nll_falls_during_a_short_run(tmp_path):
    trainer, model = start_run("eight-gaussians", tmp_path / "run", **TINY)
    before = exact_nll(model, trainer.dataset.test, points_per_dim=150)["nll"]
    trainer.fit()
    after = exact_nll(model, trainer.dataset.test, points_per_dim=150)["nll"]
    # the estimate's own noise is ~ sd(f)/sqrt(1000) ~ 0.03 nats; a real fall is many times that
    assert after < before - 0.2, (before, after)
    rows = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(20, 121, 20))
    loaded = ebmlab.load(tmp_path / "run")
    x = trainer.dataset.test[:10]
    torch.testing.assert_close(loaded.log_density(x), model.log_density(x))


def test_cli_train_sample_eval_plot_compose(tmp_path, capsys):
    run = tmp_path / "m"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items() if k not in ("hidden", "depth", "n_test")]
    assert main(["train", "--data", "moons", "--out", str(run), "--quiet", *flags, "--steps", "40"]) == 0
    assert "exact test NLL" in capsys.readouterr().out
    assert (run / "plot.png").stat().st_size > 0
    assert main(["sample", str(run), "--n", "50", "--out", str(tmp_path / "s.npy"), "--n-steps", "20"]) == 0
    capsys.readouterr()
    s = np.load(tmp_path / "s.npy")
    bounds = np.array(json.loads((run / "data.json").read_text())["bounds"])
    assert s.shape == (50, 2) and (s >= bounds[:, 0]).all() and (s <= bounds[:, 1]).all()
    assert main(["eval", str(run), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert np.isfinite(res["nll"]) and res["true_nll"] < res["nll"] + 0.5
    assert main(["compose", str(run), str(run), "--op", "and", "--weights", "1,1", "--out", str(tmp_path / "c")]) == 0
    composite = ebmlab.load(tmp_path / "c")
    x = torch.tensor(s[:5])
    torch.testing.assert_close(composite.log_density(x), 2 * ebmlab.load(run).log_density(x))
    assert main(["sample", str(tmp_path / "c"), "--n", "10", "--out", str(tmp_path / "c.npy"), "--n-steps", "5"]) == 0


def test_existing_run_directory_is_not_overwritten_without_force(tmp_path, capsys):
    run = tmp_path / "m"
    run.mkdir()
    (run / "config.json").write_text("{}")
    assert main(["train", "--data", "moons", "--out", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists" in err[0]
    assert (run / "config.json").read_text() == "{}"
