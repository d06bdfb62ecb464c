"""Shell completion through argcomplete: the script is printed, and a completion request is answered."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ebmlab.cli import main

pytest.importorskip("argcomplete")
SRC = str(Path(__file__).resolve().parents[1] / "src")


def _complete(line: str, tmp_path: Path) -> list[str]:
    out = tmp_path / "comp.txt"
    env = {**os.environ, "PYTHONPATH": SRC, "_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
           "_ARGCOMPLETE_STDOUT_FILENAME": str(out)}
    r = subprocess.run([sys.executable, "-m", "ebmlab"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return [w.strip() for w in out.read_text().split("\v")]


def test_completion_prints_the_shell_script(capsys):
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    assert "complete" in script and "ebmlab" in script and "_python_argcomplete" in script


def test_a_completion_request_is_answered_by_the_installed_command(tmp_path):
    # through `python -m ebmlab` as a shell would call it: main() answers before parsing
    # (one request: each starts Python and imports torch; argcomplete in-process would close pytest's descriptors)
    assert set(_complete("ebmlab train --sampler ", tmp_path)) >= {"langevin", "mala", "hmc", "mh-jump"}
