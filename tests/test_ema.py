"""The exponential moving average of the weights (``ema_decay``, training/ema.py): its closed form, exact
resume and rollback with it, generation and evaluation through it, runs without it, and bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ebmlab.cli import main as cli_main
from ebmlab.errors import EBMError
from ebmlab.rundir.checkpoint import EMA_FILE, latest_checkpoint, load_checkpoint, load_ema
from ebmlab.rundir.config import RunConfig
from ebmlab.tasks.open import open_run
from ebmlab.tasks.sample import draw_samples
from ebmlab.training.api import resume_run, start_run
from ebmlab.training.ema import WeightEMA
from ebmlab.training.guard import DivergenceError

from helpers_runs import TINY, assert_runs_identical, fails_cleanly, fork_ranks, join_ranks, tiny_data


def _cfg(**kw):
    return {**TINY, "seed": 3, "ema_decay": 0.8, **kw}


# ---------------------------------------------------------------------------- the average itself
class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.register_buffer("count", torch.zeros(()))


def test_ema_matches_its_closed_form_after_k_steps():
    """ema_k = d^k θ0 + (1 - d) Σ_i d^(k-i) θ_i for parameters; buffers are the current values."""
    torch.manual_seed(0)
    m, d, k = _Tiny(), 0.9, 7
    ema = WeightEMA(m, d)
    thetas = [{n: p.detach().clone() for n, p in m.named_parameters()}]
    for i in range(1, k + 1):
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(torch.randn_like(p))
            m.count.fill_(i)
        thetas.append({n: p.detach().clone() for n, p in m.named_parameters()})
        ema.update()
    for n in thetas[0]:
        want = d ** k * thetas[0][n].double() + sum((1 - d) * d ** (k - i) * thetas[i][n].double()
                                                   for i in range(1, k + 1))
        torch.testing.assert_close(ema.state_dict()[n].double(), want, rtol=1e-6, atol=1e-6)
    assert float(ema.state_dict()["count"]) == k
    avg = ema.averaged_model()
    assert not avg.training and avg is not m
    torch.testing.assert_close(avg.lin.weight, ema.state_dict()["lin.weight"])


def test_ema_decay_zero_is_the_weights_and_bad_decays_are_refused():
    m = _Tiny()
    ema = WeightEMA(m, 0.0)
    with torch.no_grad():
        m.lin.weight.add_(1.0)
    ema.update()
    assert torch.equal(ema.state_dict()["lin.weight"], m.lin.weight.detach())
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError):
            WeightEMA(m, bad)


def test_trainer_keeps_the_closed_form_of_its_own_updates(tmp_path):
    """After each optimiser step of the trainer: the average of the weights each step produced."""
    data = tiny_data(tmp_path / "x.npy")
    trainer, model = start_run(str(data), None, **_cfg(ema_decay=0.7))
    d = 0.7
    thetas = [{n: p.detach().clone() for n, p in model.named_parameters()}]
    for _ in range(5):
        trainer.train_step()
        thetas.append({n: p.detach().clone() for n, p in model.named_parameters()})
    k = 5
    for n in thetas[0]:
        want = d ** k * thetas[0][n].double() + sum((1 - d) * d ** (k - i) * thetas[i][n].double()
                                                   for i in range(1, k + 1))
        torch.testing.assert_close(trainer.ema.state_dict()[n].double(), want, rtol=1e-5, atol=1e-6)
    # the chains trained on the raw weights; the model generation uses is a copy holding the average
    gen = trainer.sampling_model()
    assert gen is not trainer.model
    for n, p in gen.named_parameters():
        assert torch.equal(p, trainer.ema.state_dict()[n])


# ---------------------------------------------------------------------------- checkpoints and resume
class _StopAt:
    def __init__(self, step: int) -> None:
        self.step = step

    def on_checkpoint(self, trainer, step):
        if step == self.step:
            trainer.request_stop()


def test_every_checkpoint_holds_the_ema_and_resume_is_bit_exact(tmp_path):
    data = tiny_data(tmp_path / "x.npy")
    cfg = _cfg(steps=20)
    trainer, _ = start_run(str(data), tmp_path / "run", callbacks=[_StopAt(9)], **cfg)
    assert trainer.fit().status == "interrupted"
    trainer.run_lock.release()
    ck = latest_checkpoint(tmp_path / "run")
    assert ck.name == "step-0000009" and (ck / EMA_FILE).is_file()
    ema, raw = load_ema(ck), load_checkpoint(ck)[1]
    assert ema.keys() == raw.keys()
    assert all(torch.equal(v, trainer.ema.state_dict()[k].cpu()) for k, v in ema.items())
    # the raw weights (what training resumes from) differ from the average
    assert any(not torch.equal(raw[k], ema[k]) for k in raw)
    resumed = resume_run(tmp_path / "run")
    assert resumed.fit().status == "finished"
    resumed.run_lock.release()
    ref, _ = start_run(str(data), tmp_path / "ref", **cfg)
    ref.fit()
    ref.run_lock.release()
    assert_runs_identical(tmp_path / "ref", tmp_path / "run")       # weights, train state, EMA, metrics


def test_rollback_restores_the_ema_with_the_weights(tmp_path):
    data = tiny_data(tmp_path / "x.npy")
    trainer, _ = start_run(str(data), tmp_path / "run", **_cfg(steps=6, checkpoint_every=3,
                                                                 on_divergence="rollback"))
    trainer.fit()
    saved = {k: v.clone() for k, v in trainer.ema.state_dict().items()}
    trainer.train_step()                       # a step past the checkpoint moves the average
    assert not all(torch.equal(saved[k], v) for k, v in trainer.ema.state_dict().items())
    trainer._handle_divergence(DivergenceError("loss", 7, float("nan"), None))
    assert trainer.step == 6
    for k, v in trainer.ema.state_dict().items():
        assert torch.equal(v, saved[k]), k
    trainer.run_lock.release()


def test_rollback_before_the_first_checkpoint_restores_the_initial_ema(tmp_path):
    data = tiny_data(tmp_path / "x.npy")
    trainer, _ = start_run(str(data), tmp_path / "run", **_cfg(steps=3, checkpoint_every=100,
                                                                 on_divergence="rollback"))
    initial = {k: v.clone() for k, v in trainer.ema.state_dict().items()}
    real_step, calls, seen = trainer.train_step, [], []

    def step_diverging_once():
        calls.append(trainer.step)
        if len(calls) == 3:             # the first step after the rollback: the EMA is the step-0 one again
            seen.append(all(torch.equal(v, initial[k]) for k, v in trainer.ema.state_dict().items()))
        stats = real_step()             # the EMA moved with this update...
        if len(calls) == 2:
            raise DivergenceError("loss", 2, float("nan"), None)   # ...which the guard now refuses
        return stats
    trainer.train_step = step_diverging_once
    assert trainer.fit().status == "finished"
    assert calls[:3] == [0, 1, 0] and seen == [True]
    trainer.run_lock.release()


def test_a_checkpoint_without_its_ema_is_refused_on_resume(tmp_path):
    data = tiny_data(tmp_path / "x.npy")
    trainer, _ = start_run(str(data), tmp_path / "run", **_cfg(steps=3, checkpoint_every=3))
    trainer.fit()
    trainer.run_lock.release()
    (latest_checkpoint(tmp_path / "run") / EMA_FILE).unlink()
    with pytest.raises(EBMError, match="holds no EMA"):
        resume_run(tmp_path / "run", steps=6)


# ---------------------------------------------------------------------------- generation uses the EMA
def test_sample_eval_load_and_export_use_the_ema_weights(tmp_path, capsys):
    data = tiny_data(tmp_path / "x.npy")
    run = tmp_path / "run"
    (tmp_path / "t.toml").write_text("hidden = 16\ndepth = 2\n")
    assert cli_main(["train", "--data", str(data), "--out", str(run), "--steps", "12", "--config",
                     str(tmp_path / "t.toml"), "--batch-size", "64", "--buffer-size", "256", "--mcmc-steps", "5",
                     "--checkpoint-every", "6", "--ema-decay", "0.8", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "EMA of the weights (decay 0.8)" in out
    ck = latest_checkpoint(run)
    ema, raw = load_ema(ck), load_checkpoint(ck)[1]
    import ebmlab
    loaded = ebmlab.load(run)
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, ema[k]), k
    assert any(not torch.equal(ema[k], raw[k]) for k in raw)
    # `ebmlab sample` draws from the averaged weights: the same samples as the EMA model, not the raw one
    assert cli_main(["sample", str(run), "--n", "50", "--out", str(tmp_path / "s.npy"), "--seed", "4"]) == 0
    capsys.readouterr()
    got = np.load(tmp_path / "s.npy")
    r = open_run(run)
    x_ema, _, _ = draw_samples(r, 50, seed=4)
    r.model.load_state_dict(raw)
    x_raw, _, _ = draw_samples(r, 50, seed=4)
    from ebmlab.tasks.sample import to_data_scale
    np.testing.assert_allclose(got, to_data_scale(r, x_ema).numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(got, to_data_scale(r, x_raw).numpy())
    # export writes the averaged weights and says so
    assert cli_main(["export", str(run), "--out", str(tmp_path / "m.safetensors")]) == 0
    capsys.readouterr()
    card = json.loads((tmp_path / "m.json").read_text())
    assert "moving average" in card["weights_are"]
    for k, v in ebmlab.load(tmp_path / "m.safetensors").state_dict().items():
        assert torch.equal(v, ema[k]), k


def test_runs_without_ema_and_old_config_files_load_and_sample(tmp_path, capsys):
    data = tiny_data(tmp_path / "x.npy")
    trainer, _ = start_run(str(data), tmp_path / "run", **{**TINY, "steps": 6, "checkpoint_every": 3})
    assert trainer.ema is None and trainer.sampling_model() is trainer.model
    trainer.fit()
    trainer.run_lock.release()
    cfg_file = tmp_path / "run" / "config.json"
    old = json.loads(cfg_file.read_text())
    del old["ema_decay"]                       # a config.json written before the key existed
    cfg_file.write_text(json.dumps(old))
    assert RunConfig.from_dict(old).ema_decay is None
    assert not (latest_checkpoint(tmp_path / "run") / EMA_FILE).exists()
    assert cli_main(["sample", str(tmp_path / "run"), "--n", "10", "--out", str(tmp_path / "s.npy")]) == 0
    capsys.readouterr()
    assert np.isfinite(np.load(tmp_path / "s.npy")).all()
    resumed = resume_run(tmp_path / "run", steps=9)
    assert resumed.fit().step == 9
    resumed.run_lock.release()


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", ["1", "1.5", "-0.1", "nan"])
def test_bad_ema_decay_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, bad):
    data = tiny_data(tmp_path / "x.npy")
    line = fails_cleanly(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--ema-decay", bad,
                          "--quiet"], capsys, "ema_decay")
    assert "[0, 1)" in line
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------- several processes
def test_two_processes_keep_the_same_ema_on_every_rank(tmp_path):
    """DDP: the weights are identical on every rank after each step, so is every rank's average; rank 0's
    checkpoint holds it."""
    data = tiny_data(tmp_path / "x.npy")

    def body(rank: int) -> None:
        from safetensors.torch import save_file
        from ebmlab.training import distributed
        trainer = start_run(str(data), tmp_path / "run", **_cfg(steps=8, checkpoint_every=4))[0]
        assert trainer.fit().status == "finished"
        save_file({k: v.contiguous() for k, v in trainer.ema.state_dict().items()}, str(tmp_path / f"ema{rank}"))
        distributed.shutdown()
    join_ranks(fork_ranks(body, tmp_path), tmp_path)
    from safetensors.torch import load_file
    e0, e1 = load_file(str(tmp_path / "ema0")), load_file(str(tmp_path / "ema1"))
    saved = load_ema(latest_checkpoint(tmp_path / "run"))
    assert e0.keys() == e1.keys() == saved.keys()
    for k in e0:
        assert torch.equal(e0[k], e1[k]) and torch.equal(e0[k], saved[k]), k


def test_the_digits_cd_preset_samples_with_an_ema_and_its_other_recipes_do_not():
    """Measured for cd on the digits only (presets.py: the probe table); decay 0 turns it off in effect."""
    from ebmlab.training.presets import resolve_config
    assert resolve_config("digits", {"preset": "digits"}).ema_decay == 0.995
    assert resolve_config("digits", {"preset": "digits", "ema_decay": 0.999}).ema_decay == 0.999   # the user's wins
    for other in ({"objective": "dsm"}, {"objective": "drl"}):
        assert resolve_config("digits", {"preset": "digits", **other}).ema_decay is None
    assert resolve_config("digits", {"preset": "conditional", "labels": "builtin"}).ema_decay is None
    assert resolve_config("moons", {}).ema_decay is None
