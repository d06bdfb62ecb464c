"""Image data: the folder loader on a generated mixed folder, digits, .npy, and the scaling."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ebmlab.data.images import load_digits_images, load_digits_labels, load_image_folder, load_npy_images
from ebmlab.data.scaling import Scaling
from ebmlab.errors import EBMError


def _make_folder(root):
    """10 decodable images (PNG/JPEG, modes L/RGB/RGBA/P, mixed sizes, nested), 1 corrupt, 1 text."""
    rng = np.random.default_rng(0)
    (root / "a" / "b").mkdir(parents=True)
    (root / "c").mkdir()
    specs = [("x1.png", "L", (20, 30)), ("x2.PNG", "RGB", (64, 48)), ("a/x3.png", "RGBA", (17, 17)),
             ("a/x4.png", "P", (40, 25)), ("a/b/x5.jpg", "RGB", (50, 80)), ("a/b/x6.jpeg", "L", (33, 12)),
             ("c/x7.png", "LA", (16, 16)), ("c/x8.JPG", "RGB", (100, 100)), ("x9.png", "L", (9, 9)),
             ("c/x10.png", "RGB", (32, 32))]
    for name, mode, size in specs:
        arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        im = Image.fromarray(arr).convert(mode) if mode != "RGBA" else Image.fromarray(
            np.dstack([arr, rng.integers(0, 256, arr.shape[:2], dtype=np.uint8)]))
        im.save(root / name)
    good = (root / "x1.png").read_bytes()
    (root / "a" / "broken.png").write_bytes(good[: len(good) // 2])        # truncated PNG
    (root / "c" / "notes.txt").write_text("not an image")
    return len(specs)


def test_folder_loader_mixed(tmp_path):
    n = _make_folder(tmp_path)
    x, rep = load_image_folder(tmp_path, image_size=16)
    assert x.shape == (n, 3, 16, 16) and x.dtype == torch.uint8      # colour files present -> RGB
    assert (rep.n_loaded, rep.n_unreadable, rep.n_not_image) == (n, 1, 1)
    assert rep.unreadable_files == ["a/broken.png"] and rep.not_image_files == ["c/notes.txt"]
    assert "1 unreadable" in rep.summary() and "1 non-image" in rep.summary()
    json.dumps(rep.to_dict())
    xg, rep_g = load_image_folder(tmp_path, image_size=8, channels=1, max_images=3)
    assert xg.shape == (3, 1, 8, 8) and rep_g.channels == 1


def test_folder_loader_gray_only_and_rgba_on_white(tmp_path):
    Image.new("L", (10, 20), 7).save(tmp_path / "g.png")
    x, rep = load_image_folder(tmp_path, 4)
    assert x.shape == (1, 1, 4, 4) and rep.channels == 1 and int(x.min()) == int(x.max()) == 7
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(tmp_path / "t.png")       # fully transparent -> white
    x, _ = load_image_folder(tmp_path, 4)
    assert x.shape == (2, 3, 4, 4) and bool((x[1] == 255).all()) and bool((x[0] == 7).all())


def test_resize_shorter_side_then_centre_crop(tmp_path):
    a = np.zeros((10, 30), dtype=np.uint8)
    a[:, 10:20] = 255                        # bright centre third of a wide image
    Image.fromarray(a).save(tmp_path / "w.png")
    x, _ = load_image_folder(tmp_path, 10)
    assert x.shape == (1, 1, 10, 10) and int(x.min()) > 200  # the crop kept only the centre


def test_folder_errors(tmp_path):
    with pytest.raises(EBMError, match="no readable image"):
        load_image_folder(tmp_path, 32)
    (tmp_path / "n.txt").write_text("x")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(EBMError, match="no readable image"):
        load_image_folder(tmp_path, 32)
    for bad in (0, -3, 2.5, True, "32"):
        with pytest.raises(EBMError, match="positive integer"):
            load_image_folder(tmp_path, bad)
    with pytest.raises(EBMError, match="does not exist"):
        load_image_folder(tmp_path / "missing", 32)
    with pytest.raises(EBMError, match="channels"):
        load_image_folder(tmp_path, 8, channels=4)


def test_digits_split_fixed_and_disjoint():
    tr, te = load_digits_images("train"), load_digits_images("test")
    assert tr.shape == (1437, 1, 8, 8) and te.shape == (360, 1, 8, 8)
    assert float(tr.min()) == 0.0 and float(tr.max()) == 16.0
    assert torch.equal(tr, load_digits_images("train"))
    assert len(load_digits_labels("train")) == 1437 and set(load_digits_labels("test").tolist()) == set(range(10))
    m = load_digits_images("train", model_scale=True)
    assert torch.allclose(m, Scaling.from_range(0, 16).to_model(tr))
    with pytest.raises(EBMError):
        load_digits_images("valid")


def test_npy_images(tmp_path):
    np.save(tmp_path / "u8.npy", np.zeros((5, 3, 4, 4), dtype=np.uint8))
    np.save(tmp_path / "f.npy", np.random.rand(5, 4, 4))
    np.save(tmp_path / "nhwc.npy", np.zeros((5, 8, 8, 3), dtype=np.float32))
    np.save(tmp_path / "vec.npy", np.zeros((5, 2), dtype=np.float32))
    assert load_npy_images(tmp_path / "u8.npy").dtype == torch.uint8
    assert load_npy_images(tmp_path / "f.npy").shape == (5, 1, 4, 4)
    with pytest.raises(EBMError, match="N, H, W, C"):
        load_npy_images(tmp_path / "nhwc.npy")
    with pytest.raises(EBMError, match="shape"):
        load_npy_images(tmp_path / "vec.npy")


@pytest.mark.parametrize("mode", ["global", "per_feature", "per_channel"])
def test_scaling_round_trip(mode):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(50, 3, 4, 4, generator=g) * torch.tensor([1.0, 10.0, 255.0]).view(1, 3, 1, 1) + 5
    x[:, 0, 0, 0] = 2.0                                   # a constant feature must survive
    s = Scaling.fit(x, mode)
    y = s.to_model(x)
    assert y.min() >= -1 - 1e-5 and y.max() <= 1 + 1e-5
    s2 = Scaling.from_dict(json.loads(json.dumps(s.to_dict())))
    assert s2 == s
    assert torch.allclose(s2.from_model(y), x, rtol=1e-5, atol=1e-4)


def test_scaling_vectors_and_infer():
    v = torch.randn(100, 5) * torch.arange(1, 6) + 3
    s = Scaling.fit(v, "per_feature")
    y = s.to_model(v)
    assert torch.allclose(y.amin(0), -torch.ones(5)) and torch.allclose(y.amax(0), torch.ones(5))
    assert Scaling.infer(torch.zeros(2, 1, 2, 2, dtype=torch.uint8)) == Scaling.from_range(0, 255)
    assert Scaling.infer(torch.full((2, 2), 0.5)) == Scaling.from_range(0, 1)
    assert Scaling.infer(torch.tensor([[0.0, 16.0]])) == Scaling.from_range(0, 16)
    clipped = Scaling.from_range(0, 1).from_model(torch.tensor([-3.0, 3.0]), clip=True)
    assert torch.equal(clipped, torch.tensor([0.0, 1.0]))
    with pytest.raises(EBMError):
        Scaling.from_range(1, 1)
    with pytest.raises(EBMError):
        Scaling.fit(torch.tensor([[float("nan")]]))
