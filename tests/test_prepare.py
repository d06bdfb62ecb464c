"""``ebmlab prepare`` (a uint8 .npy image cache, resumable) and training on a cache streamed from disk."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ebmlab.data.sources as sources
import ebmlab.tasks.prepare as prepare
from ebmlab.cli import main
from ebmlab.data.npyfile import NpyRows
from ebmlab.errors import EBMError
from ebmlab.training.api import data_fingerprint
from helpers_runs import subprocess_env


def _celeba_like(root: Path, n: int = 12, seed: int = 0) -> Path:
    """A folder laid out like img_align_celeba/: 178x218 JPEGs, a few odd sizes, a nested folder,
    a grayscale PNG, a corrupt file and a non-image file."""
    g = np.random.default_rng(seed)
    (root / "nested" / "deeper").mkdir(parents=True)
    for i in range(n):
        w, h = (178, 218) if i % 4 else (int(g.integers(40, 300)), int(g.integers(40, 300)))
        sub = ["", "nested/", "nested/deeper/"][i % 3]
        Image.fromarray(g.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / f"{sub}{i + 1:06d}.jpg", quality=90)
    Image.fromarray(g.integers(0, 256, (50, 70), dtype=np.uint8)).save(root / "nested" / "gray.png")
    (root / "000099.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")       # corrupt
    (root / "list_attr_celeba.txt").write_text("not an image\n")
    return root


def _tree(d: Path) -> set[str]:
    return {p.relative_to(d).as_posix() for p in d.rglob("*")}


def test_prepare_shape_dtype_counts(tmp_path, capsys):
    src = _celeba_like(tmp_path / "img_align_celeba")
    out = tmp_path / "c.npy"
    before = _tree(tmp_path)
    assert main(["prepare", str(src), "--size", "16", "--out", str(out), "--crop", "celeba"]) == 0
    said = capsys.readouterr().out
    a = np.load(out)
    assert a.dtype == np.uint8 and a.shape == (13, 3, 16, 16)          # 12 JPEGs + the grayscale PNG
    assert "skipped 1 unreadable (000099.jpg)" in said and "skipped 1 non-image files (list_attr_celeba.txt)" in said
    assert _tree(tmp_path) == before | {"c.npy"}            # no partial or progress file left behind
    # the crop box cuts the face square before the resize: a 178x218 image whose box holds one colour
    im = np.zeros((218, 178, 3), np.uint8)
    im[40:188, 15:163] = (200, 30, 90)
    one = tmp_path / "one"
    one.mkdir()
    Image.fromarray(im).save(one / "face.png")
    prepare.prepare_cache(one, 8, tmp_path / "one.npy", crop="celeba")
    assert (np.load(tmp_path / "one.npy")[0].reshape(3, -1).T == (200, 30, 90)).all()


def test_all_grayscale_keeps_one_channel(tmp_path):
    d = tmp_path / "g"
    d.mkdir()
    for i in range(3):
        Image.fromarray(np.full((20, 30), 40 * i, np.uint8)).save(d / f"{i}.png")
    r = prepare.prepare_cache(d, 8, tmp_path / "g.npy")
    assert r.shape == (3, 1, 8, 8) and np.load(tmp_path / "g.npy").shape == (3, 1, 8, 8)


def test_interrupted_prepare_resumes_to_the_same_bytes(tmp_path, monkeypatch):
    src = _celeba_like(tmp_path / "src", n=14)
    whole = tmp_path / "whole.npy"
    prepare.prepare_cache(src, 12, whole, crop="celeba")
    monkeypatch.setattr(prepare, "PROGRESS_EVERY", 4)
    real, calls = prepare.decode_image, {"n": 0}

    def dies_after_9(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 9:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(prepare, "decode_image", dies_after_9)
    out = tmp_path / "resumed.npy"
    with pytest.raises(KeyboardInterrupt):
        prepare.prepare_cache(src, 12, out, crop="celeba")
    assert not out.exists()
    progress = json.loads((tmp_path / ".resumed.npy.progress.json").read_text())
    assert progress["done"] == 9 and (tmp_path / ".resumed.npy.partial").exists()
    monkeypatch.setattr(prepare, "decode_image", real)
    r = prepare.prepare_cache(src, 12, out, crop="celeba")
    assert r.resumed_at == 9 and r.folder.n_unreadable == 1
    assert out.read_bytes() == whole.read_bytes()
    assert not (tmp_path / ".resumed.npy.partial").exists() and not (tmp_path / ".resumed.npy.progress.json").exists()
    # a rerun with other arguments does not continue someone else's progress
    calls["n"] = 0
    monkeypatch.setattr(prepare, "decode_image", dies_after_9)
    other = tmp_path / "other.npy"
    with pytest.raises(KeyboardInterrupt):
        prepare.prepare_cache(src, 12, other, crop="center")
    monkeypatch.setattr(prepare, "decode_image", real)
    assert prepare.prepare_cache(src, 12, other, crop="celeba").resumed_at == 0
    assert other.read_bytes() == whole.read_bytes()


@pytest.mark.parametrize("case", ["exists", "empty", "only-text", "size0", "size-neg", "no-dir", "not-npy"])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, case):
    src = _celeba_like(tmp_path / "src", n=3)
    (tmp_path / "empty").mkdir()
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("x")
    (tmp_path / "there.npy").write_bytes(b"old")
    args = {"exists": [str(src), "--size", "8", "--out", str(tmp_path / "there.npy")],
            "empty": [str(tmp_path / "empty"), "--size", "8", "--out", str(tmp_path / "o.npy")],
            "only-text": [str(tmp_path / "text"), "--size", "8", "--out", str(tmp_path / "o.npy")],
            "size0": [str(src), "--size", "0", "--out", str(tmp_path / "o.npy")],
            "size-neg": [str(src), "--size", "-3", "--out", str(tmp_path / "o.npy")],
            "no-dir": [str(tmp_path / "missing"), "--size", "8", "--out", str(tmp_path / "o.npy")],
            "not-npy": [str(src), "--size", "8", "--out", str(tmp_path / "o.png")]}[case]
    before = _tree(tmp_path)
    assert main(["prepare", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ebmlab: error:"), err
    assert _tree(tmp_path) == before and (tmp_path / "there.npy").read_bytes() == b"old"


def test_force_replaces_and_all_corrupt_leaves_nothing(tmp_path):
    src = _celeba_like(tmp_path / "src", n=3)
    out = tmp_path / "c.npy"
    out.write_bytes(b"old")
    prepare.prepare_cache(src, 8, out, force=True)
    assert np.load(out).shape == (4, 3, 8, 8)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_bytes(b"nope")
    with pytest.raises(EBMError, match="no readable image"):
        prepare.prepare_cache(bad, 8, tmp_path / "b.npy")
    assert not any(p.name.startswith((".b.npy", "b.npy")) for p in tmp_path.iterdir())


def test_streamed_cache_equals_loading_it_whole(tmp_path, monkeypatch):
    """Above the size threshold a uint8 image .npy is read from disk by index; the split, values,
    scaling, labels and fingerprint are bit for bit those of the in-memory path, and the file is untouched."""
    a = np.random.default_rng(3).integers(7, 250, (50, 3, 5, 5), dtype=np.uint8)
    path = tmp_path / "u8.npy"
    np.save(path, a)
    np.save(tmp_path / "y.npy", np.arange(50) % 4)
    before = path.read_bytes()
    whole = sources.load_data(str(path), seed=4, test_fraction=0.2, labels=str(tmp_path / "y.npy"))
    monkeypatch.setattr(sources, "STREAM_MIN_BYTES", 0)
    streamed = sources.load_data(str(path), seed=4, test_fraction=0.2, labels=str(tmp_path / "y.npy"))
    assert isinstance(whole.train, torch.Tensor) and not isinstance(streamed.train, torch.Tensor)
    assert streamed.train.shape == whole.train.shape and streamed.train.dtype == torch.uint8
    assert torch.equal(streamed.train[:], whole.train) and torch.equal(streamed.test, whole.test)
    idx = torch.tensor([3, 3, 0, 39, 17])
    assert torch.equal(streamed.train[idx], whole.train[idx])
    assert streamed.scaling == whole.scaling and streamed.describe == whole.describe
    assert torch.equal(streamed.y_train, whole.y_train)
    assert data_fingerprint(streamed) == data_fingerprint(whole)
    assert path.read_bytes() == before


def test_npy_rows_reads_rows_in_any_order(tmp_path):
    a = np.arange(7 * 2 * 3, dtype=np.uint8).reshape(7, 2, 3)
    np.save(tmp_path / "a.npy", a)
    rows = NpyRows(tmp_path / "a.npy")
    for idx in ([6, 0, 1, 2, 5, 5], [], [3], [-1, 0]):
        assert np.array_equal(rows.take(np.array(idx, dtype=np.int64)), a[idx])
    with pytest.raises(IndexError):
        rows.take(np.array([7]))
    (tmp_path / "short.npy").write_bytes((tmp_path / "a.npy").read_bytes()[:-5])
    with pytest.raises(EBMError, match="truncated"):
        NpyRows(tmp_path / "short.npy")


_TRAIN_AND_REPORT = r"""
import resource, sys, torch
torch.set_num_threads(1)
import ebmlab
import ebmlab.data.sources as sources
from torch import nn
if sys.argv[2] == "whole":
    sources.STREAM_MIN_BYTES = 1 << 62           # the control: load the file whole
if sys.argv[1] != "-":
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 4, 4), nn.SiLU(), nn.Flatten(), nn.LazyLinear(1), nn.Flatten(0))
    net(torch.zeros(1, 3, 64, 64))
    ebmlab.train(net, sys.argv[1], sys.argv[3], steps=3, batch_size=16, mcmc_steps=2, progress=False,
                 checkpoint_every=3, plot_every=1000)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _peak_rss_kb(*args: str) -> int:
    r = subprocess.run([sys.executable, "-c", _TRAIN_AND_REPORT, *args], capture_output=True, text=True,
                       env=subprocess_env(), timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return int(r.stdout.split()[-1])


@pytest.mark.slow
def test_training_on_a_prepared_cache_does_not_hold_it_in_memory(tmp_path):
    """prepare 2000 64x64 RGB images (24.6 MB), train 3 steps on the cache in a subprocess: its peak RSS
    is within half the cache size of a 3-step run on a 40-image cache, while the same run with the file
    loaded whole (the control) is at least 80 % of the cache size above it."""
    src = tmp_path / "imgs"
    src.mkdir()
    g = np.random.default_rng(0)
    for i in range(2000):
        Image.fromarray(g.integers(0, 256, (72, 64, 3), dtype=np.uint8)).save(src / f"{i:06d}.png", compress_level=0)
    big = tmp_path / "big.npy"
    prepare.prepare_cache(src, 64, big)
    cache_kb = big.stat().st_size // 1024
    assert cache_kb >= 24_000
    small = tmp_path / "small.npy"
    np.save(small, np.load(big, mmap_mode="r")[:40])
    baseline = _peak_rss_kb("-", "stream", "-")
    small_kb = _peak_rss_kb(str(small), "stream", str(tmp_path / "r0"))
    streamed_kb = _peak_rss_kb(str(big), "stream", str(tmp_path / "r1"))
    whole_kb = _peak_rss_kb(str(big), "whole", str(tmp_path / "r2"))
    print(f"\ncache {cache_kb} KB; peak RSS: import only {baseline} KB, 40-image run {small_kb} KB, "
          f"streamed {streamed_kb} KB, loaded whole {whole_kb} KB")
    assert streamed_kb - small_kb < 0.5 * cache_kb
    assert whole_kb - small_kb > 0.8 * cache_kb
