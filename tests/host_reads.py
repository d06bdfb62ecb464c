"""``host_reads``: count tensor -> Python reads while code runs on a CPU (used by test_device_placement.py and
test_discrete_models.py): bool(), float(), int(), index, .item(), .tolist(). On a GPU each is a host sync, so a
sampling loop's count must not grow with its steps."""
from __future__ import annotations

import torch


def host_reads(monkeypatch) -> list:
    """Patch torch.Tensor's read methods; returns a list that grows by one per read (``monkeypatch.undo()`` ends it)."""
    reads: list = []
    for name in ("__bool__", "__float__", "__int__", "__index__", "item", "tolist"):
        real = getattr(torch.Tensor, name)

        def counted(self, *a, _real=real, **k):
            reads.append(1)
            return _real(self, *a, **k)
        monkeypatch.setattr(torch.Tensor, name, counted)
    return reads
