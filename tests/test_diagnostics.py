"""ESS and split R-hat against processes with known answers; tolerances from the sample size.

Sokal's approximation for the relative variance of an integrated autocorrelation time estimated
with window M from N draws is 2 (2M + 1) / N; we take M generously (the Geyer cutoff is a few
autocorrelation times) and allow 4 of those standard deviations.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from ebmlab import EBMError
from ebmlab.metrics.diagnostics import effective_sample_size, split_rhat, summarize_chains


def ar1(phi: float, t: int, c: int, seed: int) -> np.ndarray:
    """Stationary AR(1) [T, C] with unit variance: x_t = φ x_{t-1} + sqrt(1 - φ²) e_t."""
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(t, c)) * math.sqrt(1 - phi ** 2)
    e[0] = rng.normal(size=c)                       # start in the stationary law
    return lfilter([1.0], [1.0, -phi], e, axis=0)


def rel_tol(tau: float, n: int, window_in_tau: float = 3.0) -> float:
    m = max(5.0, window_in_tau * tau)
    return 4.0 * math.sqrt(2.0 * (2.0 * m + 1.0) / n)


def test_ess_of_iid_chains_is_about_n():
    x = np.random.default_rng(0).normal(size=(2000, 4))
    n = x.size
    assert abs(effective_sample_size(x) / n - 1.0) < rel_tol(1.0, n)


@pytest.mark.parametrize("phi", [0.5, 0.9])
def test_ess_of_ar1_matches_theory(phi):
    t, c = 5000, 16
    x = ar1(phi, t, c, seed=1)
    tau = (1 + phi) / (1 - phi)
    expect = t * c / tau
    assert abs(effective_sample_size(x) / expect - 1.0) < rel_tol(tau, t * c)


def test_ess_per_dimension_and_torch_input():
    x = np.stack([ar1(0.0, 1000, 4, 2), ar1(0.9, 1000, 4, 3)], axis=2)   # [T, C, 2]
    ess = effective_sample_size(torch.from_numpy(x))
    assert ess.shape == (2,) and ess[0] > 3 * ess[1]


def test_rhat_near_one_for_mixed_chains():
    x = np.random.default_rng(4).normal(size=(1000, 8))
    # R-hat - 1 for iid chains is O(1/N) with N the draws per split chain; 0.01 is many times that
    assert abs(split_rhat(x) - 1.0) < 0.01


def test_rhat_flags_stuck_and_drifting_chains():
    rng = np.random.default_rng(5)
    stuck = rng.normal(size=(500, 4)) + np.array([-3.0, -3.0, 3.0, 3.0])   # two modes, never crossing
    assert split_rhat(stuck) > 1.1
    drift = rng.normal(size=(500, 4)) + np.linspace(0, 5, 500)[:, None]     # same in every chain:
    assert split_rhat(drift) > 1.1                                           # only the split sees it
    per_dim = split_rhat(np.stack([rng.normal(size=(500, 4)), stuck], axis=2))
    assert per_dim.shape == (2,) and per_dim[0] < 1.05 < per_dim[1]


def test_summarize_chains():
    rng = np.random.default_rng(6)
    acc = rng.uniform(0.4, 0.8, size=(200, 5))
    acc[:, 2] = 0.0                                  # one chain never moves
    ld = rng.normal(size=(200, 5))
    s = summarize_chains(acc, np.abs(rng.normal(size=(200, 5))), ld)
    assert s["stuck_chains"] == 1 and s["acceptance_min_chain"] == 0.0
    assert s["n_steps"] == 200 and s["n_chains"] == 5
    assert {"ess_log_density", "rhat_log_density", "grad_norm_mean", "acceptance"} <= set(s)
    assert "grad_norm_mean" not in summarize_chains(acc, None, ld)


def test_bad_traces_raise():
    with pytest.raises(EBMError, match="shaped"):
        effective_sample_size(np.zeros(10))
    with pytest.raises(EBMError, match="NaN"):
        split_rhat(np.full((10, 2), np.nan))
    with pytest.raises(EBMError, match="at least"):
        split_rhat(np.zeros((2, 3)))
    with pytest.raises(EBMError, match="chains"):
        summarize_chains(np.zeros((10, 3)), None, np.zeros((10, 4)))
