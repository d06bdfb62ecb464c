"""plots.py: every function writes a valid, non-empty PNG atomically (no temp file left behind)."""
from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from ebmlab.errors import EBMError
from ebmlab.models.energy import EnergyModel
from ebmlab.viz import plots


def _png_ok(path, min_w=200, min_h=150):
    assert path.exists() and path.stat().st_size > 1000
    with Image.open(path) as im:
        im.verify()                     # a complete, uncorrupted PNG
    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = im.size
    assert w >= min_w and h >= min_h
    return w, h


def _no_temp(folder):
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def gauss_f(x: torch.Tensor) -> torch.Tensor:
    return -0.5 * (x ** 2).sum(1)


class _Quad(nn.Module):
    def forward(self, x):
        return -0.5 * (x ** 2).sum(1) + 0.0 * self.w

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))


@pytest.fixture
def points():
    g = torch.Generator().manual_seed(0)
    return torch.randn(500, 2, generator=g), torch.randn(300, 2, generator=g).numpy()


def test_2d_panel_callable(tmp_path, points):
    data, samples = points
    out = plots.plot_2d_panel(gauss_f, data, samples, [(-4, 4), (-4, 4)], tmp_path / "panel.png",
                              log_z=math.log(2 * math.pi), title="gauss", grid=60)
    w, h = _png_ok(out)
    assert w > 2.5 * h                  # four panels side by side
    _no_temp(tmp_path)


def test_2d_panel_model_with_support_box(tmp_path, points):
    # f = -inf outside [-1, 1]^2, view box larger than the support; samples partly outside; a NaN sample
    model = EnergyModel(_Quad(), bounds=[(-1, 1), (-1, 1)])
    data, samples = points
    samples = samples.copy()
    samples[0] = np.nan
    out = plots.plot_2d_panel(model, data, samples, [(-3, 3), (-2, 2)], tmp_path / "sub" / "box.png", grid=50)
    assert min(_png_ok(out)) > 0
    _no_temp(tmp_path / "sub")


def test_2d_panel_grid_log_z_matches_quadrature():
    # the grid's own log Z is the midpoint rule: for a standard normal on [-6, 6]^2 it is log 2π
    _, _, F = plots.grid_log_density(gauss_f, [(-6, 6), (-6, 6)], grid=200)
    log_z = np.logaddexp.reduce(F.ravel()) + math.log((12 / 200) ** 2)
    assert abs(log_z - math.log(2 * math.pi)) < 1e-3
    # image layout: F[i, j] = f(xs[j], ys[i])
    xs, ys, F = plots.grid_log_density(lambda x: x[:, 0] + 10 * x[:, 1], [(0, 1), (0, 2)], grid=4)
    assert np.allclose(F[1, 2], xs[2] + 10 * ys[1], atol=1e-5)


def test_2d_panel_bad_shapes(tmp_path, points):
    data, samples = points
    with pytest.raises(EBMError):
        plots.plot_2d_panel(gauss_f, torch.zeros(5, 3), samples, [(-4, 4), (-4, 4)], tmp_path / "q.png")
    with pytest.raises(EBMError):
        plots.plot_2d_panel(gauss_f, data, samples, [(4, -4), (-4, 4)], tmp_path / "q.png")
    assert not (tmp_path / "q.png").exists()
    _no_temp(tmp_path)


def test_training_curves_missing_keys(tmp_path):
    rows = []
    for s in range(120):
        r = {"step": s, "loss": 1.0 / (s + 1), "f_pos": 0.1 * s, "f_neg": 0.05 * s, "lr": 1e-4 * 0.97 ** s,
             "accept": 0.5, "note": "text is ignored", "flag": True}
        r["gap"] = r["f_pos"] - r["f_neg"]
        if s % 20 == 0:
            r["nll"] = 3.0 - 0.01 * s
        if s % 2:
            del r["accept"]              # missing in some rows
        if s == 50:
            r["loss"] = float("nan")     # a NaN is a gap, not a crash
        rows.append(r)
    out = plots.plot_training_curves(rows, tmp_path / "curves.png")
    assert min(_png_ok(out)) > 0
    # rows without any 'step', with only one key, with tensors as values, and an empty log
    assert min(_png_ok(plots.plot_training_curves([{"loss": torch.tensor(1.0)}, {"loss": 0.5}], tmp_path / "one.png"))) > 0
    assert min(_png_ok(plots.plot_training_curves([], tmp_path / "empty.png"), min_w=100, min_h=100)) > 0
    _no_temp(tmp_path)


def test_traces(tmp_path):
    g = torch.Generator().manual_seed(1)
    T, C = 80, 16
    traces = {
        "energy": torch.randn(T, C, generator=g).cumsum(0),
        "accept": (torch.rand(T, C, generator=g) < 0.6).float(),
        "grad_norm": np.abs(np.random.default_rng(0).normal(size=(T, 3))),
        "step_size": np.linspace(0.1, 0.01, T),     # a [T] summary
    }
    traces["energy"][5, 0] = float("inf")
    out = plots.plot_traces(traces, tmp_path / "traces.png", title="chains")
    assert min(_png_ok(out)) > 0
    with pytest.raises(EBMError):
        plots.plot_traces({"bad": np.zeros((2, 3, 4))}, tmp_path / "bad.png")
    _no_temp(tmp_path)


def test_energy_histograms(tmp_path):
    g = torch.Generator().manual_seed(2)
    f_data = torch.randn(400, generator=g)
    f_model = torch.randn(300, generator=g) - 1.0
    f_model[:3] = float("-inf")          # samples that left the support
    f_model[3] = -1e6                    # one diverged sample: off-range, not squashing the plot
    out = plots.plot_energy_histograms(f_data, f_model.numpy(), tmp_path / "hist.png", title="E")
    assert min(_png_ok(out)) > 0
    _png_ok(plots.plot_energy_histograms(torch.full((5,), float("-inf")), [], tmp_path / "none.png"),
            min_w=100, min_h=100)
    _no_temp(tmp_path)


def test_overwrite_and_threads(tmp_path, points):
    # replacing an existing picture, from several threads at once (no pyplot global state)
    data, samples = points
    target = tmp_path / "same.png"
    target.write_bytes(b"old")
    errors = []

    def work(i):
        try:
            if i == 0:
                plots.plot_2d_panel(gauss_f, data, samples, [(-3, 3), (-3, 3)], target, grid=30)
            else:
                plots.plot_energy_histograms(gauss_f(data), gauss_f(torch.as_tensor(samples)), target)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert min(_png_ok(target)) > 0
    _no_temp(tmp_path)


def test_failed_write_keeps_old_file_and_no_temp(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    target = tmp_path / "hist.png"
    target.write_bytes(b"old picture")

    def boom(self, *a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", boom)
    with pytest.raises(RuntimeError):
        plots.plot_energy_histograms(np.zeros(10), np.ones(10), target)
    assert target.read_bytes() == b"old picture"
    _no_temp(tmp_path)
