"""scikit-learn density baselines; their ``score_samples`` is an exact normalised log density over R^2.

* GaussianMixture (full covariances): n_components chosen by BIC on the train split over
  ``GMM_COMPONENTS``; ``random_state=seed``.
* KernelDensity (Gaussian kernel): bandwidth chosen by 3-fold cross-validated log likelihood
  over ``KDE_BANDWIDTHS`` (GridSearchCV on a ``KDE_CV_POINTS`` subsample of the train split, to
  keep it CPU-sized), then refitted on the whole train split.
"""
from __future__ import annotations

import time

import numpy as np

GMM_COMPONENTS = (4, 8, 16, 32, 48)
KDE_BANDWIDTHS = (0.03, 0.05, 0.08, 0.12, 0.18, 0.25)
KDE_CV_POINTS = 6000


def gmm(x_train: np.ndarray, x_test: np.ndarray, seed: int) -> dict:
    from sklearn.mixture import GaussianMixture

    t0 = time.perf_counter()
    best, best_bic = None, np.inf
    for k in GMM_COMPONENTS:
        m = GaussianMixture(k, covariance_type="full", random_state=seed, max_iter=200).fit(x_train)
        bic = m.bic(x_train)
        if bic < best_bic:
            best, best_bic = m, bic
    seconds = time.perf_counter() - t0
    nll = float(-best.score_samples(x_test).mean())
    return {"nll": nll, "seconds": seconds, "detail": f"k={best.n_components}"}


def kde(x_train: np.ndarray, x_test: np.ndarray, seed: int) -> dict:
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.neighbors import KernelDensity

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    sub = x_train[rng.choice(len(x_train), min(KDE_CV_POINTS, len(x_train)), replace=False)]
    search = GridSearchCV(KernelDensity(kernel="gaussian"), {"bandwidth": list(KDE_BANDWIDTHS)},
                          cv=KFold(3, shuffle=True, random_state=seed)).fit(sub)
    # the CV optimum was fitted on folds of 2/3 * n_sub points, a little wide for n_train
    # points: rescale by the n^(-1/6) rate of a 2-D Gaussian-kernel bandwidth
    bw = search.best_params_["bandwidth"] * (2 * len(sub) / 3 / len(x_train)) ** (1 / 6)
    model = KernelDensity(kernel="gaussian", bandwidth=bw).fit(x_train)
    seconds = time.perf_counter() - t0
    nll = float(-model.score_samples(x_test).mean())
    return {"nll": nll, "seconds": seconds, "detail": f"bw={bw:.3f}"}
