"""``DigitsFeatureNet``: a small digits classifier whose penultimate layer is the feature space
for the digits Fréchet distance (``metrics.frechet.fd_ratio``).

The ``Inception`` of the 8x8 digits: trained on the *train* split only (fixed seed, a few
seconds on a CPU), so the test split stays unseen and FD(train, test) is an honest baseline.
The trained network is cached per process (keyed by seed) and can be saved/loaded as
safetensors so every evaluation of a project uses the very same feature map.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ebmlab.atomic import atomic_write_with
from ebmlab.errors import EBMError

FEATURE_DIM = 32          # penultimate width; small so covariances are estimable from 360 test images
_CACHE: dict[tuple[int, str | None], "DigitsFeatureNet"] = {}


class DigitsFeatureNet(nn.Module):
    """The feature network of the digits Fréchet distance (not ``models.jem.DigitsClassifier``, the
    JEM energy network): x [N, 1, 8, 8] in [-1, 1] -> logits [N, 10]; ``features(x)`` -> [N, FEATURE_DIM]."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.SiLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.SiLU(),      # -> 4x4
            nn.Flatten(), nn.Linear(32 * 16, 128), nn.SiLU(),
            nn.Linear(128, FEATURE_DIM), nn.SiLU(),
        )
        self.out = nn.Linear(FEATURE_DIM, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))


def train_digits_classifier(seed: int = 0, epochs: int = 10, batch_size: int = 64,
                            lr: float = 5e-3) -> DigitsFeatureNet:
    """Train a ``DigitsFeatureNet`` on the digits train split (model scale) with a fixed seed;
    deterministic on one device.

    Light augmentation (pixel noise, ±1 px shifts) makes the features react smoothly to the
    slightly-off images a sampler produces rather than only to clean digits. The defaults
    reach ~97 % test accuracy in ~4 s of one CPU core.
    """
    from ebmlab.data.images import load_digits_images, load_digits_labels

    x = load_digits_images("train", model_scale=True)
    y = load_digits_labels("train")
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):          # seed the init without touching the caller's RNG
        torch.manual_seed(seed)
        net = DigitsFeatureNet()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    # One thread: batches of 64 8x8 images gain nothing from more, and on a shared CPU extra
    # threads made this several times slower (measured). The caller's setting is restored.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.enable_grad():                    # callers may sit inside no_grad (features does)
            _fit(net, opt, x, y, g, epochs, batch_size)
    finally:
        torch.set_num_threads(threads)
    return net.eval().requires_grad_(False)


def _fit(net: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, g: torch.Generator,
         epochs: int, batch_size: int) -> None:
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch_size):
            idx = perm[i:i + batch_size]
            xb = x[idx] + 0.1 * torch.randn(x[idx].shape, generator=g)
            dy, dx = (int(v) for v in torch.randint(-1, 2, (2,), generator=g))
            xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3)).clamp(-1, 1)
            loss = nn.functional.cross_entropy(net(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def get_digits_classifier(seed: int = 0, weights_path: str | os.PathLike | None = None) -> DigitsFeatureNet:
    """The ``DigitsFeatureNet`` (trained or loaded), cached per process.

    With ``weights_path``: load it if the file exists, else train and save it there (safetensors).
    """
    key = (seed, str(weights_path) if weights_path is not None else None)
    if key in _CACHE:
        return _CACHE[key]
    from safetensors.torch import load_file

    path = Path(weights_path) if weights_path is not None else None
    if path is not None and path.is_file():
        net = DigitsFeatureNet()
        try:
            net.load_state_dict(load_file(str(path)))
        except Exception as e:  # noqa: BLE001 - any failure here means "not our weights file"
            raise EBMError(f"{str(path)!r} is not a digits-classifier weights file ({type(e).__name__}); "
                           "delete it to retrain") from e
        net = net.eval().requires_grad_(False)
    else:
        net = train_digits_classifier(seed)
        if path is not None:
            save_digits_classifier(net, path)
    _CACHE[key] = net
    return net


def save_digits_classifier(net: DigitsFeatureNet, path: str | os.PathLike) -> None:
    """Write a ``DigitsFeatureNet``'s weights as safetensors, atomically
    (``get_digits_classifier(weights_path=)`` reads them)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    atomic_write_with(path, lambda tmp: save_file(state, str(tmp)))   # fsynced, open()'s mode, then renamed


@torch.no_grad()
def features(x: torch.Tensor, seed: int = 0, weights_path: str | os.PathLike | None = None,
             batch_size: int = 1024) -> torch.Tensor:
    """Penultimate-layer features [N, FEATURE_DIM] (float32, CPU) of digits x [N, 1, 8, 8] in [-1, 1]."""
    if x.ndim != 4 or tuple(x.shape[1:]) != (1, 8, 8):
        raise EBMError(f"digits features need images [N, 1, 8, 8] in [-1, 1], got shape {tuple(x.shape)}")
    net = get_digits_classifier(seed, weights_path)
    x = x.detach().to("cpu", torch.float32)
    return torch.cat([net.features(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


@torch.no_grad()
def digits_accuracy(seed: int = 0, weights_path: str | os.PathLike | None = None) -> float:
    """Test-split accuracy of the feature network (a sanity check that the features mean something)."""
    from ebmlab.data.images import load_digits_images, load_digits_labels

    net = get_digits_classifier(seed, weights_path)
    pred = net(load_digits_images("test", model_scale=True)).argmax(1)
    return float((pred == load_digits_labels("test")).float().mean())
