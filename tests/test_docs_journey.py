"""Session 17's walk through the documentation as a new user: each test failed before its fix, or checks a
class of documentation error mechanically (every command line parses, every link resolves, every page is
on the site, every Python block compiles, every dotted name imports).
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import io
import re
import shlex
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# the pages a user reads: README (up to its changelog, whose old names are history) and the hand-written site
PAGES = ["README.md"] + sorted(str(p.relative_to(ROOT)) for p in DOCS.glob("*.md"))
GENERATED = {"cli.md", "benchmarks/RESULTS.md"}          # made at build time by docs_hooks.py


def _text(page: str) -> str:
    text = (ROOT / page).read_text()
    return text.split("\n## Changelog")[0] if page == "README.md" else text


# ---------------------------------------------------------------------------- a code bug a snippet exposed
def test_a_network_whose_weights_start_at_zero_trains():
    """docs/discrete.md trains ``Potts(J0, 3, h0, learn=True)``; with couplings and fields starting at zero
    (independent sites, the natural start) the guard's relative update |‖θ‖ - ‖θ₀‖| / ‖θ₀‖ divided by 0 and
    stopped the run at step 1 ("param_update = 2.91e+36 exceeds the limit 1")."""
    import ebmlab
    from ebmlab.models.potts import Potts

    ints = torch.randint(0, 3, (200, 4), generator=torch.Generator().manual_seed(0))
    run = ebmlab.train(Potts(torch.zeros(12, 12), 3, torch.zeros(12), learn=True), ints, categories=3,
                       steps=3, batch_size=64, mcmc_steps=2, progress=False, tensorboard=False)
    assert run.status == "finished" and run.step == 3


def test_the_guard_still_catches_a_non_finite_update_from_zero_weights():
    from ebmlab.training.guard import param_quantities

    q = param_quantities([torch.tensor([float("nan"), 0.0])], torch.zeros(()))
    assert torch.isnan(q["param_max_abs"]), q
    q = param_quantities([torch.tensor([3.0, 4.0])], torch.tensor(1.0))
    assert q["param_update"].item() == pytest.approx(4.0) and q["param_max_abs"].item() == 4.0
