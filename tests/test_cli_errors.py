"""CLI validation (issue 5, "Validation everywhere"): every user mistake ends with exit status 2,
exactly one line ``ebmlab: error: ...`` on stderr (argparse's own errors: usage + one error line),
no traceback, and no run directory created, half-written or changed."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from ebmlab.cli import main as cli_main
from ebmlab.training.api import start_run

from helpers_runs import TINY, fails_cleanly, run_cli, tiny_data


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under root with its content hash (and every directory)."""
    if not root.exists():
        return {}
    out = {}
    for p in sorted(root.rglob("*")):
        out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out




def _argparse_fails(argv: list[str], capsys, contains: str) -> None:
    with pytest.raises(SystemExit) as e:
        cli_main(argv)
    cap = capsys.readouterr()
    assert e.value.code == 2
    assert "Traceback" not in cap.err and contains in cap.err, cap.err
    assert cap.err.strip().splitlines()[-1].startswith("ebmlab"), cap.err


@pytest.fixture()
def files(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros(10, np.float32))
    np.save(tmp_path / "cube.npy", np.zeros((10, 2, 2), np.float32))
    x = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    x[3, 1] = np.nan
    np.save(tmp_path / "nan.npy", x)
    np.save(tmp_path / "empty.npy", np.zeros((0, 2), np.float32))
    np.save(tmp_path / "two.npy", np.zeros((2, 2), np.float32) + [[0, 1]])
    (tmp_path / "text.npy").write_text("not an array")
    (tmp_path / "bad.toml").write_text("hidden = [1\n")
    (tmp_path / "unknown.toml").write_text("hiddn = 16\n")
    (tmp_path / "neg.toml").write_text("buffer_size = -3\n")
    tiny_data(tmp_path / "ok.npy")
    return tmp_path


@pytest.mark.parametrize("data, contains", [
    ("{tmp}/missing.npy", "does not exist"),
    ("moonz", "not found"),
    ("{tmp}/flat.npy", "shape"),
    ("{tmp}/cube.npy", "shape"),
    ("{tmp}/nan.npy", "NaN"),
    ("{tmp}/empty.npy", "empty"),
    ("{tmp}/two.npy", "too few points"),
    ("{tmp}/text.npy", ".npy"),
])
def test_bad_data_is_one_line_and_creates_nothing(files, capsys, data, contains):
    out = files / "run"
    fails_cleanly(["train", "--data", data.format(tmp=files), "--out", str(out), "--steps", "3", "--quiet"],
                   capsys, contains)
    assert not out.exists()


@pytest.mark.parametrize("flags, contains", [
    (["--step-size", "-0.1"], "step_size"),
    (["--step-size=-1"], "step_size"),
    (["--lr", "nan"], "lr"),
    (["--lr", "inf"], "lr"),
    (["--lr", "0"], "lr"),
    (["--l2", "-1"], "l2"),
    (["--jump-prob", "1.5"], "jump_prob"),
    (["--mcmc-steps", "-2"], "mcmc_steps"),
    (["--seed", "-1"], "seed"),
    (["--buffer-size", "0"], "buffer_size"),
    (["--config", "{tmp}/bad.toml"], "cannot parse"),
    (["--config", "{tmp}/unknown.toml"], "hiddn"),
    (["--config", "{tmp}/neg.toml"], "buffer_size"),
    (["--config", "{tmp}/missing.toml"], "does not exist"),
    (["--config", "{tmp}/ok.npy"], ".toml or .json"),
])
def test_bad_settings_are_one_line_and_create_nothing(files, capsys, flags, contains):
    out = files / "run"
    flags = [f.format(tmp=files) for f in flags]
    fails_cleanly(["train", "--data", str(files / "ok.npy"), "--out", str(out), *flags, "--quiet"],
                   capsys, contains)
    assert not out.exists()


@pytest.mark.parametrize("flags, contains", [
    (["--sampler", "nuts"], "invalid choice"),
    (["--negatives", "sometimes"], "invalid choice"),
    (["--on-divergence", "pray"], "invalid choice"),
    (["--preset", "nope"], "invalid choice"),     # a closed set since issue 16: argparse refuses it
    (["--objective", "ssm", "--sm-uniform-schedule", "cosine"], "invalid choice"),
    (["--objective", "ssm", "--ssm-directions", "sphere"], "invalid choice"),
    (["--steps", "0"], "positive integer"),
    (["--steps", "ten"], "positive integer"),
    (["--lr", "fast"], "invalid float"),
])
def test_argparse_errors_exit_2_without_traceback(files, capsys, flags, contains):
    out = files / "run"
    _argparse_fails(["train", "--data", str(files / "ok.npy"), "--out", str(out), *flags], capsys, contains)
    assert not out.exists()


def test_train_needs_data_and_out(files, capsys):
    fails_cleanly(["train", "--out", str(files / "run")], capsys, "--data")
    fails_cleanly(["train", "--data", "moons"], capsys, "--out")
    assert not (files / "run").exists()


@pytest.fixture(scope="module")
def existing_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("cli_existing")
    trainer, _ = start_run(str(tiny_data(tmp / "x.npy")), tmp / "run", **{**TINY, "steps": 3})
    trainer.fit()
    return tmp / "run"


def test_out_existing_without_force_is_refused_and_untouched(existing_run, files, capsys):
    before = _snapshot(existing_run)
    fails_cleanly(["train", "--data", str(files / "ok.npy"), "--out", str(existing_run), "--quiet"], capsys,
                   "already exists")
    assert _snapshot(existing_run) == before


def test_force_on_a_non_run_directory_is_refused_and_untouched(files, capsys):
    precious = files / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    (precious / "sub").mkdir()
    (precious / "sub" / "data.csv").write_text("1,2\n")
    before = _snapshot(precious)
    fails_cleanly(["train", "--data", str(files / "ok.npy"), "--out", str(precious), "--force", "--quiet"],
                   capsys, "not an ebmlab run directory")
    assert _snapshot(precious) == before


def test_out_is_a_file(files, capsys):
    f = files / "afile"
    f.write_text("x")
    fails_cleanly(["train", "--data", str(files / "ok.npy"), "--out", str(f), "--quiet"], capsys, "not a directory")
    assert f.read_text() == "x"


def test_invalid_flags_with_force_leave_the_old_run_in_place(existing_run, files, capsys):
    """Validation happens before --force deletes anything."""
    before = _snapshot(existing_run)
    fails_cleanly(["train", "--data", str(files / "nan.npy"), "--out", str(existing_run), "--force", "--quiet"],
                   capsys, "NaN")
    fails_cleanly(["train", "--data", str(files / "ok.npy"), "--out", str(existing_run), "--force",
                    "--step-size", "-1", "--quiet"], capsys, "step_size")
    assert _snapshot(existing_run) == before


@pytest.mark.parametrize("what", ["empty", "files", "missing", "file"])
def test_resume_on_a_non_run_directory(files, capsys, what):
    d = files / "notarun"
    if what == "empty":
        d.mkdir()
    elif what == "files":
        d.mkdir()
        (d / "notes.txt").write_text("hello")
    elif what == "file":
        d.write_text("hello")
    before = _snapshot(d) if d.is_dir() else None
    fails_cleanly(["train", "--resume", str(d), "--quiet"], capsys)
    if d.is_dir():
        assert _snapshot(d) == before
    elif what == "missing":
        assert not d.exists()


def test_resume_refuses_extra_data_flags(existing_run, capsys):
    before = _snapshot(existing_run)
    fails_cleanly(["train", "--resume", str(existing_run), "--data", "moons", "--quiet"], capsys, "--resume")
    assert _snapshot(existing_run) == before


@pytest.mark.parametrize("flags", [["--lr", "0.5"], ["--sampler", "langevin"], ["--ema-decay", "0.9"],
                                   ["--objective", "dsm"], ["--config", "{tmp}/c.toml"]])
def test_resume_refuses_settings_it_would_ignore(existing_run, tmp_path, capsys, flags):
    """A resumed run continues as configured (ebmlab.train(resume=...) refuses anything but steps=): a
    setting flag or --config given with --resume was silently dropped; now it is one line and nothing
    written, like --data."""
    (tmp_path / "c.toml").write_text("lr = 0.5\n")
    before = _snapshot(existing_run)
    line = fails_cleanly(["train", "--resume", str(existing_run), *[f.format(tmp=tmp_path) for f in flags],
                          "--quiet"], capsys, "--resume")
    assert flags[0] in line
    assert _snapshot(existing_run) == before


@pytest.mark.parametrize("cmd", [["sample", "{d}", "--n", "3", "--out", "{tmp}/s.npy"], ["eval", "{d}"],
                                 ["plot", "{d}"]])
def test_other_commands_on_a_non_run_directory(files, capsys, cmd):
    d = files / "plain"
    d.mkdir()
    (d / "notes.txt").write_text("hello")
    fails_cleanly([c.format(d=d, tmp=files) for c in cmd], capsys)
    assert not (files / "s.npy").exists()


def test_real_process_exit_codes_and_stderr(files):
    """The same contract seen from a shell: exit status 2, one stderr line, no traceback, nothing created."""
    out = files / "run"
    res = run_cli("train", "--data", str(files / "nan.npy"), "--out", str(out), "--quiet")
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ebmlab: error: ") and "NaN" in lines[0], res.stderr
    assert not out.exists()
    res = run_cli("train", "--data", str(files / "ok.npy"), "--out", str(out), "--sampler", "nuts")
    assert res.returncode == 2 and "Traceback" not in res.stderr and "invalid choice" in res.stderr
    assert not out.exists()


@pytest.mark.parametrize("ood, contains", [
    (["nonsense"], "unknown --ood 'nonsense'"),
    (["uniform,cifar10"], "unknown --ood 'cifar10'"),
    ([","], "at least one"),
    (["photo-patches"], "photo-patches are images"),          # the run models 2-D vectors
    (["{tmp}/missing.npy"], "does not exist"),
    (["{tmp}/cube.npy"], "the model takes points of shape (2,)"),
    (["uniform", "{tmp}/flat.npy"], "the model takes points of shape (2,)"),
    (["{tmp}/text.npy"], ".npy"),
])
def test_bad_ood_sets_are_one_line(existing_run, files, capsys, ood, contains):
    before = _snapshot(existing_run)
    argv = ["eval", str(existing_run)]
    for o in ood:
        argv += ["--ood", o.format(tmp=files)]
    fails_cleanly(argv, capsys, contains)
    assert _snapshot(existing_run) == before


# ---------------------------------------------------------------------------- labels, --class (issue 6)
@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    """ok.npy (200 points) with label files: good (10 classes), short, fractional, negative; and a
    trained 10-class run."""
    tmp = tmp_path_factory.mktemp("cli_labels")
    tiny_data(tmp / "ok.npy")
    y = np.arange(200) % 10
    np.save(tmp / "y.npy", y)
    np.save(tmp / "short.npy", y[:199])
    np.save(tmp / "frac.npy", np.where(np.arange(200) == 7, 0.5, y).astype(np.float64))
    np.save(tmp / "neg.npy", np.where(np.arange(200) == 3, -1, y))
    np.save(tmp / "text.npy", np.array(["a"] * 200))
    trainer, _ = start_run(str(tmp / "ok.npy"), tmp / "run10", labels=str(tmp / "y.npy"), preset="conditional",
                           **{**TINY, "steps": 2})
    trainer.fit()
    return tmp


@pytest.mark.parametrize("flags, contains", [
    (["--labels", "{tmp}/short.npy", "--preset", "conditional"], "199 labels for 200 examples"),
    (["--labels", "{tmp}/frac.npy", "--preset", "jem"], "must be integers"),
    (["--labels", "{tmp}/text.npy", "--preset", "jem"], "must be integers"),
    (["--labels", "{tmp}/neg.npy", "--preset", "conditional"], ">= 0"),
    (["--labels", "{tmp}/missing.npy", "--preset", "conditional"], "does not exist"),
    (["--labels", "builtin", "--preset", "conditional"], "only available for --data digits"),
    (["--labels", "{tmp}/y.npy"], "--preset conditional or --preset jem"),
    (["--labels", "{tmp}/y.npy", "--preset", "2d"], "--preset conditional or --preset jem"),
    (["--preset", "jem"], "needs class labels"),
    (["--preset", "conditional"], "needs class labels"),
])
def test_bad_labels_are_one_line_and_create_nothing(labelled, capsys, flags, contains):
    out = labelled / "run"
    flags = [f.format(tmp=labelled) for f in flags]
    fails_cleanly(["train", "--data", str(labelled / "ok.npy"), "--out", str(out), *flags, "--quiet"],
                   capsys, contains)
    assert not out.exists()


def test_labels_on_data_without_labels_support(labelled, capsys):
    out = labelled / "run"
    fails_cleanly(["train", "--data", "moons", "--labels", str(labelled / "y.npy"), "--preset", "jem",
                    "--out", str(out), "--quiet"], capsys, "has no labels")
    fails_cleanly(["train", "--data", "digits", "--labels", str(labelled / "y.npy"), "--preset", "jem",
                    "--out", str(out), "--quiet"], capsys, "--labels builtin")
    assert not out.exists()


@pytest.mark.parametrize("klass, contains", [("10", "class 10 is out of range"), ("-1", "class -1 is out of range")])
def test_class_out_of_range_is_one_line(labelled, capsys, klass, contains):
    out = labelled / "s.npy"
    fails_cleanly(["sample", str(labelled / "run10"), "--class", klass, "--n", "3", "--out", str(out)],
                   capsys, contains)
    assert not out.exists()


def test_class_on_an_unconditional_run_is_one_line(existing_run, files, capsys):
    fails_cleanly(["sample", str(existing_run), "--class", "0", "--n", "3", "--out", str(files / "s.npy")],
                   capsys, "needs a conditional model")
    assert not (files / "s.npy").exists()


def test_resume_refuses_labels_flag(labelled, capsys):
    before = _snapshot(labelled / "run10")
    fails_cleanly(["train", "--resume", str(labelled / "run10"), "--labels", "builtin", "--quiet"], capsys,
                   "--resume")
    assert _snapshot(labelled / "run10") == before


# ---------------------------------------------------------------------------- compose (issue 6)
@pytest.fixture(scope="module")
def compose_runs_dir(tmp_path_factory) -> Path:
    """Tiny one-step runs: 3-D vectors (v3), 1x8x8 images stored as 0..255 (img255) and as 0..1 (img01)."""
    tmp = tmp_path_factory.mktemp("cli_compose")
    g = np.random.default_rng(0)
    np.save(tmp / "x3.npy", g.normal(size=(60, 3)).astype(np.float32))
    np.save(tmp / "img255.npy", g.integers(0, 256, (40, 1, 8, 8)).astype(np.uint8))
    np.save(tmp / "img01.npy", g.random((40, 1, 8, 8)).astype(np.float32))
    tiny = dict(steps=1, batch_size=8, mcmc_steps=2, checkpoint_every=1, log_every=1, plot_every=1000)
    for name, kw in [("x3", dict(buffer_size=64, hidden=16, depth=2)), ("img255", {}), ("img01", {})]:
        trainer, _ = start_run(str(tmp / f"{name}.npy"), tmp / name, **tiny, **kw)
        trainer.fit()
    return tmp


@pytest.mark.parametrize("argv, contains", [
    (["{cond}:10", "{cond}:3", "--op", "and"], "class 10 is out of range; this model has classes 0..9"),
    (["{cond}:-1", "{cond}:3", "--op", "or"], "class -1 is out of range"),
    (["{cond}:3"], None),                                        # fine alone: checked below that it works
    (["{plain}:0", "{cond}:3", "--op", "and"], "is unconditional"),
    (["{cond}:x", "{cond}:3", "--op", "and"], "must be an integer"),
    (["{cond}:1", "{cond}:3", "--op", "and", "--weights", "1,2,3"], "got 3 weights for 2 models"),
    (["{cond}:1", "{cond}:3", "--op", "or", "--weights", "1"], "got 1 weights for 2 models"),
    (["{cond}:1", "{cond}:3", "--op", "not", "--weights", "1,2,3"], "'alpha' or 'w_a,alpha'"),
    (["{cond}:1", "{cond}:3", "--op", "and", "--weights", "1,x"], "comma-separated numbers"),
    (["{cond}:1", "{cond}:3", "--op", "and", "--weights", "1,-2"], "weights must be positive"),
    (["{cond}:1", "{cond}:3", "--op", "and", "--temperature", "0"], "--temperature must be a finite number > 0"),
    (["{cond}:1", "--temperature", "-0.5"], "--temperature must be a finite number > 0, got -0.5"),
    (["{cond}:1", "--temperature", "nan"], "--temperature must be a finite number > 0"),
    (["{cond}:1", "{cond}:3"], "give --op"),
    (["{cond}"], "nothing to compose"),
    (["{cond}:1", "--weights", "2"], "--weights needs --op"),
    (["{plain}", "{tmp}/x3", "--op", "and"], "data shapes differ"),
    (["{cond}:1", "{tmp}/x3", "--op", "or"], "data shapes differ"),
    (["{tmp}/img255", "{tmp}/img01", "--op", "and"], "their data scales differ"),
    (["{tmp}/img01", "{tmp}/missing", "--op", "and"], "does not exist"),
])
def test_bad_compose_is_one_line_and_creates_nothing(labelled, existing_run, compose_runs_dir, capsys, argv, contains):
    out = compose_runs_dir / "c"
    fill = dict(cond=labelled / "run10", plain=existing_run, tmp=compose_runs_dir)
    before = {p: _snapshot(p) for p in (labelled / "run10", existing_run)}
    argv = ["compose", *[a.format(**fill) for a in argv], "--out", str(out)]
    if contains is None:
        assert cli_main(argv) == 0
        capsys.readouterr()
        assert (out / "data.json").exists()
        import shutil
        shutil.rmtree(out)
        return
    fails_cleanly(argv, capsys, contains)
    assert not out.exists()
    assert {p: _snapshot(p) for p in before} == before


def test_compose_out_onto_a_component_is_refused_even_with_force(labelled, capsys):
    run = labelled / "run10"
    before = _snapshot(run)
    fails_cleanly(["compose", f"{run}:1", f"{run}:2", "--op", "and", "--out", str(run), "--force"], capsys,
                   "is one of the runs being composed")
    assert _snapshot(run) == before


def test_a_sampler_the_data_cannot_take_is_refused_before_the_run_directory_exists(tmp_path, capsys):
    """The chains' kernel is built by the Trainer, after start_run wrote the run directory: a sampler the
    data cannot take (mh-jump needs a support box, images have none) left config.json, data.json and the
    marker behind, so the corrected command needed --force."""
    out = tmp_path / "run"
    fails_cleanly(["train", "--data", "digits", "--out", str(out), "--sampler", "mh-jump", "--steps", "2",
                   "--quiet"], capsys, "mh-jump")
    assert not out.exists()


def test_compile_without_a_compiler_is_refused_before_the_run_directory_exists(tmp_path, capsys, monkeypatch):
    from ebmlab.samplers import compiled
    monkeypatch.setattr(compiled.shutil, "which", lambda name: None)
    out = tmp_path / "run"
    fails_cleanly(["train", "--data", "moons", "--out", str(out), "--compile", "--steps", "2", "--quiet"], capsys,
                  "C++ compiler")
    assert not out.exists()


def test_an_error_only_one_rank_sees_is_printed_by_that_rank(monkeypatch, capsys):
    """Of N processes only rank 0 printed an EBMError (every rank makes the same mistake), so a failure of
    rank 1 alone (its GPU missing, it could not join) said nothing; that kind (RankError) every rank prints."""
    from ebmlab import cli
    from ebmlab.errors import EBMError, RankError
    monkeypatch.setenv("RANK", "1")
    for error, shown in ((RankError("local rank 1 has no GPU: this machine has 1"), True),
                         (EBMError("a mistake every rank makes"), False)):
        def fail(args, _e=error):
            raise _e
        monkeypatch.setitem(cli._COMMANDS, "runs", fail)
        assert cli.main(["runs"]) == 2
        err = capsys.readouterr().err
        assert (err.strip() == f"ebmlab: error: {error}") if shown else err == "", err
