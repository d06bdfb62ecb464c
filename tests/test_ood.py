"""OOD scores and AUROC: the statistic itself, the score directions, and the digits outlier sets."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from ebmlab import EBMError
from ebmlab.metrics.ood import auroc, ood_scores, ood_table
from ebmlab.metrics.outliers import (BUILTIN_OUTLIERS, builtin_outliers, digits_outliers, image_patches,
                                     shuffle_pixels, uniform_noise)
from ebmlab.tasks.evaluate import load_outlier_npy, outlier_sets, parse_ood_specs


def test_auroc_extremes():
    assert auroc([2.0, 3.0, 4.0], [0.0, 1.0]) == 1.0
    assert auroc([0.0, 1.0], [2.0, 3.0, 4.0]) == 0.0
    assert auroc([1.0, 1.0, 1.0], [1.0, 1.0]) == 0.5
    same = np.random.default_rng(0).normal(size=50)
    assert auroc(same, same) == 0.5


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 6, size=rng.integers(1, 40)).astype(float)  # small integer range: many ties
    b = rng.integers(0, 6, size=rng.integers(1, 40)).astype(float) - 1
    expect = roc_auc_score(np.r_[np.ones(a.size), np.zeros(b.size)], np.r_[a, b])
    assert auroc(torch.tensor(a), b) == pytest.approx(expect, abs=1e-12)


def test_auroc_bad_input():
    with pytest.raises(EBMError):
        auroc([], [1.0])
    with pytest.raises(EBMError):
        auroc([float("nan")], [1.0])


def gaussian_f(x: torch.Tensor) -> torch.Tensor:
    return -0.5 * (x.reshape(x.shape[0], -1) ** 2).sum(1)


def test_ood_scores_direction_and_values():
    x = torch.tensor([[0.1, 0.0], [3.0, 4.0]])
    s = ood_scores(gaussian_f, x, batch_size=1)
    torch.testing.assert_close(s["log_density"], torch.tensor([-0.005, -12.5]))
    torch.testing.assert_close(s["score_norm"], torch.tensor([-0.1, -5.0]))  # ∇f = -x
    # both higher for the typical point
    assert all(bool(v[0] > v[1]) for v in s.values())


def test_ood_table_separates_far_outliers():
    g = torch.Generator().manual_seed(0)
    x_in = torch.randn(200, 2, generator=g)
    rows = ood_table(gaussian_f, x_in, {"far": torch.randn(100, 2, generator=g) + 8.0, "same": x_in.clone()})
    assert [r["outlier"] for r in rows] == ["far", "same"]
    assert rows[0]["auroc_log_density"] == 1.0 and rows[0]["auroc_score_norm"] == 1.0
    assert rows[1]["auroc_log_density"] == 0.5 and rows[1]["n_out"] == 200
    with pytest.raises(EBMError):
        ood_table(gaussian_f, x_in, {"wrong-shape": torch.zeros(5, 3)})


def test_outlier_sets_shapes_ranges_and_determinism():
    g = torch.Generator().manual_seed(0)
    noise = uniform_noise(7, generator=g)
    assert noise.shape == (7, 1, 8, 8) and noise.min() >= -1 and noise.max() <= 1
    digits = torch.rand(5, 1, 8, 8, generator=g) * 2 - 1
    sh = shuffle_pixels(digits, generator=g)
    assert torch.equal(sh.reshape(5, -1).sort(1).values, digits.reshape(5, -1).sort(1).values)
    assert not torch.equal(sh, digits)
    p1 = image_patches(6, generator=torch.Generator().manual_seed(3))
    p2 = image_patches(6, generator=torch.Generator().manual_seed(3))
    assert p1.shape == (6, 1, 8, 8) and torch.equal(p1, p2)
    assert p1.min() >= -1 and p1.max() <= 1 and p1.std() > 0
    sets = digits_outliers(digits.reshape(5, 64), n=4, generator=g)
    assert set(sets) == set(BUILTIN_OUTLIERS)
    assert all(v.shape == (4, 64) for v in sets.values())


# ---- AUROC algebra ------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(3))
def test_auroc_algebra_swap_and_negate(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 5, size=30).astype(float)        # ties inside and across the two sets
    b = rng.integers(0, 5, size=20).astype(float) - 0.5 * seed
    v = auroc(a, b)
    assert auroc(b, a) == pytest.approx(1 - v, abs=1e-12)      # swapping the classes flips it
    assert auroc(-a, -b) == pytest.approx(1 - v, abs=1e-12)    # so does reversing the score
    assert auroc(a + 100, b) == 1.0                             # perfect separation
    assert auroc(a, a.copy()) == 0.5                            # identical sets: chance


def test_auroc_infinite_scores_tie_like_any_other_value():
    # f = -inf outside a support box: equal -inf scores are one tie, not distinct ranks
    assert auroc([-np.inf, -np.inf], [-np.inf]) == 0.5
    assert auroc([-np.inf, 1.0], [-np.inf, 0.0]) == pytest.approx(
        roc_auc_score([1, 1, 0, 0], [-1e300, 1.0, -1e300, 0.0]))


def test_score_norm_is_minus_inf_outside_the_support():
    from ebmlab import EnergyModel
    model = EnergyModel(torch.nn.Linear(2, 1), bounds=[[-1, 1], [-1, 1]])
    s = ood_scores(model, torch.tensor([[0.0, 0.0], [5.0, 5.0]]))
    assert torch.isfinite(s["score_norm"][0]) and s["score_norm"][1] == float("-inf")
    assert s["log_density"][1] == float("-inf")


# ---- built-in outlier sets at any event shape ------------------------------------------------------

@pytest.mark.parametrize("event", [(1, 8, 8), (3, 16, 12), (3, 64, 64)])
def test_builtin_image_sets_shapes_ranges(event):
    x = torch.rand(6, *event, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for name in BUILTIN_OUTLIERS:
        o = builtin_outliers(name, x, "image", seed=1)
        assert o.shape == x.shape and o.dtype == x.dtype, name
        assert o.min() >= -1 and o.max() <= 1 and o.std() > 0, name
        assert torch.equal(o, builtin_outliers(name, x, "image", seed=1)), name          # seeded
        assert not torch.equal(o, builtin_outliers(name, x, "image", seed=2)), name
    sh = builtin_outliers("shuffled", x, "image", seed=0)
    assert torch.equal(sh.reshape(6, -1).sort(1).values, x.reshape(6, -1).sort(1).values)   # per image


def test_photo_patches_colour_and_grey():
    rgb = image_patches(4, (16, 12), generator=torch.Generator().manual_seed(0), channels=3)
    assert rgb.shape == (4, 3, 16, 12)
    assert (rgb[:, 0] - rgb[:, 2]).abs().max() > 0.05            # colour kept, not three grey planes
    big = image_patches(2, 600, generator=torch.Generator().manual_seed(0))   # larger than the photos
    assert big.shape == (2, 1, 600, 600) and big.min() >= -1 and big.max() <= 1
    with pytest.raises(EBMError, match="channels"):
        builtin_outliers("photo-patches", torch.zeros(3, 2, 8, 8), "image")


def test_builtin_vector_sets():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, generator=g)
    bounds = [[-1.0, 1.0], [0.0, 10.0], [5.0, 6.0]]
    u = builtin_outliers("uniform", x, "vector", bounds, n=400, seed=0)
    assert u.shape == (400, 3)
    for j, (lo, hi) in enumerate(bounds):
        assert u[:, j].min() >= lo and u[:, j].max() <= hi and u[:, j].max() - u[:, j].min() > 0.8 * (hi - lo)
    sh = builtin_outliers("shuffled", x, "vector", bounds, seed=0)
    assert torch.equal(sh.sort(0).values, x.sort(0).values)      # every coordinate's values kept
    assert not torch.equal(sh, x)
    with pytest.raises(EBMError, match="photo-patches"):
        builtin_outliers("photo-patches", x, "vector", bounds)
    with pytest.raises(EBMError, match="unknown"):
        builtin_outliers("gaussian", x, "vector", bounds)


def test_parse_ood_specs():
    assert parse_ood_specs(["uniform,shuffled", "a/b.npy", "uniform", " photo-patches "]) == \
        ["uniform", "shuffled", "a/b.npy", "photo-patches"]
    assert parse_ood_specs("x.NPY") == ["x.NPY"]
    for bad in (["cifar"], [","], ["uniform,noise.txt"]):
        with pytest.raises(EBMError):
            parse_ood_specs(bad)


def test_outlier_npy_shape_and_scale(tmp_path):
    from ebmlab.data.scaling import Scaling
    np.save(tmp_path / "ok.npy", np.full((3, 1, 8, 8), 16.0, np.float32))      # digits scale 0..16
    np.save(tmp_path / "flat.npy", np.zeros((3, 64), np.float32))
    np.save(tmp_path / "nan.npy", np.full((3, 1, 8, 8), np.nan, np.float32))
    x_ref = torch.zeros(4, 1, 8, 8)
    sets = outlier_sets(["uniform", str(tmp_path / "ok.npy")], x_ref, "image", scaling=Scaling.from_range(0, 16))
    assert list(sets) == ["uniform", "ok.npy"] and torch.equal(sets["ok.npy"], torch.ones(3, 1, 8, 8))
    with pytest.raises(EBMError, match=r"\(M, 1, 8, 8\)"):
        load_outlier_npy(tmp_path / "flat.npy", (1, 8, 8))
    with pytest.raises(EBMError, match="NaN"):
        load_outlier_npy(tmp_path / "nan.npy", (1, 8, 8))


def test_gaussian_model_separates_far_and_uniform_points():
    """A tiny Gaussian-shaped model: AUROC > 0.9 against far points and against a wide uniform box."""
    g = torch.Generator().manual_seed(0)
    x_in = torch.randn(300, 2, generator=g)
    sets = outlier_sets(["uniform", "shuffled"], x_in, "vector", bounds=[[-10, 10], [-10, 10]], seed=0)
    sets["far"] = torch.randn(100, 2, generator=g) * 0.5 + torch.tensor([6.0, -6.0])
    rows = {r["outlier"]: r for r in ood_table(gaussian_f, x_in, sets)}
    assert rows["far"]["auroc_log_density"] > 0.9 and rows["far"]["auroc_score_norm"] > 0.9
    assert rows["uniform"]["auroc_log_density"] > 0.9 and rows["uniform"]["auroc_score_norm"] > 0.9
    # independent coordinates: shuffling them gives the same distribution, so chance level
    assert abs(rows["shuffled"]["auroc_log_density"] - 0.5) < 0.1


def test_eval_cli_ood_rows(tmp_path, capsys):
    """`ebmlab eval RUN --ood uniform,shuffled --ood far.npy`: one row per set, far points separated by f."""
    import json
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent))
    from helpers_runs import TINY, tiny_data
    from ebmlab.cli import main
    from ebmlab.training.api import start_run
    trainer, _ = start_run(str(tiny_data(tmp_path / "x.npy")), tmp_path / "run", **{**TINY, "steps": 3})
    trainer.fit()
    np.save(tmp_path / "far.npy", np.random.default_rng(0).normal(size=(30, 2)).astype(np.float32) + 30.0)
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run"), "--ood", "uniform,shuffled", "--ood", str(tmp_path / "far.npy"),
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["ood"]
    assert [r["outlier"] for r in rows] == ["uniform", "shuffled", "far.npy"]
    assert rows[2]["n_out"] == 30 and rows[2]["auroc_log_density"] == 1.0 and rows[2]["auroc_score_norm"] == 1.0
    assert main(["eval", str(tmp_path / "run"), "--ood", "uniform", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "|grad f| (low = in)" in out and "\nuniform " in out


def test_ood_scores_move_inputs_to_the_models_dtype_and_device():
    """x went to f as given: a float64 model raised torch's dtype error on float32 inputs, and a model on
    a GPU a device error on the CPU test set ``ebmlab eval --ood`` passes. Each batch now follows the weights."""
    from ebmlab.models.energy import EnergyModel
    from ebmlab.nets.mlp import MLP
    torch.manual_seed(0)
    m = EnergyModel(MLP(2, 8, 1))
    m64 = EnergyModel(MLP(2, 8, 1)).double()
    m64.load_state_dict(m.state_dict())
    x = torch.randn(20, 2, generator=torch.Generator().manual_seed(1))
    s32, s64 = ood_scores(m, x, batch_size=8), ood_scores(m64, x, batch_size=8)
    for key in s32:
        assert torch.allclose(s64[key].float(), s32[key], atol=1e-5), key
    if torch.cuda.is_available():
        on_gpu = ood_scores(m.cuda(), x, batch_size=8)
        assert all(torch.allclose(on_gpu[k], s32[k], atol=1e-5) for k in s32)
