"""The documentation site: its worked examples run, and its command-line page covers every command and option."""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_worked_examples_run(tmp_path, monkeypatch, capsys):
    text = (ROOT / "docs" / "examples.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 4
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "docs_examples"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"docs/examples.md block {i + 1}", "exec"), namespace)
    out = capsys.readouterr().out
    assert "log Z = 1.8379" in out and "finished 60 steps" in out
    assert (tmp_path / "g8.safetensors").exists() and (tmp_path / "g8.json").exists()


def test_the_cli_page_names_every_command_and_option():
    sys.path.insert(0, str(ROOT))
    from docs_hooks import cli_reference
    from ebmlab.cli import _parser
    page = cli_reference()
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        assert f"## ebmlab {name}\n" in page
        for action in p._actions:
            for opt in action.option_strings:
                assert opt in page, (name, opt)


@pytest.mark.slow
def test_the_site_builds_without_warnings(tmp_path):
    pytest.importorskip("mkdocs")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "site" / "cli" / "index.html").exists()
