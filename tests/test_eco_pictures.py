"""The picture fixes: samples-only PNG for 2-D runs, informative smoothed curves, labelled inpaint PNG,
a composite's own panels."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ebmlab.cli import main
from ebmlab.training.api import release_run, start_run
from ebmlab.viz import plots
from ebmlab.viz.imageio import save_labelled_row
from tests.helpers_runs import TINY, tiny_data


def _size(path):
    with Image.open(path) as im:
        return im.size


def test_curves_drop_duplicates_and_constants_and_seconds_stay_monotone(tmp_path):
    rows = []
    for i in range(1, 61):
        gap = float(np.sin(i / 5))
        # a resume at step 30: seconds restart from 0
        rows.append({"step": i, "gap": gap, "loss": -gap, "f_pos": 0.1 * i, "lr": 1e-3,
                     "seconds": float(i if i <= 30 else i - 30)})
    series = {k: (np.arange(1.0, 61), np.asarray([r[k] for r in rows], float)) for k in rows[0] if k != "step"}
    kept, notes, foot = plots._informative(series, ["gap", "loss", "f_pos", "lr", "seconds"])
    assert kept == ["gap", "f_pos", "seconds"]
    assert notes == {"gap": "loss = -gap"}
    assert foot == ["lr = 0.001 (constant)"]
    cum = plots._cumulative_seconds(series["seconds"][1])
    assert np.all(np.diff(cum) > 0) and cum[-1] == 60
    ema = plots._ema(np.asarray([1.0, np.nan, 3.0, 3.0]), 0.5)
    assert ema[0] == 1.0 and ema[1] == 1.0 and 1.0 < ema[2] < 3.0     # start-up bias removed, NaN skipped
    out = plots.plot_training_curves(rows, tmp_path / "curves.png")
    w, h = _size(out)
    assert w == 1380 and 300 < h < 400                   # three panels in one row (+ the footnote)


def test_sample_png_of_a_2d_run_is_the_samples_alone_and_the_plot_keeps_four_panels(tmp_path, capsys):
    run = tmp_path / "r"
    trainer, _ = start_run(str(tiny_data(tmp_path / "d.npy")), run, tensorboard=False, **{**TINY, "steps": 4})
    trainer.fit()
    release_run(trainer)
    assert main(["sample", str(run), "--n", "50", "--n-steps", "5", "--out", str(tmp_path / "s.png")]) == 0
    assert _size(tmp_path / "s.png") == (500, 500)       # one scatter, not the 1700 px run figure
    box = [(-2.0, 2.0), (-2.0, 2.0)]
    f = lambda x: -(x ** 2).sum(1)
    assert _size(plots.plot_2d_panel(f, np.zeros((5, 2)), np.zeros((5, 2)), box, tmp_path / "p4.png"))[0] == 1700
    # a composite has no data of its own: density, energy and samples only
    assert _size(plots.plot_2d_panel(f, None, np.zeros((5, 2)), box, tmp_path / "p3.png"))[0] == 1300


def test_inpaint_png_is_labelled_and_readable(tmp_path):
    x = torch.linspace(-1, 1, 3 * 64).reshape(3, 1, 8, 8)
    out = save_labelled_row(x, ["original", "masked", "filled"], tmp_path / "i.png")
    w, h = _size(out)
    assert w >= 3 * 160 and h >= 160                  # was 104 x 36 px
    a = np.asarray(Image.open(out).convert("L"))
    for i in range(3):                                # dark label text above each tile
        x0 = 8 + i * (160 + 8)
        assert (a[:28, x0:x0 + 160] < 100).sum() > 20
    with pytest.raises(Exception, match="one label per image"):
        save_labelled_row(x, ["a", "b"], tmp_path / "j.png")
