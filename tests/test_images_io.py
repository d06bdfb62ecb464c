"""PNG grids, trajectory strips, and reading one image for inpainting."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ebmlab.data.scaling import Scaling
from ebmlab.errors import EBMError
from ebmlab.viz.imageio import load_image_as_tensor, save_grid_png, save_strip_png


def test_grid_png_digits_upscaled(tmp_path):
    x = torch.linspace(-1, 1, 10 * 64).reshape(10, 1, 8, 8)
    p = save_grid_png(x, tmp_path / "sub" / "grid.png", nrow=5, padding=2)
    im = Image.open(p)
    assert im.mode == "L" and im.size == (5 * 34 + 2, 2 * 34 + 2)        # 8x8 tiles -> 32x32
    a = np.asarray(im)
    assert a[2, 2] == 0 and a[2 + 31, 2 + 31] == a[2 + 28, 2 + 28]      # nearest: 4x4 blocks
    assert not list(tmp_path.glob("sub/.*"))                        # nothing half-written left


def test_grid_png_with_data_scaling_and_rgb(tmp_path):
    s = Scaling.from_range(0, 16)
    x = torch.full((3, 1, 8, 8), 16.0)
    a = np.asarray(Image.open(save_grid_png(x, tmp_path / "g.png", scaling=s, upscale=1, padding=0)))
    assert a.shape == (16, 16) and a[:8, :8].min() == 255                # 2x2 grid, last cell padding
    rgb = save_grid_png(torch.zeros(4, 3, 16, 16), tmp_path / "c.png")
    assert Image.open(rgb).mode == "RGB"
    with pytest.raises(EBMError):
        save_grid_png(torch.zeros(2, 2, 8, 8), tmp_path / "bad.png")


def test_strip_png(tmp_path):
    frames = [torch.full((3, 1, 8, 8), v) for v in (-1.0, 0.0, 1.0, 0.5)]   # 4 frames x 3 chains
    im = Image.open(save_strip_png(frames, tmp_path / "s.png", upscale=1, padding=1))
    assert im.size == (4 * 9 + 1, 3 * 9 + 1)
    a = np.asarray(im)
    assert a[1, 1] == 0 and a[1, 1 + 2 * 9] == 255                      # time runs left to right


def test_load_image_as_tensor(tmp_path):
    Image.new("L", (8, 8), 200).save(tmp_path / "d.png")
    Image.new("RGB", (12, 10), (1, 2, 3)).save(tmp_path / "c.png")
    x = load_image_as_tensor(tmp_path / "d.png", 1, 8)
    assert x.shape == (1, 1, 8, 8) and float(x.max()) == 200.0
    with pytest.raises(EBMError, match="channel"):
        load_image_as_tensor(tmp_path / "c.png", 1, 8)
    with pytest.raises(EBMError, match="12x10"):
        load_image_as_tensor(tmp_path / "c.png", 3, 8)
    assert load_image_as_tensor(tmp_path / "c.png", 1, 8, resize=True, convert=True).shape == (1, 1, 8, 8)
    (tmp_path / "x.png").write_bytes(b"nope")
    with pytest.raises(EBMError, match="cannot read"):
        load_image_as_tensor(tmp_path / "x.png", 1, 8)
