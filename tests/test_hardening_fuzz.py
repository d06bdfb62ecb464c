"""Issue 11: property-based fuzz of the files a run directory is read from.

data.json, config.json, state.json, LATEST and model.safetensors's header are replaced by generated
content (mutations of the real file and arbitrary JSON/bytes), then ``ebmlab sample`` runs on the
run. Every example must end in success (exit 0) or one line ``ebmlab: error: ...`` with exit 2:
never an internal error (exit 1, an exception ebmlab did not validate), never a hang (an alarm
bounds each example), never a write outside the run (the folder around it is unchanged).

The default run is ~150 examples in total; the ``slow`` variant runs ten times as many.
"""
from __future__ import annotations

import contextlib
import io
import json
import shutil
import signal
import struct
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ebmlab.cli import main as cli_main

from helpers_runs import train_tiny_run

CK = "checkpoints/step-0000006"

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-10, 10), st.floats(),
                      st.text(max_size=8), st.sampled_from(["vector", "image", "composite", "step-0000006", ".", ""]))
json_value = st.recursive(json_leaf, lambda c: st.one_of(st.lists(c, max_size=4),
                                                         st.dictionaries(st.text(max_size=6), c, max_size=4)),
                          max_leaves=12)


def _mutated_json(base: dict) -> st.SearchStrategy[bytes]:
    """The real file with one key replaced, removed or added; arbitrary JSON; or arbitrary bytes."""
    keys = sorted(base)

    def replace(kv):
        k, v = kv
        return {**base, k: v}

    def remove(k):
        return {x: y for x, y in base.items() if x != k}

    docs = st.one_of(st.tuples(st.sampled_from(keys), json_value).map(replace),
                     st.tuples(st.sampled_from(keys), st.sampled_from(keys)).map(
                         lambda ab: {**base, ab[0]: base[ab[1]]}),
                     st.sampled_from(keys).map(remove),
                     st.tuples(st.text(max_size=6), json_value).map(replace),
                     json_value)
    return st.one_of(docs.map(lambda d: json.dumps(d).encode()), st.binary(max_size=64))


def _safetensors_header(original: bytes) -> st.SearchStrategy[bytes]:
    n = struct.unpack("<Q", original[:8])[0]
    header, body = json.loads(original[8:8 + n]), original[8 + n:]
    names = sorted(k for k in header if k != "__metadata__")
    fields = st.sampled_from(["dtype", "shape", "data_offsets"])

    def edit(t):
        name, field, value = t
        h = json.loads(json.dumps(header))
        h[name][field] = value
        raw = json.dumps(h).encode()
        return struct.pack("<Q", len(raw)) + raw + body

    def bad_length(k):
        return struct.pack("<Q", k) + original[8:]

    value = st.one_of(json_value, st.lists(st.integers(-2, 2**40), max_size=4),
                      st.sampled_from(["F16", "F64", "I64", "BOOL", "U8", "XX"]))
    return st.one_of(st.tuples(st.sampled_from(names), fields, value).map(edit),
                     st.integers(0, 2**64 - 1).map(bad_length),
                     _mutated_json(header).map(lambda raw: struct.pack("<Q", len(raw)) + raw + body),
                     st.binary(max_size=64))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("fuzz_run"))


def _listing(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
            if skip not in p.parents and p != skip and p.name != "s.npy"}


def _alarm(signum, frame):
    raise TimeoutError("a fuzz example took more than 30 s")


def _check(trained: Path, root: Path, rel: str, content: bytes) -> None:
    run = root / "run"
    if run.exists():
        shutil.rmtree(run)
    shutil.copytree(trained, run, ignore=shutil.ignore_patterns(".ebmlab-lock"))
    (run / rel).write_bytes(content)
    before = _listing(root, run)
    err = io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(30)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli_main(["sample", str(run), "--n", "4", "--n-steps", "2", "--out", str(root / "s.npy")])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    lines = err.getvalue().strip().splitlines()
    assert code in (0, 2), (rel, content[:200], err.getvalue())
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("ebmlab: error: "), (rel, content[:200], err.getvalue())
    assert _listing(root, run) == before, "something was written outside the run"


TARGETS: dict[str, Callable[[Path], st.SearchStrategy[bytes]]] = {
    "data.json": lambda run: _mutated_json(json.loads((run / "data.json").read_text())),
    "config.json": lambda run: _mutated_json(json.loads((run / "config.json").read_text())),
    f"{CK}/state.json": lambda run: _mutated_json(json.loads((run / CK / "state.json").read_text())),
    "checkpoints/LATEST": lambda run: st.one_of(
        st.binary(max_size=24), st.text(max_size=24).map(str.encode),
        st.sampled_from([b"step-0000003", b"step-0000006\n", b"../step-0000006", b"step-0000006/..",
                         b"/etc", b"step-00000x6", b"step-" + b"9" * 30])),
    f"{CK}/model.safetensors": lambda run: _safetensors_header((run / CK / "model.safetensors").read_bytes()),
}


def _fuzz(trained: Path, tmp_path: Path, rel: str, n: int) -> int:
    """Run ``n`` generated variants of ``rel`` through ``_check``; returns how many were checked."""
    @settings(max_examples=n, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(TARGETS[rel](trained))
    def prop(content: bytes) -> None:
        _check(trained, tmp_path, rel, content)
        checked[0] += 1
    checked = [0]
    prop()
    return checked[0]


@pytest.mark.parametrize("rel", list(TARGETS))
def test_fuzz_run_files(trained, tmp_path, rel):
    assert _fuzz(trained, tmp_path, rel, 40) > 0


@pytest.mark.slow
@pytest.mark.parametrize("rel", list(TARGETS))
def test_fuzz_run_files_long(trained, tmp_path, rel):
    assert _fuzz(trained, tmp_path, rel, 300) > 0
