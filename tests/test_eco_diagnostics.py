"""Rank-normalised R-hat and bulk-ESS (Vehtari et al. 2021), and what eval shows of them."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ebmlab.metrics.diagnostics import bulk_ess, rank_rhat, split_rhat


def _reference(trace: np.ndarray) -> float:
    """ArviZ's rank R-hat written from the paper with scipy's ranks and normal quantiles (chains as columns)."""
    def split(a):
        h = a.shape[0] // 2
        return np.concatenate([a[:h], a[a.shape[0] - h:]], axis=1)

    def z(a):
        r = stats.rankdata(a, method="average").reshape(a.shape)
        return stats.norm.ppf((r - 0.375) / (a.size + 0.25))

    def rhat(a):
        n = a.shape[0]
        b, w = n * a.mean(0).var(ddof=1), a.var(0, ddof=1).mean()
        return np.sqrt((b / w + n - 1) / n)
    return max(rhat(z(split(trace))), rhat(z(split(np.abs(trace - np.median(trace))))))


def test_rank_rhat_matches_the_papers_definition_with_ties():
    g = np.random.default_rng(0)
    t = np.round(g.standard_normal((200, 4)) + np.array([0, 0, 0.3, 0]), 1)    # rounded: many ties
    assert rank_rhat(t) == pytest.approx(_reference(t), rel=1e-10)


def test_rank_rhat_sees_chains_that_differ_only_in_spread_and_bulk_ess_ignores_monotone_maps():
    g = np.random.default_rng(1)
    n, c = 1000, 4
    same = g.standard_normal((n, c))
    spread = same * np.array([1.0, 1.0, 1.0, 3.0])        # one chain 3x wider, same mean
    # classic R-hat compares means only: blind to it; the tail (folded) rank R-hat is not
    assert split_rhat(spread) < 1.01
    assert rank_rhat(spread) > 1.05
    # iid chains: both about 1 (the spread of R-hat - 1 is O(1/sqrt(n c)))
    assert abs(rank_rhat(same) - 1) < 0.01 and abs(split_rhat(same) - 1) < 0.01
    # ranks are invariant to a monotone map of f (bulk-ESS exactly; the tail part folds at the median,
    # which is not)
    assert bulk_ess(np.exp(5 * spread)) == pytest.approx(bulk_ess(spread), rel=1e-12)


def test_bulk_ess_of_iid_is_about_n_and_of_ar1_about_theory():
    g = np.random.default_rng(2)
    n, c = 1000, 4
    ess = bulk_ess(g.standard_normal((n, c)))
    # the estimator's relative error for n c = 4000 iid draws is a few per cent (5 sigma: 0.15)
    assert abs(ess / (n * c) - 1) < 0.15
    phi = 0.8
    x = np.zeros((n, c))
    e = g.standard_normal((n, c))
    for t in range(1, n):
        x[t] = phi * x[t - 1] + np.sqrt(1 - phi**2) * e[t]
    want = n * c * (1 - phi) / (1 + phi)
    assert abs(bulk_ess(x) / want - 1) < 0.3
    assert np.shape(bulk_ess(np.stack([x, 2 * x], -1))) == (2,)


def test_eval_hides_rhat_for_short_run_models_and_explains_it_for_others(monkeypatch):
    import ebmlab.tasks.evaluate as ev
    from ebmlab.rundir.config import RunConfig

    class R:
        def __init__(self, negatives):
            self.config = RunConfig(negatives=negatives, mcmc_steps=10)
    g = np.random.default_rng(3)
    monkeypatch.setattr(ev, "chain_traces", lambda run, seed, c, n: {"f (log density)": g.standard_normal((n, c))})
    short = ev.chain_diagnostics(R("short-run"), 0)
    assert "chain_rhat_f" not in short and "10-step generator" in short["chain_rhat_note"]
    assert short["chain_ess_bulk_f"] > 0
    long = ev.chain_diagnostics(R("persistent"), 0)
    assert abs(long["chain_rhat_f"] - 1) < 0.05 and abs(long["chain_rhat_rank_f"] - 1) < 0.05
    assert "< 1.01" in long["chain_rhat_meaning"]


def test_eval_reports_the_digits_fd_ratio_for_digits_image_runs_only():
    import torch
    from ebmlab.data.sources import load_data
    from ebmlab.rundir.config import RunConfig
    from ebmlab.tasks.evaluate import digits_fd
    from ebmlab.tasks.open import Run
    c = RunConfig(data="digits", test_fraction=0.2)
    ds = load_data("digits", c.seed, c.n_test, c.test_fraction, None)
    run = Run(None, None, c, {"kind": "image", "event_shape": [1, 8, 8]})
    train = ds.to_model(ds.train)
    # held-out real digits score about 1; noise in [-1, 1] far above
    real = digits_fd(run, train[-300:], None, seed=0)
    noise = digits_fd(run, torch.rand(300, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1, None, 0)
    assert real["fd_ratio_n"] == 300 and 0.5 < real["fd_ratio_digits"] < 2.0
    assert noise["fd_ratio_digits"] > 10 * real["fd_ratio_digits"]
    assert "1 = real data" in real["fd_ratio_meaning"]
    assert digits_fd(Run(None, None, c.replace(data="eight-gaussians"), {"kind": "vector", "event_shape": [2]}),
                     train[:10], None, 0) == {}
