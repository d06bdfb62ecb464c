"""Issue 13: the optional compiled sampling path (``compile`` / ``--compile``, samplers/compiled.py).

The compiled density must give the eager chains' samples within float tolerance (same draws, same
update rule), training with ``compile = True`` must log its compile time apart, and a machine where
torch.compile cannot run must get one EBMError line. Skipped where torch.compile is unavailable.
"""
from __future__ import annotations

import json

import pytest
import torch

from ebmlab.cli import _parser
from ebmlab.errors import EBMError
from ebmlab.rundir.config import RunConfig
from ebmlab.samplers import compiled
from ebmlab.samplers.compiled import CompiledDensity, compile_sampler, compile_seconds, compile_unavailable_reason
from ebmlab.samplers.registry import make_sampler
from ebmlab.samplers.run import run_chains
from ebmlab.training.api import start_run

REASON = compile_unavailable_reason()
needs_compile = pytest.mark.skipif(REASON is not None, reason=f"torch.compile unavailable: {REASON}")


class SmallConv(torch.nn.Module):
    """[B, 1, 6, 6] -> [B]: a conv energy like the image nets, small enough to compile in seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.SiLU(), torch.nn.Flatten(),
                                        torch.nn.Linear(4 * 4 * 4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(-1)


@needs_compile
def test_compiled_langevin_gives_the_eager_samples():
    torch.manual_seed(0)
    net = SmallConv()
    x0 = torch.rand(16, 1, 6, 6) * 2 - 1
    eager = make_sampler(net, "langevin", 0.05, noise_scale=0.01)
    comp = compile_sampler(make_sampler(net, "langevin", 0.05, noise_scale=0.01))
    assert isinstance(comp.f, CompiledDensity) and comp.module is net     # run_chains still freezes the net
    assert compile_sampler(comp) is comp and not isinstance(comp.f.eager, CompiledDensity)   # idempotent
    a, da = run_chains(eager, x0, 6, torch.Generator().manual_seed(3))
    b, db = run_chains(comp, x0, 6, torch.Generator().manual_seed(3))
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(db.mean_grad_norm, da.mean_grad_norm, rtol=1e-4, atol=1e-6)
    assert compile_seconds(comp) > 0 and compile_seconds(eager) == 0.0
    assert all(p.grad is None and p.requires_grad for p in net.parameters())


@needs_compile
def test_training_with_compile_logs_compile_time_apart(tmp_path):
    trainer, _ = start_run("moons", tmp_path / "run", sampler="langevin", step_size=0.01, mcmc_steps=3,
                           steps=3, batch_size=32, log_every=3, hidden=16, depth=2, compile=True)
    assert isinstance(trainer.kernel.f, CompiledDensity)
    trainer.fit()
    row = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0 < row["compile_seconds"] <= row["seconds"]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["compile"] is True


def test_compile_is_off_by_default_and_a_cli_switch():
    assert RunConfig().compile is False
    p = _parser()
    assert p.parse_args(["train", "--data", "moons", "--out", "x"]).compile is None     # preset's value stays
    assert p.parse_args(["train", "--data", "moons", "--out", "x", "--compile"]).compile is True
    assert p.parse_args(["sample", "run", "--out", "x.npy", "--compile"]).compile is True
    with pytest.raises(EBMError, match="compile"):
        RunConfig.from_dict({"compile": "yes"})


def test_no_compiler_is_one_line(monkeypatch):
    monkeypatch.setattr(compiled.shutil, "which", lambda name: None)
    assert "C++ compiler" in compiled.compile_unavailable_reason()
    with pytest.raises(EBMError, match=r"^--compile: .*C\+\+ compiler.*; run without --compile$"):
        compile_sampler(make_sampler(SmallConv(), "langevin", 0.05))
