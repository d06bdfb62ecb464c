"""Where negatives come from: the chains' start distribution and the MCMC kernel, built from a config.

The kernel itself comes from the one sampler table (``ebmlab.samplers.registry``); this file only
says which config fields feed it.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ebmlab.rundir.config import RunConfig
from ebmlab.errors import EBMError
from ebmlab.samplers.base import Sampler
from ebmlab.samplers.registry import BINARY_SAMPLERS, CATEGORICAL_SAMPLERS, SAMPLER_NAMES, make_sampler, options_for

IMAGE_BOX = [-1.0, 1.0]   # images live in model scale [-1, 1] (ebmlab.data.scaling)


def support_box(data: dict[str, Any]) -> list[list[float]] | None:
    """The box the chains live in: the vector data's support box, [-1, 1] per pixel for images."""
    if data["kind"] == "vector":
        return data["bounds"]
    return None


def make_init_fn(data: dict[str, Any], init: str, x_train: torch.Tensor, device: torch.device,
                 to_model: Callable[[torch.Tensor], torch.Tensor] | None = None
                 ) -> Callable[[int, torch.Generator], torch.Tensor]:
    """Chains' starting distribution: uniform over the support box (vectors) or [-1, 1] (images,
    Nijkamp et al.'s short-run start), a standard normal, or random training points.

    For ``init="data"``, ``x_train`` is the stored training set (e.g. uint8 images, left where it
    is) and ``to_model`` (``DataSet.to_model``) maps the drawn rows to the model scale on ``device``.
    """
    event = tuple(data["event_shape"])
    if data.get("categories") and init in ("uniform", "gaussian"):
        # categorical data: every site uniform over its K categories, one-hot [n, d*K]
        k = int(data["categories"])
        return lambda n, g: torch.nn.functional.one_hot(
            torch.randint(0, k, (n, event[0] // k), generator=g, device=device), k).reshape(n, *event).float()
    if data.get("binary") and init in ("uniform", "gaussian"):
        # binary data: chains start from independent fair coins (the uniform law on {0, 1}^d)
        return lambda n, g: (torch.rand((n, *event), generator=g, device=device) < 0.5).float()
    if init == "uniform":
        if data["kind"] == "vector":
            b = torch.tensor(data["bounds"], dtype=torch.float32, device=device)
            lo, width = b[:, 0], b[:, 1] - b[:, 0]
            return lambda n, g: lo + width * torch.rand((n, *event), generator=g, device=device)
        return lambda n, g: 2 * torch.rand((n, *event), generator=g, device=device) - 1
    if init == "gaussian":
        return lambda n, g: torch.randn((n, *event), generator=g, device=device)
    if init == "data":
        convert = to_model if to_model is not None else (lambda t: t)

        def draw(n: int, g: torch.Generator) -> torch.Tensor:
            i = torch.randint(0, x_train.shape[0], (n,), generator=g, device=device)
            return convert(x_train[i.to(x_train.device)].to(device))
        return draw
    raise EBMError(f"unknown init {init!r}")


def check_binary_sampler(config: RunConfig, model: torch.nn.Module, data: dict[str, Any]) -> None:
    """Binary data needs a sampler of {0, 1} states and no data noise; continuous data refuses them."""
    binary_method = config.sampler in BINARY_SAMPLERS
    if data.get("categories"):
        if config.sampler not in CATEGORICAL_SAMPLERS:
            raise EBMError(f"categorical data needs a sampler of one-hot states ({', '.join(CATEGORICAL_SAMPLERS)}); "
                           f"got {config.sampler!r}")
        if config.data_noise:
            raise EBMError(f"data_noise {config.data_noise} would make categorical data continuous; use 0")
        return
    if config.sampler in CATEGORICAL_SAMPLERS:
        raise EBMError(f"sampler {config.sampler!r} moves one-hot categorical states; this data is not "
                       "categorical (declare integer data with --categories K)")
    if data.get("binary"):
        if not binary_method:
            raise EBMError(f"binary data needs a sampler of {{0, 1}} states ({', '.join(BINARY_SAMPLERS)}); "
                           f"got {config.sampler!r}")
        if config.data_noise:
            raise EBMError(f"data_noise {config.data_noise} would make binary data continuous; use 0")
        if config.sampler == "block-gibbs" and not callable(getattr(model, "sample_hidden", None)):
            raise EBMError("sampler 'block-gibbs' needs hidden units: use it with --net rbm, or choose gibbs or gwg")
    elif binary_method:
        continuous = [n for n in SAMPLER_NAMES if n not in BINARY_SAMPLERS + CATEGORICAL_SAMPLERS]
        raise EBMError(f"sampler {config.sampler!r} moves {{0, 1}} states, but this data is continuous; "
                       f"choose one of {', '.join(continuous)}")


def sampler_from_config(config: RunConfig, model: torch.nn.Module, data: dict[str, Any]) -> Sampler:
    """The MCMC kernel that produces negatives: ``config.sampler`` from the sampler table, with the
    config's step_size and whichever of its noise_scale, grad_clip, jump_prob and the support box
    (the data's box for vectors, [-1, 1] for images) that method takes."""
    check_binary_sampler(config, model, data)
    box = support_box(data)
    if config.sampler == "mh-jump" and box is None:
        raise EBMError("sampler 'mh-jump' needs vector data with a support box; use 'langevin' for images")
    settings = {"bounds": box if box is not None else IMAGE_BOX, "noise_scale": config.noise_scale,
                "grad_clip": config.grad_clip, "jump_prob": config.jump_prob,
                # annealed-langevin: the dsm levels, the chain's steps split evenly over them;
                # recovery (a drl model's level walk): mcmc_steps on each of its levels, as in training
                "sigmas": config.dsm_sigmas,
                "steps_per_level": (config.mcmc_steps if config.sampler == "recovery"
                                    else max(1, config.mcmc_steps // len(config.dsm_sigmas))),
                # annealed-langevin on a noise-conditional dsm model: end with Tweedie's denoising step
                "denoise": config.dsm_conditional,
                "categories": data.get("categories")}
    return make_sampler(model, config.sampler, config.step_size, **options_for(config.sampler, settings))
