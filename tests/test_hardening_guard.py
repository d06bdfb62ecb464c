"""Issue 11, findings 2 and 3: a blown-up update never becomes a checkpoint, runaway chains are a
divergence (training and sampling), and a run directory's weights and step are checked on loading.

Each test failed on the main branch before the fix (the failure it showed is in its docstring).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ebmlab.cli import main as cli_main
from ebmlab.data.sources import load_data
from ebmlab.errors import EBMError
from ebmlab.rundir.build import build_model
from ebmlab.rundir.checkpoint import latest_checkpoint, load_checkpoint
from ebmlab.rundir.config import RunConfig
from ebmlab.rundir.header import write_run_header
from ebmlab.training.api import describe_data
from ebmlab.training.guard import DivergenceError
from ebmlab.training.trainer import Trainer

from helpers_runs import TINY, TINY_TOML, all_checkpoint_tensors_finite, events, metric_rows, tiny_data

CAP = getattr(RunConfig(), "max_abs_param", 1e4)     # (getattr: this file also runs against the old main)


def _max_abs_weight(run_dir: Path) -> float:
    """The largest |weight| over every checkpoint on disk (0 when there is none)."""
    m = 0.0
    for f in (run_dir / "checkpoints").glob("step-*/model.safetensors"):
        for t in load_file(str(f)).values():
            if t.is_floating_point() and t.numel():
                m = max(m, float(t.abs().max()))
    return m


def _train(tmp: Path, *flags: str, out: str = "run") -> tuple[int, Path]:
    data = tiny_data(tmp / "x.npy")
    (tmp / "t.toml").write_text(TINY_TOML)
    run = tmp / out
    code = cli_main(["train", "--data", str(data), "--out", str(run), "--config", str(tmp / "t.toml"),
                     "--batch-size", "64", "--buffer-size", "256", "--mcmc-steps", "5", "--quiet", *flags])
    return code, run


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("ebmlab: error: "), err
    return err[0]


# ---------------------------------------------------------------------------- 2. the exploding update
def test_exploding_update_is_never_checkpointed(tmp_path, capsys):
    """main: --lr 1e30 --steps 1 left LATEST with max|θ| = 1e30 (the guard looked only before the step)."""
    code, run = _train(tmp_path, "--lr", "1e30", "--steps", "1")
    line = _one_line(capsys)
    assert code == 2 and "training diverged at step 1" in line and "param_max_abs" in line, line
    assert "lower the learning rate" in line
    assert _max_abs_weight(run) <= CAP and all_checkpoint_tensors_finite(run)
    assert latest_checkpoint(run) is None                  # the only step was the bad one
    ev = events(run)
    assert ev[-1]["event"] == "diverged" and ev[-1]["quantity"] == "param_max_abs"


def test_rollback_never_restores_a_poisoned_checkpoint(tmp_path, capsys):
    """main: with --checkpoint-every 1 the step-1 checkpoint (max|θ| = 1e6) was written and then
    restored three times; now nothing exploded is written and rollbacks go to the step-0 state."""
    code, run = _train(tmp_path, "--lr", "1e6", "--steps", "6", "--checkpoint-every", "1",
                       "--on-divergence", "rollback")
    line = _one_line(capsys)
    assert code == 2 and "training diverged at step 1: param_max_abs" in line, line
    ev = events(run)
    assert [r["event"] for r in ev] == ["rollback"] * 3 + ["diverged"], ev
    assert [r["lr_scale"] for r in ev[:3]] == [0.5, 0.25, 0.125]
    assert all(r["restored_step"] == 0 for r in ev[:3])
    assert _max_abs_weight(run) <= CAP and all_checkpoint_tensors_finite(run)


class _Explode:
    """At training step ``at``, right after the optimiser's update, multiply (or NaN) the weights."""

    def __init__(self, trainer: Trainer, at: int, value: float, once: bool = False) -> None:
        self.trainer, self.at, self.value, self.once, self.fired = trainer, at, value, once, 0
        trainer.optimizer.register_step_post_hook(self)

    def __call__(self, optimizer, args, kwargs) -> None:
        if self.trainer.step + 1 == self.at and not (self.once and self.fired):
            self.fired += 1
            with torch.no_grad():
                for p in self.trainer.model.parameters():
                    p.mul_(self.value) if math.isfinite(self.value) else p.fill_(self.value)


def _tiny_trainer(tmp: Path, **cfg) -> Trainer:
    data = tiny_data(tmp / "x.npy")
    config = RunConfig.from_dict({**TINY, "data": str(data), "seed": 1, "checkpoint_every": 2, **cfg})
    dataset = load_data(str(data), config.seed, config.n_test, config.test_fraction)
    desc = describe_data(dataset, config)
    torch.manual_seed(config.seed)
    model = build_model(config, desc)
    run = tmp / "run"
    run.mkdir()
    write_run_header(run, config, desc)
    return Trainer(config, dataset, desc, model, run)


@pytest.mark.parametrize("value", [1e8, float("nan")])
def test_stop_keeps_the_last_good_checkpoint_latest(tmp_path, value):
    """main: an update that blew up the weights at a checkpoint step (6) was saved as LATEST."""
    trainer = _tiny_trainer(tmp_path)
    _Explode(trainer, at=6, value=value)
    with pytest.raises(DivergenceError) as e:
        trainer.fit()
    assert e.value.step == 6 and e.value.quantity == "param_max_abs", str(e.value)
    ck = latest_checkpoint(trainer.run_dir)
    assert ck is not None and ck.name == "step-0000004"
    assert _max_abs_weight(trainer.run_dir) <= CAP and all_checkpoint_tensors_finite(trainer.run_dir)
    assert max(r["step"] for r in metric_rows(trainer.run_dir)) <= 5      # the bad step was never logged


def test_rollback_after_an_exploding_update_recovers(tmp_path):
    trainer = _tiny_trainer(tmp_path, on_divergence="rollback")
    boom = _Explode(trainer, at=6, value=1e8, once=True)
    result = trainer.fit()
    assert result.status == "finished" and boom.fired == 1
    ev = events(trainer.run_dir)
    assert [r["event"] for r in ev] == ["rollback"] and ev[0]["restored_step"] == 4, ev
    assert _max_abs_weight(trainer.run_dir) <= CAP and all_checkpoint_tensors_finite(trainer.run_dir)


def test_update_size_relative_to_the_weights_is_guarded(tmp_path):
    """A 100x jump of the weights stays under the absolute cap but is no sane update."""
    trainer = _tiny_trainer(tmp_path)
    _Explode(trainer, at=3, value=100.0)
    with pytest.raises(DivergenceError) as e:
        trainer.fit()
    assert (e.value.quantity, e.value.step) == ("param_update", 3), str(e.value)
    assert latest_checkpoint(trainer.run_dir).name == "step-0000002"


def test_lr_that_overflows_float32_is_refused_in_one_line(tmp_path, capsys):
    """main: --lr 1e39 was a RuntimeError traceback from inside the optimiser."""
    code, run = _train(tmp_path, "--lr", "1e39", "--steps", "1")
    line = _one_line(capsys)
    assert code == 2 and "lr" in line and "float32" in line, line
    with pytest.raises(EBMError, match="step_size"):
        RunConfig(step_size=1e39)


def test_new_guard_fields_have_defaults_and_round_trip(tmp_path):
    old = RunConfig().to_dict()
    for k in ("max_abs_param", "max_param_update", "max_chain_scale"):
        old.pop(k)
    assert RunConfig.from_dict(old) == RunConfig()          # an old config.json still loads
    c = RunConfig(max_abs_param=50.0, max_chain_scale=3.0)
    c.save_json(tmp_path / "c.json")
    assert RunConfig.from_dict(json.loads((tmp_path / "c.json").read_text())) == c
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(EBMError, match="max_param_update"):
            RunConfig(max_param_update=bad)


# ---------------------------------------------------------------------------- 3a. runaway chains
def test_runaway_langevin_is_a_divergence(tmp_path, capsys):
    """main: --sampler langevin --step-size 1e30 trained to exit 0 (chains pinned to the box's faces)."""
    code, run = _train(tmp_path, "--sampler", "langevin", "--step-size", "1e30", "--steps", "10")
    line = _one_line(capsys)
    assert code == 2 and "training diverged at step 1: chain_step" in line and "--step-size" in line, line
    assert latest_checkpoint(run) is None


def test_chains_leaving_the_data_scale_or_nonfinite_are_divergences():
    from ebmlab.training.guard import ChainScale, chain_quantities, check_step
    scale = ChainScale({"kind": "vector", "event_shape": [2], "bounds": [[-1.0, 1.0], [0.0, 4.0]]})
    cfg = RunConfig(sampler="mala")
    ok = torch.tensor([[0.9, 3.9], [-1.0, 0.0]])
    q = chain_quantities(ok, scale, cfg, None)
    assert float(q["chain_range"]) == pytest.approx(1.0) and "chain_step" not in q
    check_step(1, q, {"chain_range": 100.0})
    for x, what in ((torch.tensor([[0.0, 500.0]]), "exceeds"), (torch.tensor([[float("nan"), 1.0]]), "not finite")):
        with pytest.raises(DivergenceError, match=what) as e:
            check_step(4, chain_quantities(x, scale, cfg, None), {"chain_range": 100.0})
        assert e.value.quantity == "chain_range" and "--step-size" in str(e.value)
    img = ChainScale({"kind": "image", "event_shape": [1, 2, 2]})
    assert float(chain_quantities(torch.full((3, 1, 2, 2), -1.0), img, cfg, None)["chain_range"]) == 1.0


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("trained")
    code, run = _train(tmp, "--steps", "4", "--checkpoint-every", "2")
    assert code == 0
    return run


def _copy_run(trained: Path, tmp: Path) -> Path:
    import shutil
    dst = tmp / "copy"
    shutil.copytree(trained, dst)
    return dst


def test_sample_refuses_runaway_chains_and_writes_nothing(trained, tmp_path, capsys):
    """main: `sample --method langevin --step-size 1e30` exited 0 and wrote box-corner noise."""
    out = tmp_path / "s.npy"
    code = cli_main(["sample", str(trained), "--method", "langevin", "--step-size", "1e30", "--n", "8",
                     "--n-steps", "5", "--out", str(out)])
    line = _one_line(capsys)
    assert code == 2 and "sampling diverged: chain_step" in line, line
    assert not out.exists()
    assert cli_main(["sample", str(trained), "--n", "8", "--n-steps", "5", "--out", str(out)]) == 0
    assert out.exists()


def test_draw_samples_refuses_nonfinite_samples(trained, monkeypatch):
    import ebmlab.tasks.sample as ts
    from ebmlab.tasks.open import open_run
    real = ts.run_chains

    def nan_chains(*a, **kw):
        x, diag = real(*a, **kw)
        return x * float("nan"), diag
    monkeypatch.setattr(ts, "run_chains", nan_chains)
    with pytest.raises(EBMError, match="sampling diverged: chain_range is not finite"):
        ts.draw_samples(open_run(trained), 4, n_steps=3)


# ---------------------------------------------------------------------------- 3b-d. loading a run
def _rewrite_weights(run: Path, fn) -> Path:
    f = latest_checkpoint(run) / "model.safetensors"
    state = load_file(str(f))
    save_file({k: fn(k, v) for k, v in state.items()}, str(f), metadata={"format_version": "1"})
    return f


def test_nan_weights_are_refused_on_loading(trained, tmp_path, capsys):
    """main: `sample` on NaN weights exited 0 writing noise."""
    import ebmlab
    run = _copy_run(trained, tmp_path)
    first = {}

    def poison(k, v):
        if v.is_floating_point() and not first:
            first[k] = True
            v = v.clone()
            v.view(-1)[0] = float("nan")
        return v
    _rewrite_weights(run, poison)
    out = tmp_path / "s.npy"
    code = cli_main(["sample", str(run), "--n", "4", "--n-steps", "2", "--out", str(out)])
    line = _one_line(capsys)
    assert code == 2 and "non-finite" in line and next(iter(first)) in line, line
    assert not out.exists()
    with pytest.raises(EBMError, match="non-finite"):
        ebmlab.load(run)


def test_weights_of_another_dtype_are_converted_with_a_warning(trained, tmp_path):
    """main: float64 weights were rounded to float32 without a word."""
    import ebmlab
    run = _copy_run(trained, tmp_path)
    _rewrite_weights(run, lambda k, v: v.double() if v.is_floating_point() else v)
    with pytest.warns(UserWarning, match=r"float64 -> float32"):
        model = ebmlab.load(run)
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("step", [-5, 2.5, "3", True, None])
def test_checkpoint_step_must_be_a_nonnegative_integer(trained, tmp_path, capsys, step):
    """main: state.json step -5 was accepted by --resume and the metrics history rewritten."""
    run = _copy_run(trained, tmp_path)
    ck = latest_checkpoint(run)
    meta = json.loads((ck / "state.json").read_text())
    meta["step"] = step
    (ck / "state.json").write_text(json.dumps(meta))
    rows = (run / "metrics.jsonl").read_text()
    with pytest.raises(EBMError, match="a step is an integer in"):
        load_checkpoint(ck)
    code = cli_main(["train", "--resume", str(run), "--quiet"])
    line = _one_line(capsys)
    assert code == 2 and "state.json" in line, line
    assert (run / "metrics.jsonl").read_text() == rows


def test_cli_prints_the_dtype_warning_as_one_line(trained, tmp_path):
    """The warning reached the CLI as Python's two-line format (message + source line)."""
    from helpers_runs import run_cli
    run = _copy_run(trained, tmp_path)
    _rewrite_weights(run, lambda k, v: v.double() if v.is_floating_point() else v)
    r = run_cli("sample", str(run), "--n", "4", "--out", str(tmp_path / "x.npy"))
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("ebmlab: warning:") and "float64 -> float32" in lines[0], r.stderr


def test_metrics_log_replaced_by_a_symlink_is_never_appended_through(tmp_path):
    """A metrics.jsonl swapped for a link to a file outside the run while training: refused, victim untouched."""
    from ebmlab.rundir.logs import append_metrics
    run = tmp_path / "run"
    run.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep\n")
    (run / "metrics.jsonl").symlink_to(victim)
    with pytest.raises(EBMError, match="symbolic link"):
        append_metrics(run, {"step": 1})
    assert victim.read_text() == "keep\n"
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").symlink_to(tmp_path / "dangling.txt")
    with pytest.raises(EBMError, match="symbolic link"):
        append_metrics(run, {"step": 1})
    assert not (tmp_path / "dangling.txt").exists()
