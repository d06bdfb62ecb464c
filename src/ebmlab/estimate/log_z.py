"""``ebmlab.log_z``: one entry point for the normalising constant, exact where it can be.

The methods are a plain table: adding one is a new entry here, nothing registers itself.
"""
from __future__ import annotations

import inspect
from typing import Callable

from ebmlab.errors import EBMError
from ebmlab.estimate.ais import ais_log_z
from ebmlab.estimate.binary_ais import binary_ais_log_z
from ebmlab.estimate.discrete import binary_log_z
from ebmlab.estimate.partition import enumerate_log_z, quadrature_log_z
from ebmlab.estimate.result import LogZEstimate

METHODS: dict[str, Callable[..., LogZEstimate]] = {
    "quadrature": quadrature_log_z,
    "enumeration": enumerate_log_z,
    "ais": ais_log_z,
    "binary": binary_log_z,
    "binary-ais": binary_ais_log_z,
}


def log_z(f, method: str = "quadrature", **kwargs) -> LogZEstimate:
    """log Z of exp(f) by ``method``.

    - ``"quadrature"``: ``bounds=[(lo, hi)] * d``, d <= 3, exact up to grid error (stderr 0).
    - ``"enumeration"``: ``states=[S, *event]`` tensor of every state of a discrete space.
    - ``"binary"``: ``dim=d``, every state of {0, 1}^d (d <= 24), exact; an RBM enumerates its smaller side.
    - ``"binary-ais"``: AIS on {0, 1}^d from a product-of-Bernoullis base (``x_ref=`` 0/1 data), with
      a reverse upper bound in ``extras["upper"]``.
    - ``"ais"``: annealed importance sampling, any d (``x_ref=...``, ``generator=...``).
    Returns a ``LogZEstimate`` with ``.value`` and ``.stderr``.
    """
    if method not in METHODS:
        raise EBMError(f"unknown log Z method {method!r}; choose one of {sorted(METHODS)}")
    _check_options(method, kwargs)
    return METHODS[method](f, **kwargs)


def _check_options(method: str, kwargs: dict) -> None:
    """A missing or unknown keyword is one EBMError naming it and the method's options (as ``ebmlab.sample``
    does), not a TypeError from inside the method."""
    params = list(inspect.signature(METHODS[method]).parameters.values())[1:]     # after f
    options = [p.name for p in params]
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise EBMError(f"log Z method {method!r} does not take {', '.join(unknown)}; its options are {options}")
    missing = [p.name for p in params if p.default is inspect.Parameter.empty and p.name not in kwargs]
    if missing:
        raise EBMError(f"log Z method {method!r} needs {', '.join(n + '=' for n in missing)} "
                       f"(see help(ebmlab.log_z)); its options are {options}")
