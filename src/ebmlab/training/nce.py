"""Noise-contrastive estimation (Gutmann & Hyvärinen 2010): logistic regression of data against noise.

The model log p(x) = f(x) - log Z with log Z a free parameter (``NCENoise`` holds nothing of the
model; ``training.objectives.NCE`` owns the log Z parameter). With ν noise points per data point,
G(x) = f(x) - log Z - log q(x) - log ν and the loss
    -mean_data log σ(G(x)) - ν mean_noise log σ(-G(y)),
whose minimiser is the data density with log Z its exact normaliser — NCE learns log Z, and is
consistent for any noise q that covers the data. How fast it converges depends on q being close to
the data: far noise is told apart by a trivial classifier that says nothing about the data's shape.

The noise: a Gaussian mixture fitted to the training data by scikit-learn's ``GaussianMixture``
(full covariances). ebmlab's choice: 8 components in dimension <= 3, where a mixture fits a
multi-modal set closely (a single Gaussian over eight separated modes puts most noise between
them) and EM is cheap and stable; one full-covariance Gaussian above that, where a mixture's
covariances need far more data than a run has and EM becomes slow and unstable. Measured in 2-D
against one Gaussian (benchmarks/results/objectives2d_nce_noise_s12.md, three seeds): one Gaussian
wins separated blobs (eight-gaussians, checkerboard) but loses thin curves (two-spirals), moons and
two held-out many-mode shapes, so 8 stays the default in low dimension. Sampling and
log q are torch ops on the device drawing from the trainer's generator, so resume stays exact.

A model with a support box (ebmlab's vector models) gets a tenth of its noise uniform over the box:
NCE only constrains f where data or noise fall, and a mixture fitted tightly to separated modes
puts almost no noise in the box's empty corners, where f then stays wherever initialisation left
it — measured on eight-gaussians: learned log Z 0.07 against the network's exact 0.77 by
quadrature without the uniform part.
"""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from ebmlab.errors import EBMError

MAX_FIT_POINTS = 20000         # rows of the training set the mixture is fitted on (a seeded subset)


def auto_components(dim: int) -> int:
    """The default number of mixture components (module docstring: why 8 and why 1)."""
    return 8 if dim <= 3 else 1


class NCENoise:
    """A Gaussian mixture q over flattened events: weights [K], means [K, d], Cholesky factors [K, d, d].

    Built by ``fit`` (or from ``state_dict``); ``sample(n, gen)`` -> [n, *event]; ``log_prob(x)`` -> [B].
    """

    def __init__(self, weights: torch.Tensor, means: torch.Tensor, chol: torch.Tensor,
                 event_shape: tuple[int, ...], box: torch.Tensor | None = None, uniform: float = 0.0) -> None:
        self.weights, self.means, self.chol = weights, means, chol
        self.event_shape = tuple(event_shape)
        # optional uniform part over a box [d, 2] with weight ``uniform`` (module docstring)
        self.box = None if box is None or uniform <= 0 else box.to(means.device, torch.float32)
        self.uniform = float(uniform) if self.box is not None else 0.0
        if self.box is not None:
            self._log_vol = float((self.box[:, 1] - self.box[:, 0]).double().log().sum())
        self._log_w = weights.log()
        d = means.shape[1]
        # log N(y; μ_k, Σ_k) = -½‖L_k⁻¹(y - μ_k)‖² - Σ log diag L_k - d/2 log 2π
        self._const = -chol.diagonal(dim1=1, dim2=2).log().sum(1) - 0.5 * d * math.log(2 * math.pi)

    @classmethod
    def fit(cls, x: torch.Tensor, components: int, seed: int, device: torch.device,
            box: torch.Tensor | None = None, uniform: float = 0.1) -> "NCENoise":
        """Fit to x [N, *event] (model scale) on the CPU in float64; the result lives on ``device``.
        ``box`` [d, 2]: the model's support, which then gets ``uniform`` of the noise."""
        from sklearn.mixture import GaussianMixture
        from threadpoolctl import threadpool_limits
        event = tuple(x.shape[1:])
        flat = x.reshape(x.shape[0], -1).double()
        if flat.shape[0] > MAX_FIT_POINTS:
            idx = torch.randperm(flat.shape[0], generator=torch.Generator().manual_seed(seed))[:MAX_FIT_POINTS]
            flat = flat[idx]
        k = min(components, flat.shape[0])
        # reg_covar relative to the data's variance: constant pixels (digits' borders) stay invertible
        scale = float(flat.var(0).mean()) if flat.shape[0] > 1 else 1.0
        gm = GaussianMixture(n_components=k, covariance_type="full", reg_covar=1e-4 * max(scale, 1e-12),
                             random_state=seed % 2**32, max_iter=200)
        try:
            # one BLAS thread: EM on <= 20 000 small rows gains nothing from more, and on a shared
            # machine the default (one per core) oversubscribes it badly
            with threadpool_limits(1):
                gm.fit(flat.cpu().numpy())
        except ValueError as e:
            raise EBMError(f"nce: cannot fit the noise distribution to the training data: {str(e).splitlines()[0]}")
        w = torch.as_tensor(gm.weights_, dtype=torch.float64)
        mu = torch.as_tensor(gm.means_, dtype=torch.float64)
        chol = torch.linalg.cholesky(torch.as_tensor(gm.covariances_, dtype=torch.float64))
        return cls(w.float().to(device), mu.float().to(device), chol.float().to(device), event, box, uniform)

    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """n draws [n, *event] of q, from ``gen`` (on the device of the mixture)."""
        dev = self.means.device
        comp = torch.multinomial(self.weights, n, replacement=True, generator=gen)
        z = torch.randn((n, self.means.shape[1]), generator=gen, device=dev)
        y = self.means[comp] + torch.einsum("nij,nj->ni", self.chol[comp], z)
        if self.box is not None:     # always drawn, so the generator advances alike whatever is kept
            u = torch.rand((n,), generator=gen, device=dev) < self.uniform
            lo, width = self.box[:, 0], self.box[:, 1] - self.box[:, 0]
            flat = lo + width * torch.rand((n, self.means.shape[1]), generator=gen, device=dev)
            y = torch.where(u[:, None], flat, y)
        return y.reshape(n, *self.event_shape)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log q(x): [B, *event] -> [B]."""
        flat = x.reshape(x.shape[0], -1).float()
        diff = flat[:, None, :] - self.means[None]                                   # [B, K, d]
        k, d = self.means.shape
        sol = torch.linalg.solve_triangular(self.chol, diff.permute(1, 2, 0), upper=False)   # [K, d, B]
        maha = sol.pow(2).sum(1).T                                                   # [B, K]
        log_gmm = torch.logsumexp(self._log_w + self._const - 0.5 * maha, dim=1)
        if self.box is None:
            return log_gmm
        inside = ((flat >= self.box[:, 0]) & (flat <= self.box[:, 1])).all(1)
        log_u = torch.where(inside, torch.full_like(log_gmm, math.log(self.uniform) - self._log_vol),
                            torch.full_like(log_gmm, float("-inf")))
        return torch.logaddexp(math.log1p(-self.uniform) + log_gmm, log_u)

    def state_dict(self) -> dict[str, torch.Tensor]:
        st = {"weights": self.weights, "means": self.means, "chol": self.chol,
              "event_shape": torch.tensor(self.event_shape, dtype=torch.int64)}
        if self.box is not None:
            st.update(box=self.box, uniform=torch.tensor(self.uniform, dtype=torch.float64))
        return st

    @classmethod
    def from_state(cls, st: dict[str, torch.Tensor], device: torch.device) -> "NCENoise":
        return cls(st["weights"].to(device), st["means"].to(device), st["chol"].to(device),
                   tuple(int(v) for v in st["event_shape"]), st.get("box"),
                   float(st["uniform"]) if "uniform" in st else 0.0)


def nce_loss(f_data: torch.Tensor, f_noise: torch.Tensor, logq_data: torch.Tensor, logq_noise: torch.Tensor,
             log_z: torch.Tensor, ratio: int = 1) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """NCE's logistic loss (module docstring) for ν = ``ratio`` noise points per data point.

    Args:
        f_data: [B] f on data; f_noise: [B ν] f on noise (-inf outside a model's support box is
            allowed: such a point is surely noise and adds nothing); logq_*: log q at the same points;
        log_z: scalar, the learned log normaliser.
    Stats: ``nce_acc`` (fraction of data and noise classified right), ``log_z``.
    """
    log_nu = math.log(ratio)
    g_data = f_data - log_z - logq_data - log_nu
    g_noise = f_noise - log_z - logq_noise - log_nu
    loss = -(F.logsigmoid(g_data).mean() + ratio * F.logsigmoid(-g_noise).mean())
    with torch.no_grad():
        acc = ((g_data > 0).float().sum() + (g_noise < 0).float().sum()) / (g_data.numel() + g_noise.numel())
    return loss, {"nce_acc": acc, "log_z": log_z.detach().reshape(())}
