"""``ebmlab.log_z``: one entry point for the normalising constant, exact where it can be.

The methods are a plain table: adding one is a new entry here, nothing registers itself.
"""
from __future__ import annotations

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
    return METHODS[method](f, **kwargs)
