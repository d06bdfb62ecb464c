"""Where negatives come from: the chains' start distribution and the MCMC kernel, built from a config."""
from __future__ import annotations

from typing import Any, Callable

import torch

from ebmlab.rundir.config import RunConfig
from ebmlab.errors import EBMError
from ebmlab.samplers.hmc import HMC
from ebmlab.samplers.langevin import Langevin
from ebmlab.samplers.mala import MALA
from ebmlab.samplers.mh import MetropolisHastings
from ebmlab.samplers.proposals import GaussianRandomWalk, UniformJumpProposal
from ebmlab.samplers.base import Sampler


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


def make_kernel(config: RunConfig, model: torch.nn.Module, data: dict[str, Any]) -> Sampler:
    """The MCMC kernel that produces negatives, from ``config.sampler``."""
    s = config.sampler
    box = support_box(data)
    if s == "mh-jump":
        if box is None:
            raise EBMError("sampler 'mh-jump' needs vector data with a support box; use 'langevin' for images")
        b = torch.tensor(box)
        local = config.step_size * float((b[:, 1] - b[:, 0]).mean())
        return MetropolisHastings(model, UniformJumpProposal(box, config.jump_prob, local))
    if s == "mh":
        return MetropolisHastings(model, GaussianRandomWalk(config.step_size))
    if s == "langevin":
        bounds = box if box is not None else (-1.0, 1.0)
        return Langevin(model, config.step_size, config.noise_scale, config.grad_clip, bounds=bounds)
    if s == "mala":
        return MALA(model, config.step_size)
    if s == "hmc":
        return HMC(model, config.step_size, n_leapfrog=10)
    raise EBMError(f"unknown sampler {s!r}")
