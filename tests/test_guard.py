"""Divergence guard (issue 5, "What it must show" #3): injected divergence is caught within a few
steps with a diagnosis naming the quantity and the step, never reaches a checkpoint, and
``on_divergence="rollback"`` recovers a run that diverges once, with bounded retries."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from ebmlab.rundir.build import build_model
from ebmlab.cli import main as cli_main
from ebmlab.rundir.checkpoint import latest_checkpoint
from ebmlab.rundir.config import RunConfig
from ebmlab.rundir.header import write_run_header
from ebmlab.data.sources import load_data
from ebmlab.models.energy import EnergyModel
from ebmlab.training.api import describe_data, resume_run
from ebmlab.training.guard import REMEDIES, DivergenceError, check_step
from ebmlab.training.trainer import Trainer

from helpers_runs import TINY, all_checkpoint_tensors_finite, events, final_checkpoint, tiny_data


# ---------------------------------------------------------------------------- check_step itself
def test_check_step_names_first_nonfinite_quantity_and_step():
    with pytest.raises(DivergenceError) as e:
        check_step(7, {"f_pos": torch.tensor(1.0), "loss": torch.tensor(float("nan"))}, {})
    assert (e.value.quantity, e.value.step) == ("loss", 7) and math.isnan(e.value.value)
    msg = str(e.value)
    assert "step 7" in msg and "loss" in msg and "not finite" in msg and REMEDIES in msg and "\n" not in msg


def test_check_step_limits_and_passes_good_values():
    check_step(1, {"f_pos": torch.tensor(-5.0), "grad_norm": torch.tensor(3.0)}, {"f_pos": 10.0, "grad_norm": 10.0})
    with pytest.raises(DivergenceError) as e:
        check_step(3, {"f_pos": torch.tensor(-50.0)}, {"f_pos": 10.0})
    assert e.value.quantity == "f_pos" and "exceeds the limit" in str(e.value)
    with pytest.raises(DivergenceError):
        check_step(3, {"grad_norm": torch.tensor(float("inf"))}, {})


# ---------------------------------------------------------------------------- an absurd learning rate
def test_absurd_learning_rate_is_caught_within_a_few_steps(tmp_path, capsys):
    data = tiny_data(tmp_path / "x.npy")
    (tmp_path / "t.toml").write_text("hidden = 16\ndepth = 2\n")
    out = tmp_path / "run"
    code = cli_main(["train", "--data", str(data), "--out", str(out), "--config", str(tmp_path / "t.toml"),
                     "--lr", "1e6", "--steps", "40", "--batch-size", "64", "--buffer-size", "256",
                     "--mcmc-steps", "5", "--checkpoint-every", "1", "--log-every", "1", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("ebmlab: error: training diverged at step "), err
    step = int(err[0].split("at step ")[1].split(":")[0])
    assert step <= 5, err[0]
    assert "lower the learning rate" in err[0]
    ev = events(out)
    assert ev[-1]["event"] == "diverged" and ev[-1]["step"] == step and ev[-1]["quantity"] in err[0]
    assert all_checkpoint_tensors_finite(out), "a non-finite value reached a checkpoint"
    if latest_checkpoint(out) is not None:            # lr 1e6 now fails at step 1, before any checkpoint
        s, _, _ = final_checkpoint(out)
        assert s < step                                # the bad step was never checkpointed


# ---------------------------------------------------------------------------- a network that goes bad
class Poisoned(nn.Module):
    """Wraps a network; from training step ``bad_from`` on (or only at ``once_at``) f is inf / NaN."""

    def __init__(self, base: nn.Module, bad_from: int | None = None, once_at: int | None = None,
                 value: float = float("inf")) -> None:
        super().__init__()
        self.base, self.bad_from, self.once_at, self.value = base, bad_from, once_at, value
        self.step = 0          # set by the test before every training step
        self.fired = 0

    def forward(self, x):
        out = self.base(x)
        bad = (self.bad_from is not None and self.step >= self.bad_from) or \
              (self.once_at is not None and self.step == self.once_at and self.fired == 0)
        if bad and self.training:
            self.hits = getattr(self, "hits", 0) + 1
            assert self.hits < 100, "the trainer keeps feeding a diverged network (unbounded retries?)"
            return out + self.value
        return out


def _trainer(tmp: Path, net_kw: dict, **cfg_kw) -> tuple[Trainer, Poisoned]:
    data = tiny_data(tmp / "x.npy")
    config = RunConfig.from_dict({**TINY, "data": str(data), "seed": 1, **cfg_kw})
    dataset = load_data(str(data), config.seed, config.n_test, config.test_fraction)
    desc = describe_data(dataset, config)
    torch.manual_seed(config.seed)
    base = build_model(config, desc)
    poisoned = Poisoned(base.net, **net_kw)
    model = EnergyModel(poisoned, bounds=desc["bounds"])
    run_dir = tmp / "run"
    run_dir.mkdir()
    write_run_header(run_dir, config, desc)
    trainer = Trainer(config, dataset, desc, model, run_dir)
    real_step = trainer.train_step

    def failing_step():
        poisoned.step = trainer.step + 1         # the step being computed
        try:
            return real_step()
        except DivergenceError:
            if poisoned.once_at is not None and poisoned.step == poisoned.once_at:
                poisoned.fired += 1             # diverge exactly once
            raise
    trainer.train_step = failing_step
    return trainer, poisoned


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_network_going_bad_after_step_n_is_caught_at_n_plus_1(tmp_path, value):
    n = 7
    trainer, _ = _trainer(tmp_path, {"bad_from": n + 1, "value": value})
    with pytest.raises(DivergenceError) as e:
        trainer.fit()
    assert e.value.step == n + 1, str(e.value)
    assert e.value.quantity in ("f_pos", "f_neg", "loss", "mcmc_grad_norm")
    assert f"step {n + 1}" in str(e.value) and e.value.quantity in str(e.value)
    ev = events(trainer.run_dir)
    assert [r["event"] for r in ev] == ["diverged"] and ev[0]["step"] == n + 1
    assert all_checkpoint_tensors_finite(trainer.run_dir)
    s, model_state, _ = final_checkpoint(trainer.run_dir)
    assert s == 6                                   # checkpoint_every=3: the last good one
    assert all(torch.isfinite(v).all() for v in model_state.values() if v.is_floating_point())


def test_rollback_recovers_a_run_that_diverges_once(tmp_path):
    trainer, net = _trainer(tmp_path, {"once_at": 8, "value": float("nan")}, on_divergence="rollback")
    result = trainer.fit()
    assert result.status == "finished" and result.step == TINY["steps"]
    assert net.fired == 1
    ev = events(trainer.run_dir)
    assert [r["event"] for r in ev] == ["rollback"], ev
    r = ev[0]
    assert r["diverged_at"] == 8 and r["restored_step"] == 6 and r["retry"] == 1
    assert r["new_seed"] != 1 and r["lr_scale"] == 0.5
    assert all_checkpoint_tensors_finite(trainer.run_dir)
    s, _, st = final_checkpoint(trainer.run_dir)
    assert s == TINY["steps"] and st["rollbacks"] == 1 and st["lr_scale"] == 0.5
    # the learning rate really was cut: the live lr is the schedule's value times 0.5
    c = trainer.config
    unscaled = c.lr_min_factor + (1 - c.lr_min_factor) * 0.5 * (1 + math.cos(math.pi))
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.5 * c.lr * unscaled)


def test_rollback_retries_are_bounded_then_it_stops(tmp_path):
    trainer, _ = _trainer(tmp_path, {"bad_from": 8, "value": float("nan")}, on_divergence="rollback",
                          max_rollbacks=2)
    with pytest.raises(DivergenceError) as e:
        trainer.fit()
    assert e.value.step == 8
    ev = events(trainer.run_dir)
    assert [r["event"] for r in ev] == ["rollback", "rollback", "diverged"], ev
    assert [r["retry"] for r in ev[:2]] == [1, 2]
    assert [r["lr_scale"] for r in ev[:2]] == [0.5, 0.25]
    assert len({r["new_seed"] for r in ev[:2]} | {1}) == 3          # a new seed each time
    assert all_checkpoint_tensors_finite(trainer.run_dir)


def test_cli_rollback_with_absurd_lr_gives_up_after_max_retries(tmp_path, capsys):
    data = tiny_data(tmp_path / "x.npy")
    (tmp_path / "t.toml").write_text("hidden = 16\ndepth = 2\nmax_rollbacks = 2\n")
    out = tmp_path / "run"
    code = cli_main(["train", "--data", str(data), "--out", str(out), "--config", str(tmp_path / "t.toml"),
                     "--lr", "1e6", "--on-divergence", "rollback", "--steps", "30", "--batch-size", "64",
                     "--buffer-size", "256", "--mcmc-steps", "5", "--checkpoint-every", "1", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "training diverged at step" in err[0], err
    kinds = [r["event"] for r in events(out)]
    assert kinds == ["rollback", "rollback", "diverged"], kinds
    assert all_checkpoint_tensors_finite(out)
