"""Smoke test of the image path through the command line: train the digits preset for a few steps,
sample a PNG grid (+ trajectory strip) and a .npy in the data's own scale (0..16), inpaint a PNG.

Tiny settings keep it to a few seconds; quality is measured by benchmarks/digits.py, not here.
"""
import json

import numpy as np
import pytest
from PIL import Image

from ebmlab.cli import main
from ebmlab.data.images import load_digits_images

TINY = ["--steps", "3", "--batch-size", "16", "--mcmc-steps", "3", "--checkpoint-every", "3", "--quiet"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "run"
    assert main(["train", "--data", "digits", "--out", str(out), *TINY]) == 0
    return out


def test_train_uses_digits_preset(run_dir):
    cfg = json.loads((run_dir / "config.json").read_text())
    data = json.loads((run_dir / "data.json").read_text())
    assert cfg["preset"] == "digits" and cfg["init"] == "uniform"
    assert data["kind"] == "image" and data["event_shape"] == [1, 8, 8]
    assert data["scaling"]["low"] == 0.0 and data["scaling"]["high"] == 16.0
    assert (run_dir / "samples.png").is_file()


def test_sample_png_grid_and_trajectory(run_dir, tmp_path):
    out = tmp_path / "s.png"
    assert main(["sample", str(run_dir), "--n", "16", "--n-steps", "4", "--trajectory", "2", "--out", str(out)]) == 0
    with Image.open(out) as im:
        w, h = im.size
    assert w >= 4 * 32 and h >= 4 * 32          # a 4x4 grid of tiles upscaled to >= 32 px
    assert (tmp_path / "s-trajectory.png").is_file()


def test_sample_npy_in_data_scale(run_dir, tmp_path):
    out = tmp_path / "s.npy"
    assert main(["sample", str(run_dir), "--n", "10", "--n-steps", "4", "--out", str(out)]) == 0
    x = np.load(out)
    assert x.shape == (10, 1, 8, 8)
    assert x.min() >= 0.0 and x.max() <= 16.0 and x.max() > 1.0     # 0..16, not [-1, 1]


def test_inpaint_writes_png(run_dir, tmp_path):
    digit = load_digits_images("test")[0, 0].numpy()                 # 0..16
    img = tmp_path / "digit.png"
    Image.fromarray(np.round(digit * 255 / 16).astype(np.uint8)).save(img)   # a PNG holds 0..255
    assert main(["inpaint", str(run_dir), "--image", str(img), "--mask", "box", "--n-steps", "4"]) == 0
    out = tmp_path / "digit-inpaint.png"
    with Image.open(out) as im:
        assert im.size[0] > im.size[1]                                # original | masked | filled


def test_inpaint_wrong_size_is_one_line_error(run_dir, tmp_path, capsys):
    img = tmp_path / "big.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(img)
    assert main(["inpaint", str(run_dir), "--image", str(img)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ebmlab: error:") and "\n" not in err
    assert not (tmp_path / "big-inpaint.png").exists()


@pytest.mark.parametrize("mode, size, fix", [("L", 16, "--resize"), ("RGB", 8, "--convert")])
def test_inpaint_error_suggests_a_flag_that_exists_and_works(run_dir, tmp_path, capsys, mode, size, fix):
    import re

    from ebmlab.cli import _parser
    img = tmp_path / "odd.png"
    Image.new(mode, (size, size), 128 if mode == "L" else (10, 200, 30)).save(img)
    assert main(["inpaint", str(run_dir), "--image", str(img)]) == 2
    err = capsys.readouterr().err.strip()
    suggested = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", err))
    assert suggested == {fix}, err
    inpaint_parser = _parser()._subparsers._group_actions[0].choices["inpaint"]
    assert suggested <= set(inpaint_parser._option_string_actions), "the message names a flag inpaint lacks"
    assert main(["inpaint", str(run_dir), "--image", str(img), fix, "--n-steps", "2"]) == 0
    with Image.open(tmp_path / "odd-inpaint.png") as im:
        assert im.mode == "L"                                  # the digits model's one channel


def test_sample_default_length_is_the_training_chain_length_for_short_run(run_dir, tmp_path, capsys):
    # a short-run model is a K-step generator: sampling it longer over-saturates (benchmarks/results/digits.md)
    assert main(["sample", str(run_dir), "--n", "4", "--out", str(tmp_path / "k.npy")]) == 0
    assert "(4 samples, 3 steps," in capsys.readouterr().out       # TINY trains with --mcmc-steps 3


def test_sample_default_length_for_persistent_and_vector_runs():
    from ebmlab.rundir.config import RunConfig
    from ebmlab.tasks.sample import default_sample_steps
    assert default_sample_steps(RunConfig(negatives="persistent", mcmc_steps=60), is_vector=False) == 100
    assert default_sample_steps(RunConfig(mcmc_steps=20), is_vector=True) == 200
    assert default_sample_steps(RunConfig(mcmc_steps=30), is_vector=True) == 300


def test_inpaint_default_length_follows_the_run(run_dir, tmp_path, monkeypatch):
    import ebmlab.tasks.inpaint
    seen = {}
    real = ebmlab.tasks.inpaint.inpaint

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(ebmlab.tasks.inpaint, "inpaint", spy)
    digit = load_digits_images("test")[0, 0].numpy()
    img = tmp_path / "digit.png"
    Image.fromarray(np.round(digit * 255 / 16).astype(np.uint8)).save(img)
    assert main(["inpaint", str(run_dir), "--image", str(img)]) == 0
    cfg = json.loads((run_dir / "config.json").read_text())
    assert seen["n_steps"] == cfg["mcmc_steps"] == 3                  # short-run: K, as `sample`
    assert seen["step_size"] == cfg["step_size"] and seen["grad_clip"] == cfg["grad_clip"]


def test_inpaint_fills_average_independent_fills(run_dir, tmp_path, monkeypatch):
    import ebmlab.tasks.inpaint
    seen = {}
    real = ebmlab.tasks.inpaint.inpaint

    def spy(f, image, mask, **kwargs):
        seen["batch"] = image.shape[0]
        return real(f, image, mask, **kwargs)

    monkeypatch.setattr(ebmlab.tasks.inpaint, "inpaint", spy)
    digit = load_digits_images("test")[0, 0].numpy()
    img = tmp_path / "digit.png"
    Image.fromarray(np.round(digit * 255 / 16).astype(np.uint8)).save(img)
    assert main(["inpaint", str(run_dir), "--image", str(img), "--fills", "5", "--mask", "random"]) == 0
    assert seen["batch"] == 5                                         # five chains, one averaged picture
    assert (tmp_path / "digit-inpaint.png").is_file()


def test_cd_on_digits_has_the_collapse_guard_and_its_other_objectives_do_not():
    """The digits preset's collapse (f -> +50 on data, -50 on samples after ~20k steps at lr 1e-3) is
    caught by |mean f| > 10 with rollback; dsm / drl leave f unanchored, so they keep a wide limit (the default, scaled with drl's energy scale)."""
    from ebmlab.rundir.config import RunConfig
    from ebmlab.training.presets import resolve_config
    cd = resolve_config("digits", {"preset": "digits"})
    assert (cd.max_abs_f, cd.on_divergence) == (10.0, "rollback")
    assert resolve_config("digits", {"preset": "digits", "max_abs_f": 50.0}).max_abs_f == 50.0   # the user's wins
    default = RunConfig()
    dsm = resolve_config("digits", {"preset": "digits", "objective": "dsm"})
    assert (dsm.max_abs_f, dsm.on_divergence) == (default.max_abs_f, default.on_divergence)
    # drl's f = n / (c sigma_t^2) with energy scale c = 1e-3 is 1000x larger: the wide limit scaled with it
    drl = resolve_config("digits", {"preset": "digits", "objective": "drl"})
    assert drl.max_abs_f == pytest.approx(default.max_abs_f / drl.drl_energy_scale)
    assert drl.on_divergence == default.on_divergence
    assert resolve_config("digits", {"preset": "conditional", "labels": "builtin"}).max_abs_f == default.max_abs_f
