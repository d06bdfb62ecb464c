"""The result type of every log Z method."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ebmlab.errors import EBMError


@dataclass(frozen=True)
class LogZEstimate:
    """log Z with its standard error (0 for exact methods) and method-specific extras.

    For AIS, ``extras`` may hold ``upper`` (the reverse estimate) and ``ess``.
    """

    value: float
    stderr: float
    method: str
    extras: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"log Z = {self.value:.4f} ± {self.stderr:.4f} ({self.method})"


def exact_value(total: float, method: str) -> float:
    """An exact method's log Z, refused (EBMError) when f was NaN or +inf at some state: log-sum-exp
    carries a NaN or +inf through to the total, which was returned as if it were exact (stderr 0).
    -inf (f = -inf everywhere: no mass) passes, as quadrature lets it."""
    total = float(total)
    if math.isnan(total) or total == math.inf:
        raise EBMError(f"f is NaN or +inf at some state of the {method}; log Z is undefined there")
    return total
