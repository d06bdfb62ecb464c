"""``ebmlab.log_z``: one entry point for the normalising constant, exact where it can be."""
from __future__ import annotations

from typing import Callable

from ..errors import EBMError
from .estimate import LogZEstimate

_METHODS: dict[str, Callable[..., LogZEstimate]] = {}


def register(name: str, fn: Callable[..., LogZEstimate]) -> None:
    """Add a log Z method (AIS registers itself here)."""
    _METHODS[name] = fn


def log_z(f, method: str = "quadrature", **kwargs) -> LogZEstimate:
    """log Z of exp(f) by ``method``.

    - ``"quadrature"``: ``bounds=[(lo, hi)] * d``, d <= 3, exact up to grid error (stderr 0).
    - ``"enumeration"``: ``states=[S, *event]`` tensor of every state of a discrete space.
    - ``"ais"``: annealed importance sampling, any d (``x_ref=...``, ``generator=...``).
    Returns a ``LogZEstimate`` with ``.value`` and ``.stderr``.
    """
    _load_builtin_methods()
    if method not in _METHODS:
        raise EBMError(f"unknown log Z method {method!r}; choose one of {sorted(_METHODS)}")
    return _METHODS[method](f, **kwargs)


def _load_builtin_methods() -> None:
    from . import partition
    _METHODS.setdefault("quadrature", partition.quadrature_log_z)
    _METHODS.setdefault("enumeration", partition.enumerate_log_z)
    try:
        from . import ais  # noqa: F401  (registers "ais" when present)
    except ImportError:
        pass
