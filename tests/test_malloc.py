"""The command line keeps freed memory in its process (glibc mallopt) unless EBMLAB_KEEP_FREED_MEMORY=0;
the library alone never changes the process's allocator (samplers/malloc.py)."""
from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from helpers_runs import fails_cleanly, subprocess_env

glibc_only = pytest.mark.skipif(sys.platform != "linux" or platform.libc_ver()[0] != "glibc",
                                reason="glibc's mallopt only")

# a fresh process: whether mallopt was applied is process state (malloc._applied)
PROBE = """
import json, sys
import ebmlab
from ebmlab.samplers import malloc
before = malloc._applied
from ebmlab.cli import main
code = main(["runs", sys.argv[1]])
print(json.dumps([before, malloc._applied, code]))
"""


def _probe(tmp_path, setting: str | None) -> list:
    env = subprocess_env()
    env.pop("EBMLAB_KEEP_FREED_MEMORY", None)
    if setting is not None:
        env["EBMLAB_KEEP_FREED_MEMORY"] = setting
    r = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path)], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@glibc_only
def test_the_command_line_keeps_freed_memory_by_default(tmp_path):
    # importing the library sets nothing; running a command does
    assert _probe(tmp_path, None) == [None, True, 0]
    assert _probe(tmp_path, "1") == [None, True, 0]


def test_keeping_freed_memory_can_be_turned_off(tmp_path):
    assert _probe(tmp_path, "0") == [None, None, 0]


def test_a_bad_setting_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EBMLAB_KEEP_FREED_MEMORY", "yes")
    line = fails_cleanly(["runs", str(tmp_path)], capsys)
    assert line == ("ebmlab: error: EBMLAB_KEEP_FREED_MEMORY='yes' must be 1 (keep freed memory in the process, "
                    "the default: fewer page faults per step) or 0 (glibc's default malloc)")
    # in a fresh process: exit 2, the allocator left as it was, the command not run
    assert _probe(tmp_path, "yes") == [None, None, 2]
    assert list(tmp_path.iterdir()) == []
