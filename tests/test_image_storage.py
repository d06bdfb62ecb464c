"""Issue #3: image sets are stored as uint8 and converted to the model's float32 scale per batch.

The old path converted the whole set to float32 [-1, 1] at load time; every test here rebuilds
that float path by hand and requires the new one to give the same float32 values bit for bit
(batches, chain starts, the resume fingerprint), and the loader to build a single uint8 copy.
"""
from __future__ import annotations

import hashlib
import tracemalloc

import numpy as np
import pytest
import torch
from PIL import Image

from ebmlab.data.images import load_digits_images, load_image_folder
from ebmlab.data.scaling import Scaling
from ebmlab.data.sources import load_data, permute_rows_, validate_array
from ebmlab.training.api import data_fingerprint, start_run
from ebmlab.training.negatives import make_init_fn

# data_fingerprint(load_data("digits")) as recorded in data.json by runs written before the change
DIGITS_TRAIN_SHA256 = "b3ef1038da4b3d447fc46684d9c2a0ff0f177141735032068e66b5b3716165f7"


def _old_split(x: torch.Tensor, seed: int, test_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    n = x.shape[0]
    n_test = max(1, int(round(n * test_fraction)))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return x[perm[n_test:]], x[perm[:n_test]]


def _folder(root, n=30, size=(12, 10), seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir(exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(root / f"{i:03d}.png")
    return root


def test_digits_are_stored_uint8_and_the_first_batch_equals_the_old_float_path():
    trainer, _ = start_run("digits", None, steps=2, mcmc_steps=1, batch_size=32, seed=5)
    ds = trainer.dataset
    assert ds.train.dtype == torch.uint8 and ds.test.dtype == torch.uint8
    assert ds.train.shape == (1437, 1, 8, 8) and int(ds.train.max()) == 16
    # the old path: float32 0..16, scaled as a whole to [-1, 1], batch = x[perm[:32]] of the data generator
    old_train = Scaling.from_range(0.0, 16.0).to_model(load_digits_images("train"))
    perm = torch.randperm(1437, generator=torch.Generator().manual_seed(5))
    x, y = trainer._next_batch()
    assert y is None and x.dtype == torch.float32
    assert torch.equal(x, old_train[perm[:32]])
    assert torch.equal(x, load_digits_images("train", model_scale=True)[perm[:32]])
    assert torch.equal(ds.to_model(ds.test), load_digits_images("test", model_scale=True))


def test_digits_fingerprint_is_the_one_existing_runs_recorded():
    ds = load_data("digits")
    assert data_fingerprint(ds) == DIGITS_TRAIN_SHA256
    old = Scaling.from_range(0.0, 16.0).to_model(load_digits_images("train"))
    assert hashlib.sha256(old.numpy().tobytes()).hexdigest() == DIGITS_TRAIN_SHA256


def test_folder_is_stored_uint8_and_converts_to_the_old_float_values(tmp_path):
    root = _folder(tmp_path / "imgs")
    ds = load_data(str(root), seed=3, test_fraction=0.2, image_size=8)
    assert ds.train.dtype == torch.uint8 and ds.train.shape == (24, 3, 8, 8) and ds.test.shape == (6, 3, 8, 8)
    x, _ = load_image_folder(root, 8)
    old = Scaling.from_range(0.0, 255.0).to_model(validate_array(x, "old"))     # float32 copy, then scaled
    old_train, old_test = _old_split(old, 3, 0.2)
    assert torch.equal(ds.to_model(ds.train), old_train) and torch.equal(ds.to_model(ds.test), old_test)
    assert data_fingerprint(ds) == hashlib.sha256(old_train.numpy().tobytes()).hexdigest()
    assert ds.describe["scaling"] == Scaling.from_range(0, 255).to_dict()


def test_uint8_npy_stays_uint8_and_reads_pixels_as_0_to_255_like_its_folder(tmp_path):
    """Before (0.13): a uint8 .npy was scaled by its observed min/max (here 20..219), so an `ebmlab prepare` cache
    trained in another model scale than the folder it was made from, and inpaint's PNGs (read as 0..255) did not
    match the model's scale."""
    rng = np.random.default_rng(1)
    a = rng.integers(20, 220, (40, 1, 6, 6), dtype=np.uint8)
    np.save(tmp_path / "u8.npy", a)
    ds = load_data(str(tmp_path / "u8.npy"), seed=2, test_fraction=0.25)
    assert ds.train.dtype == torch.uint8
    assert ds.scaling == Scaling.from_range(0, 255) and ds.describe["scaling"] == Scaling.from_range(0, 255).to_dict()
    old_train, old_test = _old_split(torch.from_numpy(a.astype(np.float32)), 2, 0.25)
    pixels = Scaling.from_range(0.0, 255.0)                # the folder's float path (test above)
    assert torch.equal(ds.to_model(ds.train), pixels.to_model(old_train))
    assert torch.equal(ds.to_model(ds.test), pixels.to_model(old_test))
    # its folder reads the same pixels the same way
    root = tmp_path / "imgs"
    root.mkdir()
    for i, img in enumerate(a[:, 0]):
        Image.fromarray(img).convert("RGB").convert("L").save(root / f"{i:03d}.png")
    folder = load_data(str(root), seed=2, test_fraction=0.25, image_size=6)
    assert folder.scaling == ds.scaling


def test_uint8_npy_of_zeros_and_ones_declared_continuous_keeps_0_to_1(tmp_path):
    a = np.random.default_rng(1).integers(0, 2, (40, 1, 6, 6), dtype=np.uint8)
    np.save(tmp_path / "bits.npy", a)
    ds = load_data(str(tmp_path / "bits.npy"), seed=0, binary=False)
    assert ds.scaling == Scaling.from_range(0, 1)          # 0..255 would crush every pixel to about -1
    assert set(ds.to_model(ds.train).unique().tolist()) == {-1.0, 1.0}


def test_a_run_written_with_the_observed_range_resumes_and_evaluates_in_its_own_scale(tmp_path):
    """A run's data.json scaling is its model scale: resume, eval and the memorisation check use it, not what
    today's rules infer for the same file (a uint8 .npy was scaled by its observed min/max before 0.14). Before,
    such a run's --resume was refused as "the training data has changed"."""
    import json
    from ebmlab.cli import main
    from ebmlab.tasks.open import open_run, test_data
    rng = np.random.default_rng(3)
    np.save(tmp_path / "u8.npy", rng.integers(20, 220, (40, 1, 8, 8), dtype=np.uint8))
    run_dir = tmp_path / "r"
    trainer, _ = start_run(str(tmp_path / "u8.npy"), run_dir, steps=4, mcmc_steps=2, batch_size=8,
                           checkpoint_every=2, seed=0)
    assert trainer.fit().status == "finished"
    # rewrite the run as 0.13 wrote it: the observed range of the training split, and that scale's fingerprint
    desc = json.loads((run_dir / "data.json").read_text())
    ds = load_data(str(tmp_path / "u8.npy"), seed=0, test_fraction=trainer.config.test_fraction)
    old = Scaling.from_range(float(ds.train.min()), float(ds.train.max()))
    assert old != Scaling.from_range(0, 255)
    desc["scaling"] = old.to_dict()
    ds.scaling = old
    desc["source"]["train_sha256"] = data_fingerprint(ds)
    (run_dir / "data.json").write_text(json.dumps(desc))
    assert torch.equal(test_data(open_run(run_dir)), old.to_model(ds.test))
    assert main(["train", "--resume", str(run_dir), "--steps", "6", "--quiet"]) == 0
    assert json.loads((run_dir / "config.json").read_text())["steps"] == 6


def test_float_npy_batches_equal_the_old_whole_set_conversion(tmp_path):
    a = (np.random.default_rng(2).random((30, 3, 4, 4)) * 7 - 2).astype(np.float32)
    np.save(tmp_path / "f.npy", a)
    ds = load_data(str(tmp_path / "f.npy"), seed=0)
    old_train, _ = _old_split(torch.from_numpy(a), 0, 0.1)
    old_model = Scaling.infer(old_train).to_model(old_train)
    assert torch.equal(ds.to_model(ds.train), old_model)
    assert torch.equal(torch.cat([ds.to_model(b) for b in ds.train.split(7)]), old_model)


def test_permute_rows_in_place_equals_indexing():
    g = torch.Generator().manual_seed(0)
    for n in (1, 2, 5, 64):
        x = torch.randint(0, 255, (n, 2, 3, 3), generator=g, dtype=torch.uint8)
        for order in (torch.randperm(n, generator=g), torch.arange(n), torch.arange(n).flip(0)):
            want = x[order]
            y = x.clone()
            ptr = y.data_ptr()
            permute_rows_(y, order)
            assert torch.equal(y, want) and y.data_ptr() == ptr


def test_to_model_never_changes_its_input():
    s = Scaling.from_range(0, 255)
    u = torch.arange(256, dtype=torch.uint8).reshape(4, 1, 8, 8)
    f = u.float()
    a, b = s.to_model(u), s.to_model(f)
    assert torch.equal(a, b) and a.dtype == torch.float32
    assert torch.equal(u, torch.arange(256, dtype=torch.uint8).reshape(4, 1, 8, 8))
    assert torch.equal(f, u.float())


def test_init_from_data_draws_the_old_chain_starts():
    ds = load_data("digits")
    desc = {"kind": "image", "event_shape": [1, 8, 8]}
    new = make_init_fn(desc, "data", ds.train, torch.device("cpu"), ds.to_model)
    old = make_init_fn(desc, "data", load_digits_images("train", model_scale=True), torch.device("cpu"))
    a = new(50, torch.Generator().manual_seed(9))
    b = old(50, torch.Generator().manual_seed(9))
    assert a.dtype == torch.float32 and torch.equal(a, b)


def test_folder_loading_builds_a_single_uint8_copy(tmp_path):
    """numpy allocations (tracked by tracemalloc) while loading and splitting a folder stay within
    one uint8 copy of the images plus file names and per-file decode buffers (measured 1.25x);
    the float32 path measured 6x."""
    root = _folder(tmp_path / "big", n=200, size=(32, 32), seed=4)
    stored = 200 * 3 * 32 * 32
    load_data(str(_folder(tmp_path / "warm", n=3)), image_size=8)     # lazy imports outside the count
    tracemalloc.start()
    try:
        ds = load_data(str(root), image_size=32)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ds.train.dtype == torch.uint8
    assert peak < 1.5 * stored, f"peak {peak} bytes for {stored} bytes of uint8 images"


@pytest.mark.parametrize("spec", ["eight-gaussians"])
def test_vector_sets_are_unchanged(spec):
    ds = load_data(spec)
    assert ds.scaling is None and ds.train.dtype == torch.float32 and ds.to_model(ds.train) is ds.train
