"""Inpainting and denoising as conditional Langevin: sample the missing pixels given the rest.

With observed pixels o fixed, p(missing | o) ∝ exp(f(missing, o)), so Langevin on the free
pixels alone, with the observed ones written back after every step, samples the conditional.
The update on free pixels is ``x <- clamp(x + step_size * clip(∇f) + noise_scale * z, -1, 1)``
(``noise_scale = sqrt(2 * step_size)`` is exact Langevin; smaller noise, as in short-run
recipes, moves towards a conditional mode: a sharper, less diverse fill).

Images live in model scale [-1, 1] (see ``ebmlab.data.scaling``). The chains are the samplers'
own: ``MaskedLangevin`` (``Langevin`` that moves only the free pixels) for inpainting, plain
``Langevin`` for denoising, both clamped to the [-1, 1] box and driven by ``run_chains``.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from ebmlab.errors import EBMError
from ebmlab.density import as_log_density
from ebmlab.samplers.langevin import Langevin
from ebmlab.samplers.masked import MaskedLangevin
from ebmlab.samplers.run import run_chains

MASK_KINDS = ("box", "left-half", "random")
INIT_KINDS = ("uniform", "zeros", "keep")


def make_mask(kind: str, shape: Sequence[int], generator: torch.Generator | None = None,
              missing_fraction: float = 0.5, device: str | torch.device = "cpu") -> torch.Tensor:
    """Bool mask [B, 1, H, W] for images of ``shape`` (B, C, H, W) or (H, W); True = missing.

    - ``box``: a centred box of half the height and width (a quarter of the pixels);
    - ``left-half``: columns left of the middle;
    - ``random``: each pixel missing with probability ``missing_fraction``, drawn per image
      with ``generator``.
    """
    if kind not in MASK_KINDS:
        raise EBMError(f"unknown mask {kind!r}; choose one of {list(MASK_KINDS)}")
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        shape = (1, 1, *shape)
    if len(shape) != 4 or min(shape) <= 0:
        raise EBMError(f"mask shape must be (B, C, H, W) or (H, W) with positive sizes, got {shape}")
    b, _, h, w = shape
    m = torch.zeros(b, 1, h, w, dtype=torch.bool, device=device)
    if kind == "box":
        bh, bw = max(1, h // 2), max(1, w // 2)
        y0, x0 = (h - bh) // 2, (w - bw) // 2
        m[:, :, y0:y0 + bh, x0:x0 + bw] = True
    elif kind == "left-half":
        m[:, :, :, : max(1, w // 2)] = True
    else:
        if not 0.0 < missing_fraction < 1.0:
            raise EBMError(f"missing_fraction must be in (0, 1), got {missing_fraction}")
        u = torch.rand(b, 1, h, w, generator=generator, device=generator.device if generator else device)
        m = (u < missing_fraction).to(device)
    return m


def _check_inputs(f: Callable, image: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[0] == 0:
        raise EBMError(f"image must be a batch [B, C, H, W], got "
                       f"{tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__}")
    if not image.is_floating_point():
        raise EBMError(f"image must be a float tensor in model scale [-1, 1], got dtype {image.dtype}")
    # the values must already be in model scale; a 0..255 image here means a forgotten Scaling
    lo, hi = float(image.min()), float(image.max())
    if lo < -1.001 or hi > 1.001:
        raise EBMError(f"image values span [{lo:g}, {hi:g}] but must be in model scale [-1, 1]; "
                       "map them with ebmlab.data.scaling.Scaling first")
    # networks that know their input shape (ebmlab's image nets) are checked up front
    net = getattr(f, "net", f)
    c, s = getattr(net, "channels", None), getattr(net, "image_size", None)
    if isinstance(c, int) and isinstance(s, int) and tuple(image.shape[1:]) != (c, s, s):
        raise EBMError(f"the model takes images [{c}, {s}, {s}] but got [{', '.join(map(str, image.shape[1:]))}]; "
                       "resize/convert the image to match the model")
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor) or mask.ndim != 4:
        raise EBMError("mask must be a tensor [B or 1, 1 or C, H, W] (True = missing)")
    b, ch, h, w = image.shape
    if mask.shape[0] not in (1, b) or mask.shape[1] not in (1, ch) or tuple(mask.shape[2:]) != (h, w):
        raise EBMError(f"mask shape {tuple(mask.shape)} does not fit images {tuple(image.shape)}; "
                       f"use [{b} or 1, {ch} or 1, {h}, {w}]")
    return mask.to(device=image.device, dtype=torch.bool)


IMAGE_BOX = (-1.0, 1.0)   # model scale: every pixel stays a valid image value


def _langevin(f: Callable[[torch.Tensor], torch.Tensor] | torch.nn.Module, x: torch.Tensor,
              free: torch.Tensor | None, n_steps: int, step_size: float, noise_scale: float | None,
              grad_clip: float | None, generator: torch.Generator | None) -> torch.Tensor:
    """Langevin from x [B, C, H, W] in the [-1, 1] box; only where ``free`` (None: every pixel) moves."""
    if free is None:
        sampler = Langevin(f, step_size, noise_scale=noise_scale, grad_clip=grad_clip, bounds=IMAGE_BOX)
    else:
        sampler = MaskedLangevin(f, free, step_size, noise_scale=noise_scale, grad_clip=grad_clip,
                                 bounds=IMAGE_BOX)
    _check_model_takes(as_log_density(f), x)
    return run_chains(sampler, x.detach(), n_steps, generator)[0]


def _check_model_takes(logp: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> None:
    """One image through f, once, before any chain runs: a shape the network cannot take becomes a
    one-line EBMError here instead of a RuntimeError from deep inside the network."""
    try:
        with torch.no_grad():
            logp(x[:1])
    except RuntimeError as e:
        raise EBMError(f"the model cannot evaluate images of shape {tuple(x.shape[1:])}: "
                       f"{str(e).splitlines()[0]}") from e


def inpaint(f: Callable[[torch.Tensor], torch.Tensor] | torch.nn.Module, image: torch.Tensor,
            mask: torch.Tensor, n_steps: int = 100, step_size: float = 1.0, noise_scale: float | None = 0.01,
            generator: torch.Generator | None = None, init: str = "uniform",
            grad_clip: float | None = None) -> torch.Tensor:
    """Fill the masked pixels of ``image`` by Langevin on p(missing | observed) ∝ exp(f).

    Args:
        f: a model (``EnergyModel``, anything with ``.log_density``) or callable [B, C, H, W] -> [B].
        image: [B, C, H, W] in model scale [-1, 1]; values under the mask are ignored.
        mask: bool [B or 1, 1 or C, H, W], True = missing (to fill); e.g. from ``make_mask``.
        n_steps, step_size, noise_scale, grad_clip: the Langevin knobs. Defaults are the
            short-run recipe (Nijkamp et al. 2019: step 1, noise 0.01) that ebmlab's image models
            are trained with; ``noise_scale=None`` means exact Langevin, sqrt(2 * step_size).
        generator: drives the initial fill and the noise (same seed, same result).
        init: initial value of the missing pixels: ``uniform`` noise in [-1, 1], ``zeros``
            (mid-grey), or ``keep`` (whatever ``image`` holds there).
    Returns:
        [B, C, H, W]: observed pixels exactly as given, missing pixels filled, all in [-1, 1].
    """
    m = _check_inputs(f, image, mask)
    if init not in INIT_KINDS:
        raise EBMError(f"unknown init {init!r}; choose one of {list(INIT_KINDS)}")
    free = m.expand_as(image)
    x = image.detach().clone()
    if init == "uniform":
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2.0 - 1.0
        x = torch.where(free, u, x)
    elif init == "zeros":
        x = torch.where(free, torch.zeros_like(x), x)
    return _langevin(f, x, free, n_steps, step_size, noise_scale, grad_clip, generator)


def denoise(f: Callable[[torch.Tensor], torch.Tensor] | torch.nn.Module, noisy: torch.Tensor,
            n_steps: int = 100, step_size: float = 1.0, noise_scale: float | None = 0.01,
            generator: torch.Generator | None = None, noise_sigma: float | None = None,
            grad_clip: float | None = None) -> torch.Tensor:
    """Denoise ``noisy`` [B, C, H, W] (model scale) by Langevin started at the noisy image.

    Without ``noise_sigma`` every pixel follows the model alone: a short chain pulls the image
    towards the data manifold (the IGEBM way; too many steps forget the input). With
    ``noise_sigma`` (the std of additive Gaussian noise, in model scale) the chain samples the
    posterior f(x) - |x - noisy|^2 / (2 sigma^2), which stays anchored to the observation
    (the extra curvature 1/sigma^2 needs step_size below about sigma^2 to stay stable).
    Values are clamped to [-1, 1] first. Returns [B, C, H, W] in [-1, 1].
    """
    if not isinstance(noisy, torch.Tensor) or noisy.ndim != 4:
        raise EBMError("noisy must be a batch of images [B, C, H, W] in model scale")
    y = noisy.detach().clamp(-1.0, 1.0)
    _check_inputs(f, y, None)
    logp = f
    if noise_sigma is not None:
        if noise_sigma <= 0:
            raise EBMError(f"noise_sigma must be positive, got {noise_sigma}")
        prior, inv2s2 = as_log_density(f), 1.0 / (2.0 * float(noise_sigma) ** 2)

        def logp(x: torch.Tensor) -> torch.Tensor:  # noqa: F811 - posterior replaces the prior
            return prior(x) - inv2s2 * (x - y).pow(2).flatten(1).sum(1)
    return _langevin(logp, y, None, n_steps, step_size, noise_scale, grad_clip, generator)
