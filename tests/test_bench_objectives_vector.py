"""benchmarks/objectives_vector.py: the data's analytic density and the mode-mass estimate (nothing is trained)."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import objectives_vector as bench  # noqa: E402


@pytest.mark.parametrize("d", [8, 16])
def test_log_density_matches_scipy(d: int) -> None:
    """The mixture's log density is scipy's weighted sum of its components' densities (an independent formula)."""
    stats = pytest.importorskip("scipy.stats")
    m, c, w = bench.mixture(d)
    x, _ = bench.draw(d, 300, 5)
    x = np.concatenate([x, x[:50] + 3.0])                 # and points far from the data
    ours = bench.true_log_density(d, torch.from_numpy(x)).numpy()
    theirs = np.log(sum(w[k] * stats.multivariate_normal(m[k], c[k]).pdf(x.astype(np.float64))
                        for k in range(len(w))))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8)


def test_draws_follow_the_weights_and_regions_separate_the_modes() -> None:
    """Component frequencies of 20 000 draws within 4 binomial SE of the weights; the true-posterior regions
    give almost every point its own component (the modes are separated, so region weights = mode weights)."""
    n = 20000
    for d in (8, 16):
        x, k = bench.draw(d, n, 1)
        freq = np.bincount(k, minlength=len(bench.WEIGHTS)) / n
        w = np.array(bench.WEIGHTS)
        assert np.all(np.abs(freq - w) <= 4 * np.sqrt(w * (1 - w) / n)), (d, freq)
        agree = float((bench.region(d, torch.from_numpy(x)).numpy() == k).mean())
        assert agree > 0.99, (d, agree)


def test_mode_masses_of_the_true_density() -> None:
    """On the true (normalised) density the importance estimate gives log Z ~ 0 and the true weights. The
    proposal (covariance x 1.5) makes the weights' second moment (1.5 / sqrt(2)) ^ d ~ 1.6 at d = 8, so the
    relative SE of each mass with 4000 draws is ~ sqrt(0.6 / 4000) ~ 0.012: 0.05 nats and a TV of 0.03 are
    > 4 SE."""
    d = 8
    model = type("Truth", (), {"log_density": staticmethod(lambda x: bench.true_log_density(d, x))})()
    res = bench.mode_masses(model, d, 4000, seed=0)
    assert abs(res["log_z_is"]) < 0.05, res
    assert res["tv"] < 0.03, res
    assert all(e > 1000 for e in res["ess"]), res["ess"]
    assert math.isclose(sum(res["weights"]), 1.0, rel_tol=1e-9)


def test_bad_dims_exit_2(tmp_path: Path) -> None:
    """d <= 3 is the 2-D benchmark's: refused before anything is trained, nothing written."""
    out = tmp_path / "t.md"
    with pytest.raises(SystemExit) as e:
        bench.main(["--dims", "2", "--out", str(out)])
    assert e.value.code == 2
    assert not out.exists()


def test_peer_net_takes_the_data_dimension() -> None:
    """The peers' shared MLP (peers.make_net) is built for the data's d (it was fixed at 2 inputs), same seed ->
    same weights; an unknown row is refused before anything is trained."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from peers import make_net
    a, b = make_net(0, "linear", 8), make_net(0, "linear", 8)
    x = torch.randn(5, 8)
    assert a(x).shape == (5,)
    assert torch.equal(a(x), b(x))
    with pytest.raises(SystemExit) as e:
        bench.main(["--objectives", "ebmkit:cd", "--out", "/nonexistent/t.md"])
    assert e.value.code == 2
