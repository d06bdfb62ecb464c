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
from ebmlab.samplers.registry import make_sampler, options_for

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


def sampler_from_config(config: RunConfig, model: torch.nn.Module, data: dict[str, Any]) -> Sampler:
    """The MCMC kernel that produces negatives: ``config.sampler`` from the sampler table, with the
    config's step_size and whichever of its noise_scale, grad_clip, jump_prob and the support box
    (the data's box for vectors, [-1, 1] for images) that method takes."""
    box = support_box(data)
    if config.sampler == "mh-jump" and box is None:
        raise EBMError("sampler 'mh-jump' needs vector data with a support box; use 'langevin' for images")
    settings = {"bounds": box if box is not None else IMAGE_BOX, "noise_scale": config.noise_scale,
                "grad_clip": config.grad_clip, "jump_prob": config.jump_prob,
                # annealed-langevin: the dsm levels, the chain's steps split evenly over them
                "sigmas": config.dsm_sigmas,
                "steps_per_level": max(1, config.mcmc_steps // len(config.dsm_sigmas))}
    return make_sampler(model, config.sampler, config.step_size, **options_for(config.sampler, settings))
