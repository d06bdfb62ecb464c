"""``image_net``: the image network a run's config names (``net`` and ``net_width``), in one place for
``rundir.build`` — its own module because it picks among ``nets.image`` and ``nets.shortrun``, which
imports ``nets.image``."""
from __future__ import annotations

from torch import nn

from ebmlab.errors import EBMError
from ebmlab.nets.image import ResNetEnergy, SmallConvNet, default_image_net
from ebmlab.nets.shortrun import ShortRunConvNet


def image_net(kind: str, channels: int, image_size: int, width: int | None = None,
              spectral_norm: bool = False) -> nn.Module:
    """The image network a run's config names: ``kind`` "conv" (``SmallConvNet``), "resnet"
    (``ResNetEnergy``), "shortrun" (``nets.shortrun.ShortRunConvNet``, Nijkamp et al. 2019) or
    "auto" / "mlp" (``default_image_net``'s pick for the size; "mlp" has always meant the default on
    images); ``width`` None keeps the network's own default width."""
    if kind not in ("auto", "mlp", "conv", "resnet", "shortrun"):
        raise EBMError(f"unknown image network {kind!r}; choose auto, conv, resnet or shortrun")
    if kind == "shortrun":
        return ShortRunConvNet(channels, image_size, **({} if width is None else {"width": width}),
                               spectral_norm=spectral_norm)
    if kind in ("auto", "mlp"):
        kind = "conv" if image_size <= 16 else "resnet"
        if width is None:
            return default_image_net(channels, image_size, spectral_norm)
    kw = {} if width is None else {"width": width}
    cls = SmallConvNet if kind == "conv" else ResNetEnergy
    return cls(channels, image_size, spectral_norm=spectral_norm, **kw)
