"""Issue #3: optional mixed precision (``precision`` = fp32 / bf16 / fp16), tested on the CPU with bf16.

fp32 must be the old path exactly (no autocast, no wrapper); bf16 runs the network under autocast
while chains, weights and checkpoints stay float32, and a bf16 run resumes bit for bit.
"""
from __future__ import annotations

import pytest
import torch

from ebmlab.cli import _parser, main
from ebmlab.rundir.config import RunConfig
from ebmlab.errors import EBMError
from ebmlab.samplers.run import run_chains
from ebmlab.training.api import resume_run, start_run
from ebmlab.training.losses import cd_loss
from ebmlab.training.negatives import sampler_from_config
from ebmlab.training.precision import AutocastDensity

from helpers_runs import assert_runs_identical

DIGITS = dict(steps=4, mcmc_steps=3, batch_size=32, seed=1)


def test_fp32_is_the_plain_float32_step():
    """The default path is the pre-precision training step: same kernel target, no scaler, and
    two steps give bit-identical weights to the step written out by hand."""
    trainer, model = start_run("digits", None, **DIGITS)
    assert trainer.config.precision == "fp32" and trainer.scaler is None
    assert trainer.kernel.f == model.log_density                 # no autocast wrapper
    ref_trainer, ref = start_run("digits", None, **DIGITS)
    kernel = sampler_from_config(ref_trainer.config, ref, ref_trainer.data_desc)   # as built before precision
    c = ref_trainer.config
    for _ in range(2):
        trainer.train_step()
        x_pos, _ = ref_trainer._next_batch()
        x_pos = x_pos + c.data_noise * torch.randn(x_pos.shape, generator=ref_trainer.gen_mcmc)
        x0 = ref_trainer.init_fn(x_pos.shape[0], ref_trainer.gen_mcmc)
        x_neg, _ = run_chains(kernel, x0, c.mcmc_steps, ref_trainer.gen_mcmc)
        loss, _ = cd_loss(ref.log_density(x_pos), ref.log_density(x_neg.detach()), c.l2)
        ref_trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        ref_trainer.optimizer.step()
        ref_trainer.scheduler.step()
    for (k, a), b in zip(model.state_dict().items(), ref.state_dict().values()):
        assert torch.equal(a, b), k


def test_bf16_trains_with_finite_f_and_float32_chains_and_weights():
    trainer, model = start_run("digits", None, precision="bf16", **DIGITS)
    assert isinstance(trainer.kernel.f.__self__, AutocastDensity)
    seen = []
    hook = model.net.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    try:
        for _ in range(3):
            stats = trainer.train_step()
            trainer.step += 1
            for k in ("f_pos", "f_neg", "loss", "grad_norm", "mcmc_grad_norm"):
                assert stats[k].dtype == torch.float32 and torch.isfinite(stats[k]), k
    finally:
        hook.remove()
    assert torch.bfloat16 in seen                                # the network did run in bf16
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())      # the sampler unfroze them
    # chains: float32 states and scores, f cast back to float32
    x0 = trainer.init_fn(8, trainer.gen_mcmc)
    state = trainer.kernel.init(x0)
    assert state.x.dtype == state.score.dtype == state.log_density.dtype == torch.float32
    state, _ = trainer.kernel.step(state, trainer.gen_mcmc)
    assert state.x.dtype == torch.float32
    x, diag = run_chains(trainer.kernel, x0, 3, trainer.gen_mcmc)
    assert x.dtype == torch.float32 and torch.isfinite(diag.mean_grad_norm).all()


def test_bf16_labelled_objective_runs():
    trainer, _ = start_run("digits", None, labels="builtin", preset="conditional", precision="bf16",
                           **{**DIGITS, "mcmc_steps": 2})
    stats = trainer.train_step()
    assert all(torch.isfinite(v) and v.dtype == torch.float32 for v in stats.values())


def test_bf16_resume_is_exact(tmp_path):
    cfg = dict(DIGITS, steps=6, checkpoint_every=2, log_every=1, plot_every=1000, precision="bf16")
    ref, _ = start_run("digits", tmp_path / "ref", **cfg)
    assert ref.fit().status == "finished"

    class StopAt3:
        def on_log(self, trainer, row):
            if trainer.step == 3:
                trainer.request_stop()

    first, _ = start_run("digits", tmp_path / "run", callbacks=[StopAt3()], **cfg)
    assert first.fit().status == "interrupted" and first.step == 3
    again = resume_run(tmp_path / "run")
    assert again.config.precision == "bf16" and again.step == 3
    assert again.fit().status == "finished"
    assert_runs_identical(tmp_path / "ref", tmp_path / "run")


def test_fp16_on_the_cpu_is_one_line_error(tmp_path, capsys):
    with pytest.raises(EBMError, match="fp16 is not supported on the CPU; use bf16"):
        RunConfig(precision="fp16")
    RunConfig(precision="fp16", device="cuda")                    # allowed where a GPU is asked for
    with pytest.raises(EBMError, match="precision must be one of"):
        RunConfig(precision="fp8")
    assert main(["train", "--data", "digits", "--precision", "fp16", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fp16 is not supported on the CPU; use bf16" in err[0]
    assert not (tmp_path / "r").exists()


def test_precision_flag_and_config_key():
    args = _parser().parse_args(["train", "--data", "digits", "--precision", "bf16"])
    assert args.precision == "bf16"
    assert RunConfig.from_dict({"precision": "bf16"}).precision == "bf16"
    assert RunConfig.from_dict({}).precision == "fp32"          # config.json of older runs


def test_fp16_scaler_path_resumes_exactly(tmp_path, monkeypatch):
    """The fp16 code path (GradScaler, skipped overflow steps, the scale in the checkpoint) is for
    CUDA; torch's CPU autocast also does fp16, so with the CPU refusal lifted it runs here."""
    import ebmlab.rundir.config
    monkeypatch.setattr(ebmlab.rundir.config, "_validate", lambda c: None)
    cfg = dict(DIGITS, steps=6, checkpoint_every=2, log_every=1, plot_every=1000, precision="fp16")
    ref, model = start_run("digits", tmp_path / "ref", **cfg)
    assert ref.scaler is not None
    assert ref.fit().status == "finished"
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert ref.scaler.get_scale() < 65536.0                      # the first scaled backward overflowed: skipped

    class StopAt3:
        def on_log(self, trainer, row):
            if trainer.step == 3:
                trainer.request_stop()

    first, _ = start_run("digits", tmp_path / "run", callbacks=[StopAt3()], **cfg)
    assert first.fit().status == "interrupted"
    again = resume_run(tmp_path / "run")
    assert again.scaler.get_scale() == first.scaler.get_scale()
    again.fit()
    assert_runs_identical(tmp_path / "ref", tmp_path / "run")
