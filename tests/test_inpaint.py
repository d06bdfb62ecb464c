"""Inpainting/denoising as masked Langevin, checked on a Gaussian fitted to the train digits.

For a Gaussian f the conditional mean of the missing pixels is known in closed form, so the
test can say both "better than filling with the data mean" and "close to the best possible".
"""
from __future__ import annotations

import pytest
import torch

from ebmlab.data.images import load_digits_images
from ebmlab.errors import EBMError
from ebmlab.nets.image import SmallConvNet
from ebmlab.tasks.inpaint import denoise, inpaint, make_mask
from ebmlab.models.energy import EnergyModel

LAM = 0.05   # ridge on the covariance: digits have constant pixels, and it bounds the stiffness


@pytest.fixture(scope="module")
def gauss():
    tr = load_digits_images("train", model_scale=True).flatten(1).double()
    mu, cov = tr.mean(0), torch.cov(tr.T) + LAM * torch.eye(64, dtype=torch.float64)
    prec = torch.linalg.inv(cov)
    p32, m32 = prec.float(), mu.float()

    def f(x):
        d = x.flatten(1) - m32
        return -0.5 * ((d @ p32) * d).sum(1)
    step = 0.5 / float(torch.linalg.eigvalsh(prec).max())      # stable: below 2 / largest curvature
    return f, mu, cov, step


def _cond_mean(mu, cov, x, m):
    """E[missing | observed] for the Gaussian, per image (the best possible fill in MSE)."""
    out = x.flatten(1).double().clone()
    for i in range(len(out)):
        mi = m[i].flatten()
        o = ~mi
        out[i, mi] = mu[mi] + cov[mi][:, o] @ torch.linalg.solve(cov[o][:, o], out[i, o] - mu[o])
    return out.view_as(x).float()


@pytest.mark.parametrize("kind,max_ratio", [("box", 0.65), ("random", 0.6), ("left-half", 0.8)])
def test_inpaint_beats_mean_fill(gauss, kind, max_ratio):
    f, mu, cov, step = gauss
    te = load_digits_images("test", model_scale=True)[:120]
    m = make_mask(kind, te.shape, torch.Generator().manual_seed(0))
    free = m.expand_as(te)
    mse = lambda y: float(((y - te)[free] ** 2).mean())    # noqa: E731
    mean_fill = torch.where(free, mu.float().view(1, 1, 8, 8).expand_as(te), te)
    out = inpaint(f, te, m, n_steps=200, step_size=step, noise_scale=0.0,
                  generator=torch.Generator().manual_seed(1))
    assert torch.equal(out[~free], te[~free])                 # observed pixels never move
    assert float(out.abs().max()) <= 1.0
    assert mse(out) < max_ratio * mse(mean_fill)
    # and the chain actually reaches (close to) the conditional mean, the optimum in MSE
    assert mse(out) < 1.1 * mse(_cond_mean(mu, cov, te, free))


def test_inpaint_reproducible_and_inits(gauss):
    f, _, _, step = gauss
    x = load_digits_images("test", model_scale=True)[:4]
    m = make_mask("box", x.shape)
    a = inpaint(f, x, m, n_steps=5, step_size=step, generator=torch.Generator().manual_seed(3))
    b = inpaint(f, x, m, n_steps=5, step_size=step, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    z = inpaint(f, x, m, n_steps=0, init="zeros")
    assert bool((z[m.expand_as(x)] == 0).all())
    assert torch.equal(inpaint(f, x, m, n_steps=0, init="keep"), x)


def test_make_mask_shapes():
    g = torch.Generator().manual_seed(0)
    box = make_mask("box", (2, 3, 8, 8))
    assert box.shape == (2, 1, 8, 8) and box.dtype == torch.bool and int(box[0].sum()) == 16
    assert bool(box[0, 0, 2:6, 2:6].all())
    lh = make_mask("left-half", (8, 6))
    assert lh.shape == (1, 1, 8, 6) and bool(lh[..., :3].all()) and not bool(lh[..., 3:].any())
    r = make_mask("random", (64, 1, 8, 8), g, missing_fraction=0.3)
    assert abs(float(r.float().mean()) - 0.3) < 0.03
    with pytest.raises(EBMError):
        make_mask("circle", (1, 1, 8, 8))


def test_inpaint_bad_inputs(gauss):
    model = EnergyModel(SmallConvNet(1, 8))
    x = torch.zeros(2, 1, 8, 8)
    with pytest.raises(EBMError, match="model takes images"):
        inpaint(model, torch.zeros(2, 3, 8, 8), make_mask("box", (2, 3, 8, 8)), n_steps=1)
    with pytest.raises(EBMError, match="model takes images"):
        inpaint(model, torch.zeros(2, 1, 16, 16), make_mask("box", (16, 16)), n_steps=1)
    with pytest.raises(EBMError, match="mask shape"):
        inpaint(model, x, make_mask("box", (4, 4)), n_steps=1)
    with pytest.raises(EBMError, match="model scale"):
        inpaint(model, x + 255, make_mask("box", (8, 8)), n_steps=1)
    # a plain callable that cannot take the shape: one-line EBMError on the first step
    lin = torch.nn.Linear(64, 1)
    with pytest.raises(EBMError, match="cannot evaluate"):
        inpaint(lambda y: lin(y.flatten(1))[:, 0], torch.zeros(1, 3, 8, 8), make_mask("box", (8, 8)), n_steps=1)


def test_denoise_gaussian(gauss):
    f, mu, cov, step = gauss
    te = load_digits_images("test", model_scale=True)[:120]
    g = torch.Generator().manual_seed(2)
    sigma = 0.4
    noisy = te + sigma * torch.randn(te.shape, generator=g)
    err = lambda y: float(((y - te) ** 2).mean())          # noqa: E731
    out = denoise(f, noisy, n_steps=200, step_size=step / 2, noise_scale=0.0, noise_sigma=sigma)
    assert err(out) < 0.75 * err(noisy.clamp(-1, 1))      # measured ~0.6
    # prior-only: a few steps help (measured 0.058 vs 0.099), many steps forget the input
    short = denoise(f, noisy, n_steps=5, step_size=step, noise_scale=0.0, generator=g)
    long = denoise(f, noisy, n_steps=100, step_size=step, noise_scale=0.0, generator=g)
    assert err(short) < 0.75 * err(noisy.clamp(-1, 1)) < err(long)
