"""The Python API as a user meets it (session 14's audit): each wrong input is one EBMError line naming the
problem, and float64 / other-device inputs are followed, not silently mishandled."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import ebmlab
from ebmlab.errors import EBMError

TINY = dict(steps=2, progress=False, tensorboard=False, batch_size=16, buffer_size=32, mcmc_steps=2)


class Quadratic64(nn.Module):
    """f(x) = w·x + b - |x|^2 / 2 with w = b = 0, so log Z = log 2π in 2-D; x [B, 2] -> [B].
    The Linear layer makes f fail on inputs of another dtype than its weights."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)
        nn.init.zeros_(self.lin.weight)
        nn.init.zeros_(self.lin.bias)

    def forward(self, x):
        return self.lin(x).squeeze(-1) - 0.5 * x.pow(2).sum(1)


class TinyConv(nn.Module):
    """x [B, C, H, W] of any size -> [B]: global average pooling after one conv."""

    def __init__(self, c=1):
        super().__init__()
        self.conv, self.out = nn.Conv2d(c, 4, 3, padding=1), nn.Linear(4, 1)

    def forward(self, x):
        return self.out(nn.functional.silu(self.conv(x)).mean((2, 3))).squeeze(-1)


def test_log_z_without_a_required_setting_or_with_an_unknown_one_is_one_line():
    f = lambda x: -0.5 * x.pow(2).sum(1)             # noqa: E731
    with pytest.raises(EBMError, match="method 'quadrature' needs bounds="):
        ebmlab.log_z(f, method="quadrature")
    with pytest.raises(EBMError, match="method 'ais' does not take n_step; its options are .*n_steps"):
        ebmlab.log_z(f, method="ais", x_ref=torch.randn(8, 2), n_step=3)


def test_quadrature_evaluates_a_float64_model_in_float64():
    model = ebmlab.EnergyModel(Quadratic64().double())
    est = ebmlab.log_z(model, method="quadrature", bounds=[[-8.0, 8.0], [-8.0, 8.0]])
    assert abs(est.value - math.log(2 * math.pi)) < 1e-3


def test_true_log_density_follows_the_input_device():
    # "meta" stands in for a CUDA tensor on a CPU-only machine: the mixture centres must follow x
    from ebmlab.data import toy2d
    for name in ("moons", "eight-gaussians", "checkerboard"):
        out = toy2d.true_log_density(name, torch.zeros(3, 2, device="meta"))
        assert out.shape == (3,) and out.device.type == "meta"
    x = toy2d.make("moons", 50)
    assert torch.allclose(toy2d.true_log_density("moons", x.double()),
                          toy2d.true_log_density("moons", x).double(), atol=1e-5)


def test_a_network_without_parameters_is_one_line(tmp_path):
    class Fixed(nn.Module):
        def forward(self, x):
            return -0.5 * x.pow(2).sum(1)
    with pytest.raises(EBMError, match="no trainable parameters"):
        ebmlab.train(Fixed(), torch.randn(100, 2), out=tmp_path / "r", **TINY)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("shape", [(1, 6, 10), (2, 8, 8)])
def test_images_a_run_directory_cannot_hold_are_refused_before_writing(tmp_path, shape):
    """Before: the run trained and wrote a data.json that ebmlab.load then called damaged."""
    x = torch.rand(60, *shape) * 2 - 1
    torch.manual_seed(0)
    with pytest.raises(EBMError, match=r"square images \[C, S, S\] with C 1 \(grey\) or 3 \(RGB\)"):
        ebmlab.train(TinyConv(shape[0]), x, out=tmp_path / "r", **TINY)
    assert not (tmp_path / "r").exists()
    # the built-in networks are built for square images: same message, not "this network takes [B, 1, 6, 6]"
    with pytest.raises(EBMError, match=r"square images \[C, S, S\]"):
        ebmlab.train("auto", x, **TINY)
    # your own network in memory (nothing written, nothing to load back) still trains on them
    assert ebmlab.train(TinyConv(shape[0]), x, **TINY).status == "finished"


def test_loading_a_file_that_is_not_a_run_says_so(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.zeros((4, 2), dtype=np.float32))
    with pytest.raises(EBMError, match="is a file, not a run directory"):
        ebmlab.load(path)


def test_sampling_from_x0_that_f_cannot_take_is_one_line():
    model = ebmlab.EnergyModel(Quadratic64())
    with pytest.raises(EBMError, match=r"f fails on x0 of shape \(5, 3\): RuntimeError: mat1 and mat2"):
        ebmlab.sample(model, torch.randn(5, 3), method="mala", n_steps=2)
    with pytest.raises(EBMError, match=r"f fails on x0 of shape \(5, 3\)"):
        ebmlab.sample(model, torch.randn(5, 3), method="mh", n_steps=2)


def test_generator_check_compares_device_types_as_torch_does():
    """torch draws a cuda:1 tensor from a cuda:0 generator (it checks the device type only, pytorch#59352),
    so the chains' check does the same: only a type mismatch (a CPU generator for CUDA chains) is refused."""
    from ebmlab.samplers.run import resolve_generator

    class FakeGenerator(torch.Generator):
        @property
        def device(self):
            return torch.device("cuda:0")
    g = FakeGenerator()
    assert resolve_generator(g, torch.device("cuda:1")) is g
    with pytest.raises(EBMError, match="the generator is on cpu but x0 is on cuda:1"):
        resolve_generator(torch.Generator(), torch.device("cuda:1"))


def test_the_readme_and_discrete_python_blocks_not_run_elsewhere_run_verbatim(tmp_path, monkeypatch):
    """README's "The Python API" and "Binary data" blocks and docs/discrete.md's block, each on its own in a
    fresh namespace, as a reader pastes them (the "Bring your own network" blocks: test_user_network.py;
    docs/examples.md: test_eco_docs.py). The first needs the run that getting started trains as runs/g8."""
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)
    ebmlab.train("auto", "eight-gaussians", out="runs/g8", steps=2, hidden=16, batch_size=64, mcmc_steps=2,
                 progress=False, tensorboard=False)
    readme = (root / "README.md").read_text()
    blocks = [re.search(r"```python\n(.*?)```", readme.split(title, 1)[1], re.S).group(1)
              for title in ("## The Python API", "## Binary data and RBMs")]
    blocks += re.findall(r"```python\n(.*?)```", (root / "docs" / "discrete.md").read_text(), re.S)
    assert len(blocks) == 3
    for i, code in enumerate(blocks):
        exec(compile(code, f"block {i + 1}", "exec"), {"__name__": "docs"})


def test_labels_beside_a_dataset_that_carries_its_own_are_refused(tmp_path):
    """Before: labels= was silently ignored (even a file of invalid labels) and the items' y were used."""
    class Pairs(torch.utils.data.Dataset):
        def __len__(self):
            return 60

        def __getitem__(self, i):
            return torch.tensor([float(i % 3), 0.5]), i % 3
    np.save(tmp_path / "y.npy", np.zeros(60, dtype=np.int64))
    with pytest.raises(EBMError, match=r"a Pairs carries its labels in its \(x, y\) items, so drop labels="):
        ebmlab.train(nn.Linear(2, 3), Pairs(), labels=str(tmp_path / "y.npy"), preset="conditional", **TINY)


def test_exporting_a_run_trained_in_memory_is_one_line(tmp_path):
    from ebmlab.rundir.export import export_run
    run = ebmlab.train(nn.Sequential(nn.Linear(2, 1), nn.Flatten(0)), torch.randn(60, 2), **TINY)
    assert run.run_dir is None
    with pytest.raises(EBMError, match="a run trained with out=None is in memory only"):
        export_run(run.run_dir, tmp_path / "m.safetensors")


def test_ais_from_x_ref_that_f_cannot_take_is_one_line():
    """Before: a RuntimeError from inside the model (the API audit's open item); now as ebmlab.sample's x0."""
    model = ebmlab.EnergyModel(Quadratic64())
    with pytest.raises(EBMError, match=r"f fails on x_ref of shape \(\d+, 3\): RuntimeError"):
        ebmlab.log_z(model, "ais", x_ref=torch.randn(64, 3, dtype=torch.float64), n_chains=8, n_temps=4)
    with pytest.raises(EBMError, match=r"f fails on points of the bounds' box of shape \(8, 3\)"):
        ebmlab.log_z(model, "ais", base="uniform", bounds=[(-1.0, 1.0)] * 3, n_chains=8, n_temps=4,
                     reverse=False)


def test_a_float64_network_is_told_to_match_the_data_dtype():
    """The API audit's finding: the one-line error quoted torch's dtype mismatch without saying what to do."""
    net = nn.Sequential(nn.Linear(2, 8), nn.SiLU(), nn.Linear(8, 1)).double()
    with pytest.raises(EBMError, match=r"weights are \['torch.float64'\]: call .to\(torch.float32\) on it"):
        ebmlab.train(net, torch.randn(200, 2), None, steps=2, progress=False)
