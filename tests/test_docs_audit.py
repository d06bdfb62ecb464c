"""Checks behind statements the documentation makes (session 14's docs audit): each test failed before its fix."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import run_all  # noqa: E402


def test_results_header_names_the_checkouts_version(monkeypatch):
    """README (0.10.1): every benchmark header reads a source checkout's pyproject.toml, not the metadata an
    editable install froze at install time (RESULTS.md's header said 'ebmlab 0.8.0' at 0.11.0)."""
    import ebmlab
    from importlib import metadata

    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda d: "0.0.stale" if d == "ebmlab" else real(d))
    line = run_all.versions()
    assert f"ebmlab {ebmlab.__version__}," in line and "0.0.stale" not in line
