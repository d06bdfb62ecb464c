"""Issue 11, findings 6 and 7: no hangs on hostile run files, and every error a user's files or
machine can cause is one line ``ebmlab: error: ...`` with exit status 2 (``--debug``: traceback)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ebmlab.cli import main as cli_main
from ebmlab.errors import EBMError

from helpers_runs import copy_run, fails_cleanly, subprocess_env, train_tiny_run



@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("harden_cli"))


@pytest.fixture()
def run(trained, tmp_path) -> Path:
    return copy_run(trained, tmp_path)




def _sample(run: Path, tmp: Path) -> list[str]:
    return ["sample", str(run), "--n", "4", "--n-steps", "2", "--out", str(tmp / "s.npy")]


def _edit_json(path: Path, **changes) -> None:
    d = json.loads(path.read_text())
    d.update(changes)
    path.write_text(json.dumps(d))


# ---------------------------------------------------------------------------- 6. hangs
_HANG_SCRIPT = r"""
import json, os, signal, sys
sys.path.insert(0, sys.argv[1])
from ebmlab.cli import main
def alarm(*a):
    raise TimeoutError("hung")
signal.signal(signal.SIGALRM, alarm)
results = {}
for case in sys.argv[3:]:
    run = os.path.join(sys.argv[2], case)
    signal.alarm(30)
    try:
        code = main(["sample", run, "--n", "4", "--out", os.path.join(run, "..", case + ".npy")])
    except BaseException as e:
        code = repr(e)
    signal.alarm(0)
    results[case] = code
print(json.dumps(results))
"""


def test_fifos_and_absurd_step_counts_never_hang(trained, tmp_path):
    """A FIFO in place of a run file, mcmc_steps = 10**18 or a 10**6-wide network in config.json: exit 2
    within seconds. Run in a child with an alarm, so a hang fails the test instead of blocking it."""
    cases = {"data.json": "data.json", "config.json": "config.json", "LATEST": "checkpoints/LATEST",
             "state.json": "checkpoints/step-0000006/state.json"}
    for case, rel in cases.items():
        r = tmp_path / case
        shutil.copytree(trained, r, ignore=shutil.ignore_patterns(".ebmlab-lock"))
        (r / rel).unlink()
        os.mkfifo(r / rel)
    for case, change in (("mcmc", {"mcmc_steps": 10**18}), ("wide", {"hidden": 10**6})):
        shutil.copytree(trained, tmp_path / case, ignore=shutil.ignore_patterns(".ebmlab-lock"))
        _edit_json(tmp_path / case / "config.json", **change)
    src = str(Path(__import__("ebmlab").__file__).parents[1])
    p = subprocess.run([sys.executable, "-c", _HANG_SCRIPT, src, str(tmp_path), *cases, "mcmc", "wide"],
                       capture_output=True, text=True, env=subprocess_env(), timeout=300)
    results = json.loads(p.stdout.strip().splitlines()[-1])
    assert results == {k: 2 for k in [*cases, "mcmc", "wide"]}, (results, p.stderr[-2000:])
    errs = [l for l in p.stderr.splitlines() if l.startswith("ebmlab: error: ")]
    assert len(errs) == 6 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert all("damaged" in l for l in errs[:4]) and sum("not a regular file" in l for l in errs) >= 3, errs


@pytest.fixture()
def bounded_time():
    """Fail (TimeoutError) instead of hanging if the test takes more than 60 s."""
    def alarm(*a):
        raise TimeoutError("took more than 60 s: a hang")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_sample_n_steps_is_bounded(run, tmp_path, capsys, bounded_time):
    line = fails_cleanly(["sample", str(run), "--n", "4", "--n-steps", str(10**12), "--out", str(tmp_path / "s.npy")],
                   capsys, "--n-steps")
    assert line.startswith("ebmlab: error: ")


# ---------------------------------------------------------------------------- 7. one line, exit 2
@pytest.mark.parametrize("key,value", [
    ("event_shape", "abc"), ("event_shape", []), ("event_shape", [-1]), ("event_shape", None),
    ("event_shape", [3]), ("bounds", "x"), ("bounds", [[1, 0], [0, 1]]), ("mean", [0, "a"]),
    ("std", [1, 0]), ("kind", ["vector"]), ("kind", {"a": 1}), ("scaling", {"low": "a", "high": 1}),
    ("n_classes", "ten"), ("source", [1]),
])
def test_wrong_types_in_data_json(run, tmp_path, capsys, key, value):
    _edit_json(run / "data.json", **{key: value})
    line = fails_cleanly(_sample(run, tmp_path), capsys, "data.json")
    assert line.startswith("ebmlab: error: ")


def test_data_json_nested_100000_levels(run, tmp_path, capsys):
    (run / "data.json").write_text("[" * 100_000 + "]" * 100_000)
    line = fails_cleanly(_sample(run, tmp_path), capsys, "data.json")
    assert line.startswith("ebmlab: error: ")


def test_invalid_utf8_in_latest(run, tmp_path, capsys):
    (run / "checkpoints" / "LATEST").write_bytes(b"step-\xff\xfe")
    fails_cleanly(_sample(run, tmp_path), capsys, "LATEST")


@pytest.mark.parametrize("step", ["1e400", "-5", "true", "\"6\"", "3"])
def test_bad_step_in_state_json(run, tmp_path, capsys, step):
    st = run / "checkpoints" / "step-0000006" / "state.json"
    st.write_text(st.read_text().replace('"step": 6', f'"step": {step}'))
    fails_cleanly(_sample(run, tmp_path), capsys, "step")
    fails_cleanly(["train", "--resume", str(run), "--quiet"], capsys, "step")   # never rewrites history
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3


def test_zero_byte_npy(tmp_path, capsys):
    (tmp_path / "empty.npy").write_bytes(b"")
    fails_cleanly(["train", "--data", str(tmp_path / "empty.npy"), "--out", str(tmp_path / "r"), "--quiet"], capsys)
    assert not (tmp_path / "r").exists()


def _rewrite_weights(run: Path, edit) -> None:
    from safetensors.torch import load_file, save_file
    f = run / "checkpoints" / "step-0000006" / "model.safetensors"
    w = load_file(str(f))
    edit(w)
    save_file(w, str(f), metadata={"format_version": "1"})


@pytest.mark.parametrize("how", ["shape", "missing", "extra"])
def test_weights_that_do_not_fit_the_network(run, tmp_path, capsys, how):
    def edit(w):
        k = sorted(k for k in w if k.endswith("weight"))[0]
        if how == "shape":
            w[k] = torch.zeros(w[k].shape[0] + 1, *w[k].shape[1:])
        elif how == "missing":
            del w[k]
        else:
            w["intruder.weight"] = torch.zeros(2)
    _rewrite_weights(run, edit)
    line = fails_cleanly(_sample(run, tmp_path), capsys, "does not fit")
    assert line.startswith("ebmlab: error: ")
    assert {"shape": "the network has", "missing": "missing", "extra": "unexpected intruder"}[how] in line
    fails_cleanly(["train", "--resume", str(run), "--quiet"], capsys, "does not fit")


@pytest.mark.parametrize("device", ["quantum", "cuda:99"])
def test_unknown_device_in_config_json(run, capsys, device):
    _edit_json(run / "config.json", device=device)
    line = fails_cleanly(["train", "--resume", str(run), "--steps", "9", "--quiet"], capsys, "device")
    assert line.startswith("ebmlab: error: ")


@pytest.mark.parametrize("change", [{"hidden": 10**6}, {"depth": 10**4}, {"hidden": 4096, "depth": 64},
                                    {"mcmc_steps": 10**18}])
def test_absurd_sizes_in_config_json(run, tmp_path, capsys, change, bounded_time):
    _edit_json(run / "config.json", **change)
    line = fails_cleanly(_sample(run, tmp_path), capsys, "at most" if len(change) == 1 and "hidden" not in change
                   or change.get("hidden") == 10**6 else "weights")
    assert line.startswith("ebmlab: error: ")


def test_decompression_bomb_png_is_one_line(tmp_path, monkeypatch):
    from PIL import Image
    from ebmlab.viz.imageio import load_image_as_tensor
    Image.new("L", (64, 64)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)     # 64*64 > 2 * 1000: PIL's bomb error
    with pytest.raises(EBMError, match="too large to decode"):
        load_image_as_tensor(tmp_path / "bomb.png", 1, 64)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)     # the warning band: refused too
    with pytest.raises(EBMError, match="too large to decode"):
        load_image_as_tensor(tmp_path / "bomb.png", 1, 64)


@pytest.mark.parametrize("exc,contains", [
    (OSError(28, "No space left on device", "/r/x"), "No space left on device [ENOSPC]: /r/x"),
    (OSError(30, "Read-only file system", "/r"), "[EROFS]"),
    (PermissionError(13, "Permission denied", "/r"), "[EACCES]"),
    (EOFError("No data left in file"), "EOFError"),
    (RecursionError("maximum recursion depth exceeded"), "nested too deeply"),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), "UnicodeDecodeError"),
])
def test_error_classes_a_user_can_cause_are_one_line(monkeypatch, capsys, exc, contains):
    import ebmlab.cli as cli

    def boom(args):
        raise exc
    monkeypatch.setitem(cli._COMMANDS, "plot", boom)
    line = fails_cleanly(["plot", "r"], capsys, contains)
    assert line.startswith("ebmlab: error: ")


def test_debug_shows_the_traceback(monkeypatch, tmp_path, capsys):
    argv = ["sample", str(tmp_path / "nope"), "--out", str(tmp_path / "s.npy")]
    with pytest.raises(EBMError):
        cli_main(["--debug", *argv])
    monkeypatch.setenv("EBMLAB_DEBUG", "1")
    with pytest.raises(EBMError):
        cli_main(argv)
    monkeypatch.setenv("EBMLAB_DEBUG", "0")
    fails_cleanly(argv, capsys, "does not exist")


def test_a_bug_is_one_line_exit_1_and_says_so(monkeypatch, capsys):
    import ebmlab.cli as cli

    def boom(args):
        raise KeyError("oops")
    monkeypatch.setitem(cli._COMMANDS, "plot", boom)
    assert cli_main(["plot", "r"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ebmlab: internal error: KeyError") and "--debug" in err[0]
