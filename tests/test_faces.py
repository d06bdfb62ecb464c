"""The built-in faces set, its preset, the image network choice, the labelled trajectory figure and the
nearest-neighbour memorisation check (issue 17)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ebmlab.cli import main
from ebmlab.data.faces import held_out_mask, load_faces_uint8, load_non_faces_uint8
from ebmlab.data.sources import load_data
from ebmlab.errors import EBMError
from ebmlab.metrics.nearest import memorisation_check, nearest
from ebmlab.nets.choose import image_net
from ebmlab.nets.image import ResNetEnergy, SmallConvNet
from ebmlab.rundir.config import RunConfig
from ebmlab.training.presets import PRESETS, resolve_config
from ebmlab.viz.trajectory import save_labelled_trajectory_png


def _tree(d: Path) -> set[str]:
    return {p.relative_to(d).as_posix() for p in d.rglob("*")}


def test_faces_split_is_fixed_uint8_and_scaled():
    ds = load_data("faces", seed=123)                    # the seed does not move the split
    assert ds.kind == "image" and ds.name == "faces"
    assert ds.train.dtype == torch.uint8 and tuple(ds.train.shape) == (80, 1, 25, 25)
    assert tuple(ds.test.shape) == (20, 1, 25, 25)
    every = load_faces_uint8("all")
    assert torch.equal(ds.test, every[4::5]) and torch.equal(ds.train, every[torch.from_numpy(~held_out_mask())])
    assert torch.equal(load_data("faces", seed=0).train, ds.train)
    x = ds.to_model(ds.train)
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1 and x.max() > 0.9
    assert tuple(load_non_faces_uint8().shape) == (100, 1, 25, 25)
    with pytest.raises(EBMError, match="no labels"):
        load_data("faces", labels="builtin")


def test_faces_without_scikit_image_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)          # `import skimage` now raises ImportError
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    with pytest.raises(EBMError, match=r"pip install ebmlab\[faces\]"):
        load_faces_uint8()
    before = _tree(tmp_path)
    assert main(["train", "--data", "faces", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install ebmlab[faces]" in err[0], err
    assert _tree(tmp_path) == before


def test_faces_picks_the_faces_preset(capsys):
    cfg = resolve_config("faces", {}, load_data("faces"))
    assert cfg.preset == "faces" and cfg.negatives == "short-run" and cfg.init == "uniform"
    assert cfg.mcmc_steps == PRESETS["faces"]["mcmc_steps"] and cfg.net == "conv"
    assert main(["train", "--data", "faces", "--out", "unused", "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["preset"] == "faces" and printed["net_width"] == PRESETS["faces"]["net_width"]


def test_image_net_follows_the_config():
    assert isinstance(image_net("auto", 1, 8), SmallConvNet) and isinstance(image_net("auto", 3, 32), ResNetEnergy)
    conv = image_net("conv", 1, 25, 24)
    assert isinstance(conv, SmallConvNet) and conv.width == 24
    assert conv(torch.zeros(2, 1, 25, 25)).shape == (2,)
    res = image_net("resnet", 3, 16, 8)
    assert isinstance(res, ResNetEnergy) and res.width == 8
    with pytest.raises(EBMError):
        RunConfig(net_width=0)
    with pytest.raises(EBMError):
        RunConfig(net_width=10**6)


def test_short_faces_run_samples_with_a_labelled_trajectory(tmp_path, capsys):
    run = tmp_path / "faces"
    assert main(["train", "--data", "faces", "--out", str(run), "--steps", "3", "--mcmc-steps", "4", "--quiet"]) == 0
    assert json.loads((run / "config.json").read_text())["preset"] == "faces"
    capsys.readouterr()
    out = tmp_path / "f.png"
    assert main(["sample", str(run), "--n", "9", "--out", str(out), "--trajectory", "3"]) == 0
    strip = tmp_path / "f-trajectory.png"
    assert out.is_file() and strip.is_file()
    w, h = Image.open(strip).size
    assert (w, h) == (3 * 52 + 2, 14 + 8 * 52 + 2)    # frames t = 0, 3, 4 across, 8 chains down, 25 px x2
    capsys.readouterr()
    # the check evaluate_run adds to image runs, without eval's slower chain diagnostics
    from ebmlab.tasks.evaluate import training_images
    from ebmlab.tasks.open import open_run, test_data
    opened = open_run(str(run), "cpu")
    r = memorisation_check(training_images(opened)[:5], training_images(opened), test_data(opened))
    assert r["n_train"] == 80 and r["nn_samples_median"] < 1e-6 and r["nn_heldout_median"] > 0


@pytest.mark.slow
def test_eval_of_an_image_run_prints_the_memorisation_check(tmp_path, capsys):
    run = tmp_path / "faces"
    assert main(["train", "--data", "faces", "--out", str(run), "--steps", "2", "--mcmc-steps", "2", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    for key in ("nn_samples_mean", "nn_samples_median", "nn_heldout_mean", "nn_heldout_median", "nn_ratio",
                "nn_distinct_train"):
        assert key in res
    assert res["n_train"] == 80 and res["n_heldout"] == 20 and 0 < res["nn_heldout_median"] < 2


def test_labelled_trajectory_png_has_a_label_row(tmp_path):
    frames = torch.zeros(3, 2, 1, 8, 8) - 1          # all black tiles
    p = save_labelled_trajectory_png(frames, [0, 5, 10], tmp_path / "t.png")
    a = np.asarray(Image.open(p).convert("L"))
    assert a.shape[1] == 3 * (48 + 2) + 2
    header = a[:14]
    assert (header < 128).any() and (header == 255).mean() > 0.5        # dark text on white
    with pytest.raises(EBMError, match="one step label per frame"):
        save_labelled_trajectory_png(frames, [0, 5], tmp_path / "u.png")


def test_memorisation_check_tells_copies_from_new_images():
    g = torch.Generator().manual_seed(0)
    train = torch.rand(50, 1, 6, 6, generator=g) * 2 - 1
    held = torch.rand(30, 1, 6, 6, generator=g) * 2 - 1
    copies = train[torch.arange(40) % 5]                                  # 5 distinct training images
    r = memorisation_check(copies, train, held)
    assert r["nn_samples_median"] < 1e-6 and r["nn_ratio"] < 1e-6 and r["nn_distinct_train"] == 5
    fresh = memorisation_check(torch.rand(40, 1, 6, 6, generator=g) * 2 - 1, train, held)
    assert 0.7 < fresh["nn_ratio"] < 1.3          # new uniform images: as far as held-out uniform ones
    d, i = nearest(train[:3] + 0.1, train)
    assert torch.allclose(d, torch.full((3,), 0.1, dtype=torch.float64)) and i.tolist() == [0, 1, 2]
    with pytest.raises(EBMError):
        nearest(train, held[:, :, :3])


def test_celeba_preset_is_nijkamps_short_run_recipe():
    from ebmlab.nets.shortrun import ShortRunConvNet
    cfg = resolve_config("celeba64.npy", {"preset": "celeba"})
    assert (cfg.negatives, cfg.mcmc_steps, cfg.step_size, cfg.noise_scale) == ("short-run", 100, 1.0, 0.01)
    assert (cfg.lr, cfg.data_noise, cfg.batch_size, cfg.net, cfg.net_width) == (1e-4, 0.03, 64, "shortrun", 64)
    net = image_net(cfg.net, 3, 64, 8)
    assert isinstance(net, ShortRunConvNet) and net(torch.zeros(2, 3, 64, 64)).shape == (2,)
    # the 32x32 stack is theirs exactly: 3 -> n_f -> 2 n_f -> 4 n_f -> 8 n_f -> 1
    convs = [m for m in image_net("shortrun", 3, 32, 4).modules() if isinstance(m, torch.nn.Conv2d)]
    assert [m.out_channels for m in convs] == [4, 8, 16, 32, 1]
    with pytest.raises(EBMError, match="power of two"):
        image_net("shortrun", 1, 25)


@pytest.fixture(scope="module")
def tiny_faces_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("fid") / "faces"
    assert main(["train", "--data", "faces", "--out", str(run), "--steps", "1", "--mcmc-steps", "2", "--quiet"]) == 0
    return run


@pytest.mark.parametrize("case", ["no-weights", "missing-weights", "other-size", "not-npy", "no-torch-fidelity",
                                  "weights-alone"])
def test_fid_bad_input_is_one_line_exit_2_nothing_written(tiny_faces_run, tmp_path, capsys, monkeypatch, case):
    np.save(tmp_path / "real.npy", np.zeros((4, 1, 25, 25), np.uint8))
    np.save(tmp_path / "big.npy", np.zeros((4, 3, 64, 64), np.uint8))
    (tmp_path / "w.pth").write_bytes(b"not really weights")
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)     # absent here whether installed or not
    real, w = str(tmp_path / "real.npy"), str(tmp_path / "w.pth")
    extra = {"no-weights": ["--fid", real], "missing-weights": ["--fid", real, "--inception-weights", w + "x"],
             "other-size": ["--fid", str(tmp_path / "big.npy"), "--inception-weights", w],
             "not-npy": ["--fid", w, "--inception-weights", w],
             "no-torch-fidelity": ["--fid", real, "--inception-weights", w],
             "weights-alone": ["--inception-weights", w]}[case]
    before, run_before = _tree(tmp_path), _tree(tiny_faces_run)
    capsys.readouterr()
    assert main(["eval", str(tiny_faces_run), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ebmlab: error:"), err
    expect = {"no-weights": "--inception-weights", "missing-weights": "not found", "other-size": "(3, 64, 64)",
              "not-npy": ".npy", "no-torch-fidelity": "ebmlab[fid]", "weights-alone": "--fid"}[case]
    assert expect in err[0]
    assert _tree(tmp_path) == before and _tree(tiny_faces_run) == run_before


def test_prepare_celeba_crop_at_128(tmp_path):
    from ebmlab.tasks.prepare import prepare_cache
    src = tmp_path / "img_align_celeba"
    src.mkdir()
    g = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(g.integers(0, 256, (218, 178, 3), dtype=np.uint8)).save(src / f"{i + 1:06d}.jpg")
    r = prepare_cache(src, 128, tmp_path / "c128.npy", crop="celeba")
    a = np.load(tmp_path / "c128.npy", mmap_mode="r")
    assert r.shape == (2, 3, 128, 128) and a.shape == (2, 3, 128, 128) and a.dtype == np.uint8
