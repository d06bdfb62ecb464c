"""An audit of the image, faces and binary data paths as a demanding user meets them (session 15): image
folders of every kind of file, .npy arrays and in-memory images, the nets picked for them. Each finding a
user could hit, pinned by a test."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

import ebmlab
from ebmlab.errors import EBMError

TINY = dict(steps=2, progress=False, tensorboard=False, batch_size=8, mcmc_steps=2)


def test_a_16_bit_png_keeps_its_grey_levels(tmp_path):
    """Before: Pillow's I;16 -> L conversion clips at 255, so a 16-bit grey ramp came back all white
    but its first pixel (train, prepare and inpaint all decode through decode_image)."""
    from ebmlab.data.images import decode_image
    ramp = np.tile(np.linspace(0, 65535, 16).round().astype(np.uint16), (4, 1))     # [4, 16]
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    a, gray = decode_image(tmp_path / "g16.png")
    assert gray and a.shape == (1, 4, 16) and a.dtype == np.uint8
    want = np.round(ramp.astype(np.float64) / 257.0).astype(np.uint8)
    assert np.array_equal(a[0], want), a[0, 0]
    rgb, _ = decode_image(tmp_path / "g16.png", channels=3)     # a colour run reads it as grey in 3 planes
    assert all(np.array_equal(rgb[c], want) for c in range(3))


def _folder(root, links: bool = True):
    """Two readable PNGs, a corrupt one and a text file; with ``links`` a symlinked sub-folder holding a third
    PNG and a dangling symlink named like a PNG."""
    rng = np.random.default_rng(0)
    root.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(root / name)
    (root / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (root / "notes.txt").write_text("hello")
    if links:
        outside = root.parent / "elsewhere"
        outside.mkdir()
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(outside / "c.png")
        os.symlink(outside, root / "linked")
        os.symlink(root.parent / "missing.png", root / "dangling.png")
    return root


def test_linked_folders_and_dangling_links_are_counted_not_silently_dropped(tmp_path):
    """Before: a symlinked sub-folder (not searched) and a dangling link vanished from the report."""
    from ebmlab.data.images import load_image_folder
    x, report = load_image_folder(_folder(tmp_path / "imgs"), 8)
    assert x.shape[0] == 2
    text = report.summary()
    assert "dangling.png" in text and "linked" in text, text
    assert report.n_unreadable == 2 and report.n_linked_folders == 1


def test_train_says_which_files_of_a_folder_it_skipped(tmp_path, capsys):
    """Before: the docs promised skipped files "counted in the log", but train printed nothing about them
    (the counts were only inside data.json). Now skipped files are a warning (the CLI prints it as one line),
    and a folder read whole gets its count printed."""
    from ebmlab.cli import main
    root = _folder(tmp_path / "imgs", links=False)
    for i in range(4):
        Image.fromarray(np.full((9, 9, 3), 40 * i, np.uint8)).save(root / f"more{i}.png")
    args = ["--image-size", "8", "--steps", "1", "--mcmc-steps", "1", "--batch-size", "4", "--quiet"]
    with pytest.warns(UserWarning, match=r"loaded 6 images.*bad\.png.*notes\.txt"):
        assert main(["train", "--data", str(root), "--out", str(tmp_path / "r"), *args]) == 0
    for name in ("bad.png", "notes.txt"):
        (root / name).unlink()
    assert main(["train", "--data", str(root), "--out", str(tmp_path / "r2"), *args]) == 0
    assert "loaded 6 images" in capsys.readouterr().err


def test_image_size_for_data_of_another_size_is_refused_not_ignored(tmp_path):
    """Before: --image-size 8 on a .npy of 12x12 images trained at 12x12 and recorded image_size 8."""
    np.save(tmp_path / "x.npy", np.random.default_rng(0).integers(0, 256, (20, 1, 12, 12), dtype=np.uint8))
    with pytest.raises(EBMError, match="image.size 8.*12x12"):
        ebmlab.train("auto", str(tmp_path / "x.npy"), out=tmp_path / "r", image_size=8, **TINY)
    assert not (tmp_path / "r").exists()
    with pytest.raises(EBMError, match="image.size.*images"):
        ebmlab.train("auto", "moons", out=tmp_path / "r", image_size=8, **TINY)
    assert not (tmp_path / "r").exists()
    # the data's own size is accepted
    assert ebmlab.train("auto", str(tmp_path / "x.npy"), image_size=12, **TINY).status == "finished"


def test_uint8_images_from_python_are_mapped_from_0_255(tmp_path):
    """Before: a uint8 array or tensor of images given to ebmlab.train was trained as raw 0..255 floats
    (the chains live in [-1, 1], so the model could never reach the data), while a uint8 Dataset, folder or
    .npy of the same images was scaled."""
    x = np.random.default_rng(0).integers(0, 256, (20, 1, 8, 8), dtype=np.uint8)
    for data in (x, torch.from_numpy(x)):
        ebmlab.train("auto", data, out=tmp_path / "r", force=True, **TINY)
        desc = json.loads((tmp_path / "r" / "data.json").read_text())
        assert desc["scaling"] == {"kind": "affine", "mode": "global", "low": 0.0, "high": 255.0}
    run = ebmlab.train("auto", x, **TINY)
    assert run.status == "finished"


class _FloatImages(torch.utils.data.Dataset):
    """20 float RGB 8x8 images with values 0..255 (a Dataset that forgot to divide by 255)."""

    def __init__(self):
        self.x = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (20, 3, 8, 8)).astype(np.float32))

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i]


def test_float_images_outside_the_model_scale_are_warned_about(tmp_path):
    """Before: float images from Python are used as given, and 0..255 floats (or a Dataset that forgot
    ToTensor's /255) trained silently though every image chain is clamped to [-1, 1]."""
    import warnings
    x = np.random.default_rng(0).integers(0, 256, (20, 1, 8, 8)).astype(np.float32)
    for data in (x, _FloatImages()):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = ebmlab.train("auto", data, **TINY)
        said = [str(w.message) for w in caught if "image chains" in str(w.message)]
        assert len(said) == 1 and "[0, 255]" in said[0] and "[-1, 1]" in said[0], said
        assert run.status == "finished"        # a warning, not a refusal: the run still trains
    with warnings.catch_warnings(record=True) as caught:  # images already in [-1, 1]: nothing to say
        warnings.simplefilter("always")
        ebmlab.train("auto", x / 127.5 - 1, **TINY)
    assert not [w for w in caught if "image chains" in str(w.message)]


def test_float_images_in_zero_one_are_told_they_fill_half_the_chains_box(tmp_path):
    """Before: images in [0, 1] (torchvision's ToTensor) trained without a word, though the chains start from
    noise over [-1, 1] and half of that box holds no data."""
    import warnings
    x = np.random.default_rng(0).integers(0, 256, (20, 1, 8, 8)).astype(np.float32) / 255
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = ebmlab.train("auto", x, **TINY)
    said = [str(w.message) for w in caught if "image chains" in str(w.message)]
    assert len(said) == 1 and "inside [0, 1]" in said[0] and "x * 2 - 1" in said[0], said
    assert run.status == "finished"


def test_channels_last_images_get_a_transpose_hint(tmp_path):
    """Before: an (N, H, W, C) array was refused as "square images [C, S, S] ...: crop or resize them",
    which is not what is wrong with it."""
    x = np.random.default_rng(0).integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    np.save(tmp_path / "nhwc.npy", x)
    for data in (x, str(tmp_path / "nhwc.npy")):
        with pytest.raises(EBMError, match=r"\(N, H, W, C\).*transpose"):
            ebmlab.train("auto", data, out=tmp_path / "r", **TINY)
    assert not (tmp_path / "r").exists()


def test_eval_of_a_run_with_one_held_out_image_says_why_there_is_no_mmd(tmp_path, capsys):
    """Before: a small folder (6 images: 1 held out) trained, but `ebmlab eval RUN` failed with
    "x must be shaped [N, *event] with N >= 2, got (1, 192)", a message about no argument the user gave."""
    from ebmlab.cli import main
    np.save(tmp_path / "x.npy", np.random.default_rng(0).integers(0, 256, (6, 1, 8, 8), dtype=np.uint8))
    ebmlab.train("auto", str(tmp_path / "x.npy"), out=tmp_path / "r", **TINY)
    assert main(["eval", str(tmp_path / "r"), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert "mmd2" not in res and "1 held-out" in res["mmd2_note"], res


def test_binary_images_too_small_for_the_conv_net_name_the_mlp(tmp_path):
    """Before: binary 'images' (N, 1, 1, 8) with the default net got "a binary image network needs ... H, W >= 2",
    naming no way out; the MLP (--net mlp) models them."""
    x = (np.random.default_rng(0).random((40, 1, 1, 8)) < 0.4).astype(np.float32)
    with pytest.raises(EBMError, match="net mlp"):
        ebmlab.train("auto", x, out=tmp_path / "r", **TINY)
    assert not (tmp_path / "r").exists()
    assert ebmlab.train("mlp", x, **TINY).status == "finished"


class _PILImages(torch.utils.data.Dataset):
    """10 RGB PIL images with labels, as a torchvision ImageFolder without a transform yields them."""

    def __len__(self):
        return 10

    def __getitem__(self, i):
        return Image.fromarray(np.full((8, 8, 3), 20 * i, np.uint8)), i % 2


def test_a_dataset_of_pil_images_is_told_how_to_convert_them():
    """Before: "dataset item 0 is a Image; items must be tensors" — no word on how to get tensors from a PIL
    image, the commonest image Dataset item."""
    with pytest.raises(EBMError, match=r"PIL image.*PILToTensor.*uint8"):
        ebmlab.train("auto", _PILImages(), **TINY)


def test_an_npz_archive_is_told_to_be_saved_as_npy(tmp_path):
    """Before: "cannot read data 'x.npz': give a .npy file, ..." — true, but not how to get one from an archive."""
    np.savez(tmp_path / "x.npz", x=np.zeros((10, 1, 8, 8), np.uint8))
    with pytest.raises(EBMError, match=r"\.npz archive.*np\.save"):
        ebmlab.train("auto", str(tmp_path / "x.npz"), out=tmp_path / "r", **TINY)
    assert not (tmp_path / "r").exists()


@pytest.mark.filterwarnings("ignore:loaded 3 images")     # the folder's skipped files: another test's subject
def test_a_folder_resized_below_four_pixels_names_image_size(tmp_path):
    """Before: --image-size 3 on a folder was told "crop or resize them", though --image-size is the lever."""
    root = _folder(tmp_path / "imgs", links=False)
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(root / "c.png")
    with pytest.raises(EBMError, match=r"--image-size 3 is too small.*--image-size 4"):
        ebmlab.train("auto", str(root), out=tmp_path / "r", image_size=3, **TINY)
    assert not (tmp_path / "r").exists()


def test_ebmlab_train_on_a_folder_warns_about_skipped_files(tmp_path):
    """Before: from Python, skipped files of a folder were only in data.json (the CLI now prints them too)."""
    root = _folder(tmp_path / "imgs", links=False)
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(root / "c.png")
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ebmlab.train("auto", str(root), image_size=4, **TINY)
    said = [str(w.message) for w in caught if "loaded 3 images" in str(w.message)]
    assert len(said) == 1 and "bad.png" in said[0] and "notes.txt" in said[0], [str(w.message) for w in caught]


def test_only_the_first_process_warns_about_a_folders_skipped_files(tmp_path, monkeypatch):
    """Before: every process of an --nproc run printed the skipped-files warning. Rank 1 of 2 (torchrun's
    environment stood in for) now stays quiet; it is stopped where it would join the process group."""
    import warnings
    from ebmlab.errors import EBMError
    from ebmlab.training import distributed
    root = _folder(tmp_path / "imgs", links=False)
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(root / "c.png")
    monkeypatch.setattr(distributed, "current", lambda: distributed.Group(1, 2, 1))

    def stop(device):
        raise EBMError("stopped before joining the group")
    monkeypatch.setattr(distributed, "init", stop)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(EBMError, match="stopped before joining"):
            ebmlab.train("auto", str(root), image_size=4, **TINY)
    assert not [w for w in caught if "bad.png" in str(w.message)], [str(w.message) for w in caught]
