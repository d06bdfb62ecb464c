"""The command line explains itself (issue 16): help text and defaults on every option, closed sets as
choices, --version, ``python -m ebmlab``, --json on every command that prints results, ``ebmlab runs``."""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ebmlab.cli import _parser, main, package_version
from ebmlab.samplers.registry import SAMPLER_NAMES
from ebmlab.training.presets import PRESETS
from helpers_runs import TINY_TOML, subprocess_env, tiny_data

# actions whose meaning is their presence: nothing to show as a default
_FLAG_ACTIONS = (argparse._StoreTrueAction, argparse._StoreConstAction, argparse._HelpAction,
                 argparse._VersionAction, argparse._CountAction)


def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _option(p: argparse.ArgumentParser, flag: str) -> argparse.Action:
    return next(a for a in p._actions if flag in a.option_strings)


def test_every_option_has_help_and_its_default():
    top = _parser()
    subs = _subparsers(top)
    assert {"train", "sample", "eval", "plot", "compose", "prepare", "inpaint", "runs"} <= set(subs)
    missing, no_default = [], []
    for name, p in [("ebmlab", top), *subs.items()]:
        formatter = p._get_formatter()
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                continue
            where = f"{name} {'/'.join(a.option_strings) or a.dest}"
            if not a.help or a.help == argparse.SUPPRESS:
                missing.append(where)
                continue
            shown = formatter._get_help_string(a).lower()
            if a.option_strings and not isinstance(a, _FLAG_ACTIONS) and not a.required \
                    and "default" not in shown and "required" not in shown:
                no_default.append(where)
    assert not missing, f"options without help text: {missing}"
    assert not no_default, f"options whose help shows no default: {no_default}"


def test_train_hyper_parameters_say_the_preset_decides():
    train = _subparsers(_parser())["train"]
    for flag in ("--steps", "--lr", "--mcmc-steps", "--step-size", "--batch-size"):
        assert "from the preset" in _option(train, flag).help


def test_closed_sets_are_choices():
    subs = _subparsers(_parser())
    assert list(_option(subs["train"], "--preset").choices) == list(PRESETS)
    assert list(_option(subs["train"], "--sampler").choices) == list(SAMPLER_NAMES)
    assert list(_option(subs["sample"], "--method").choices) == list(SAMPLER_NAMES)


def test_global_options_before_or_after_the_command():
    p = _parser()
    assert p.parse_args(["--threads", "2", "runs"]).threads == 2
    assert p.parse_args(["runs", "--threads", "3"]).threads == 3
    assert p.parse_args(["runs", "--debug"]).debug and not p.parse_args(["runs"]).debug


def test_version_attribute_and_cli_flag_agree():
    import ebmlab
    assert ebmlab.__version__ == package_version() != "unknown"
    r = subprocess.run([sys.executable, "-m", "ebmlab", "--version"], capture_output=True, text=True,
                       env=subprocess_env(), timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == f"ebmlab {package_version()}"


def test_version_of_a_checkout_is_its_pyproject_not_stale_install_metadata(monkeypatch):
    """The bug: an editable install keeps the metadata of the version it was installed at, so a 0.10.0
    checkout reported 0.8.0 (benchmark headers said "ebmlab 0.8.0"). The checkout's pyproject.toml wins."""
    import importlib.metadata
    import tomllib
    from pathlib import Path
    import ebmlab.cli
    project = tomllib.loads((Path(ebmlab.cli.__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.0.1")     # stale metadata
    assert package_version() == project["version"] != "0.0.1"


def test_python_dash_m_ebmlab_help():
    r = subprocess.run([sys.executable, "-m", "ebmlab", "--help"], capture_output=True, text=True,
                       env=subprocess_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    for command in ("train", "sample", "eval", "runs"):
        assert command in r.stdout


def _json(argv: list[str], capsys) -> object:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """runs/a (finished 2-D run), runs/b (partial: killed after its first checkpoint), runs/c (composite)."""
    tmp = tmp_path_factory.mktemp("cli_json")
    data = tiny_data(tmp / "blobs.npy")
    (tmp / "tiny.toml").write_text(TINY_TOML)
    base = ["train", "--data", str(data), "--config", str(tmp / "tiny.toml"), "--steps", "6", "--batch-size", "64",
            "--buffer-size", "256", "--mcmc-steps", "5", "--log-every", "2", "--checkpoint-every", "3", "--quiet"]
    return tmp, base


def test_json_of_every_command(runs, capsys, tmp_path):
    tmp, base = runs
    root = tmp_path / "runs"
    before = set(tmp.iterdir())
    cfg = _json([*base, "--print-config"], capsys)
    assert cfg["steps"] == 6 and cfg["hidden"] == 16 and cfg["preset"] == "2d"
    assert set(tmp.iterdir()) == before            # --print-config writes nothing
    res = _json([*base, "--out", str(root / "a"), "--json"], capsys)
    assert res["steps"] == 6 and res["status"] == "finished" and "exact_test_nll" in res
    res = _json(["sample", str(root / "a"), "--n", "16", "--out", str(tmp_path / "s.npy"), "--json"], capsys)
    assert res["written"] == [str(tmp_path / "s.npy")] and np.load(tmp_path / "s.npy").shape == (16, 2)
    res = _json(["eval", str(root / "a"), "--json"], capsys)
    assert isinstance(res, dict) and res
    res = _json(["plot", str(root / "a"), "--json"], capsys)
    assert res["written"] and all(Path(p).exists() for p in res["written"])
    res = _json(["compose", str(root / "a"), "--temperature", "2", "--out", str(root / "c"), "--json"], capsys)
    assert res == {"run_dir": str(root / "c")}

    # partial: a run killed after its first checkpoint (LATEST still names step 3 of 6)
    shutil.copytree(root / "a", root / "b")
    ck = root / "b" / "checkpoints"
    shutil.rmtree(ck / "step-0000006")
    (ck / "LATEST").write_text("step-0000003")
    listing = _json(["runs", str(root), "--json"], capsys)
    by_name = {Path(r["path"]).name: r for r in listing}
    assert by_name["a"]["status"] == "finished" and (by_name["a"]["step"], by_name["a"]["total"]) == (6, 6)
    assert by_name["a"]["metric"] == "gap" and isinstance(by_name["a"]["value"], float)
    assert by_name["b"]["status"] == "partial" and by_name["b"]["step"] == 3
    assert by_name["c"]["kind"] == "composite" and by_name["c"]["status"] == "-"
    assert main(["runs", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and "finished" in lines[0] and "6/6" in lines[0] and "partial" in lines[1]

    # training: another process holds the run's lock
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from ebmlab.rundir.lock import RunLock; "
                               "l = RunLock(sys.argv[1]); print('held', flush=True); time.sleep(120)", str(root / "b")],
                              stdout=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        assert holder.stdout.readline().strip() == "held"
        listing = _json(["runs", str(root), "--json"], capsys)
        assert {Path(r["path"]).name: r["status"] for r in listing}["b"] == "training"
    finally:
        holder.kill()
        holder.wait()


def test_json_of_image_commands(capsys, tmp_path):
    from PIL import Image
    g = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for k in range(12):
        Image.fromarray(g.integers(0, 256, (10, 10), dtype=np.uint8)).save(folder / f"{k}.png")
    res = _json(["prepare", str(folder), "--size", "8", "--out", str(tmp_path / "c.npy"), "--json"], capsys)
    assert res["shape"] == [12, 1, 8, 8] and res["loaded"] == 12
    res = _json(["train", "--data", str(tmp_path / "c.npy"), "--out", str(tmp_path / "img"), "--steps", "2",
                 "--mcmc-steps", "2", "--batch-size", "8", "--quiet", "--json"], capsys)
    assert res["steps"] == 2
    res = _json(["inpaint", str(tmp_path / "img"), "--image", str(folder / "0.png"), "--resize", "--n-steps", "2",
                 "--out", str(tmp_path / "fill"), "--json"], capsys)
    assert Path(res["written"]).exists() and res["panels"] == ["original", "masked", "filled"]


def test_runs_of_a_missing_folder_is_one_line(capsys, tmp_path):
    assert main(["runs", str(tmp_path / "nope")]) == 2
    assert "is not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [["--objective", "nce"], ["--objective", "dsm", "--dsm-sigmas", "0.5,0.1"],
                                   ["--objective", "ssm", "--sm-uniform", "0.1"],
                                   ["--preset", "conditional", "--labels", "y.npy"]])
def test_print_config_is_the_config_json_the_run_writes(tmp_path, capsys, monkeypatch, flags):
    """--print-config shows what config.json will hold, relative paths included (a --labels file given
    relative to the working directory was printed as given but recorded resolved)."""
    from ebmlab.training.api import release_run, start_run
    monkeypatch.chdir(tmp_path)
    tiny_data(tmp_path / "x.npy")
    np.save(tmp_path / "y.npy", (np.arange(200) % 2).astype(np.int64))
    argv = ["train", "--data", "x.npy", "--steps", "2", *flags]
    printed = _json([*argv, "--print-config"], capsys)
    settings = {k.lstrip("-").replace("-", "_"): v for k, v in zip(flags[::2], flags[1::2])}
    if "dsm_sigmas" in settings:
        settings["dsm_sigmas"] = [0.5, 0.1]
    if "sm_uniform" in settings:
        settings["sm_uniform"] = 0.1
    trainer, _ = start_run("x.npy", tmp_path / "run", steps=2, **settings)
    release_run(trainer)
    assert printed == json.loads((tmp_path / "run" / "config.json").read_text())
