"""The result type of every log Z method."""
from __future__ import annotations

from dataclasses import dataclass, field


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
