"""An audit of ``ebmlab train`` as a demanding user meets it: each finding pinned by a test that failed before
its fix. Every refusal is one line ``ebmlab: error: ...``, exit status 2, and nothing written."""
from __future__ import annotations

import json

import pytest

from ebmlab.cli import main


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished 6-step 2-D run (persistent chains, mh-jump), checkpoints at 3 and 6."""
    from helpers_runs import train_tiny_run
    return train_tiny_run(tmp_path_factory.mktemp("train_audit"))


def _one_line_error(capsys, *words: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("ebmlab: error: ") and err.count("\n") == 1, err
    for w in words:
        assert w in err, err
    return err


@pytest.mark.parametrize("text, words", [
    ("[1, 2]", ("table/object of settings", "list")),                  # was: internal error (TypeError)
    ('{"out": "elsewhere", "steps": 3}', ("'out'", "unknown")),         # was: internal error (start_run's out=)
    ('{"force": true}', ("'force'", "unknown")),
])
def test_a_config_file_that_is_not_a_table_of_settings_is_one_line(tmp_path, capsys, text, words):
    # `--config c.json` holding a JSON list, or a key named like a start_run argument (out, force, config),
    # ended in "ebmlab: internal error: TypeError ... (a bug in ebmlab)"
    cfg = tmp_path / "c.json"
    cfg.write_text(text)
    assert main(["train", "--data", "moons", "--config", str(cfg), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    _one_line_error(capsys, str(cfg), *words)
    assert not (tmp_path / "r").exists() and not (tmp_path / "elsewhere").exists()


def test_resume_to_fewer_steps_than_done_is_refused_and_config_kept(tiny_run, tmp_path, capsys):
    # `--resume DIR --steps 3` of a run at step 6 said "trained 0 steps (steps 6 -> 6)" and rewrote
    # config.json's steps to 3 (a user who meant "3 more" got nothing, and the run's record was wrong)
    from helpers_runs import copy_run
    run = copy_run(tiny_run, tmp_path)
    before = (run / "config.json").read_text()
    assert main(["train", "--resume", str(run), "--steps", "3", "--quiet"]) == 2
    _one_line_error(capsys, "step 6", "--steps 9")
    assert (run / "config.json").read_text() == before
    assert main(["train", "--resume", str(run), "--steps", "6", "--quiet"]) == 0     # its own total: fine


def test_out_at_a_folder_ebmlab_did_not_make_does_not_advise_resume_or_force(tmp_path, capsys):
    # "run directory 'notes' already exists; use --resume to continue it or use --force to replace it": both
    # refuse a folder of the user's (not a run directory; no marker)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    assert main(["train", "--data", "moons", "--out", str(tmp_path / "notes"), "--steps", "2", "--quiet"]) == 2
    err = _one_line_error(capsys, "not an ebmlab run directory", "keep.txt", "another --out")
    assert "--resume" not in err and "--force" not in err
    assert sorted(p.name for p in (tmp_path / "notes").iterdir()) == ["keep.txt"]


@pytest.mark.parametrize("net", ["conv", "resnet", "shortrun"])
def test_an_image_network_on_vector_data_is_refused_not_silently_an_mlp(tmp_path, capsys, net):
    # `--data moons --net conv` trained the MLP (the same weights as --net auto) and recorded net "conv"
    assert main(["train", "--data", "moons", "--net", net, "--out", str(tmp_path / "r"), "--steps", "2",
                 "--quiet"]) == 2
    _one_line_error(capsys, f"net {net!r}", "images", "mlp")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("flag", [["--binary"], ["--categories", "3"]])
@pytest.mark.parametrize("data", ["moons", "digits"])
def test_binary_or_categorical_declared_on_a_continuous_builtin_set_is_refused(tmp_path, capsys, flag, data):
    # `--data moons --binary` (or --categories 3) trained the continuous 2-D recipe: the declaration that
    # refuses a .npy with a value other than 0/1 was silently dropped for a built-in set
    assert main(["train", "--data", data, *flag, "--out", str(tmp_path / "r"), "--steps", "2", "--quiet"]) == 2
    _one_line_error(capsys, flag[0], data)
    assert not (tmp_path / "r").exists()


def test_binary_declared_on_the_binary_builtin_sets_still_trains(tmp_path, capsys):
    assert main(["train", "--data", "digits-binary-4x4", "--binary", "--out", str(tmp_path / "r"), "--steps", "2",
                 "--quiet", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 2


def test_image_size_help_says_an_image_folder_needs_it(tmp_path, capsys):
    # the help said "default: the data's own", but an image folder without --image-size is refused
    import argparse
    from ebmlab.cli import _parser
    (sub,) = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    text = next(a.help for a in sub.choices["train"]._actions if a.dest == "image_size")
    assert "image folder" in text and "required" in text, text
    folder = tmp_path / "pictures"
    folder.mkdir()
    assert main(["train", "--data", str(folder), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    _one_line_error(capsys, "--image-size")


@pytest.mark.parametrize("content, words", [(b"", "empty file"), (b"x,y\n1,2\n3,4\n", "not in NumPy's .npy format")])
def test_a_data_file_that_is_not_npy_is_named_with_what_it_is(tmp_path, capsys, content, words):
    # an empty .npy ended as "ebmlab: error: EOFError: No data left in file" (no file named), a text file as
    # numpy's advice to load it with allow_pickle
    data = tmp_path / "x.npy"
    data.write_bytes(content)
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    err = _one_line_error(capsys, str(data), words, "numpy.save")
    assert "pickle" not in err and "EOFError" not in err
    assert not (tmp_path / "r").exists()


def test_importing_ebmlab_loads_no_torch():
    # a Ctrl-C in the seconds torch takes to load printed a traceback: `import ebmlab` (which runs before the
    # command line's handler) pulled torch in through EnergyModel; every public name is now lazy
    import subprocess
    import sys
    code = "import sys, ebmlab; assert 'torch' not in sys.modules; from ebmlab import EnergyModel; print(EnergyModel.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "EnergyModel"


def test_ctrl_c_while_the_command_line_loads_is_one_line(monkeypatch, capsys):
    # the console script and `python -m ebmlab` enter through ebmlab.__main__.run, whose handler covers the
    # import of ebmlab.cli (and torch with it)
    import builtins
    import sys
    from ebmlab.__main__ import run
    real_import = builtins.__import__

    def interrupted_import(name, *args, **kwargs):
        if name == "ebmlab.cli":      # Ctrl-C arrives while the command line (torch) loads
            import signal
            signal.raise_signal(signal.SIGINT)
        return real_import(name, *args, **kwargs)
    monkeypatch.delitem(sys.modules, "ebmlab.cli", raising=False)
    monkeypatch.setattr(builtins, "__import__", interrupted_import)
    with pytest.raises(SystemExit) as exit_info:
        run()
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == "ebmlab: interrupted\n"


def test_the_console_script_enters_through_the_light_entry_point():
    import tomllib
    from pathlib import Path
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["ebmlab"] == "ebmlab.__main__:run"


def test_threads_beyond_the_cores_are_capped_with_a_warning(tmp_path):
    # --threads 1000 on this 2-core machine spawned 1000 torch threads: a 3-step run took minutes
    import os
    import torch
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    before = torch.get_num_threads()
    try:
        with pytest.warns(UserWarning, match=f"--threads {cores + 7} is more than the {cores} CPU cores"):
            assert main(["train", "--data", "moons", "--out", str(tmp_path / "r"), "--steps", "2", "--quiet",
                         "--threads", str(cores + 7)]) == 0
        assert torch.get_num_threads() == cores
    finally:
        torch.set_num_threads(before)


def test_threads_within_the_cores_are_used_as_given():
    from ebmlab.device import usable_cpu_threads
    assert usable_cpu_threads(1) == 1


def test_a_run_that_rolled_back_says_so_when_it_ends(tmp_path, capsys, monkeypatch):
    # a run that diverged, rolled back and retried at a lower learning rate ended with the same summary as one
    # that never diverged (the retries only in events.jsonl); the real rollback is test_guard's, here its count
    from ebmlab.training.trainer import Trainer
    fit = Trainer.fit

    def fit_with_two_rollbacks(self):
        result = fit(self)
        self.rollbacks, self.lr_scale = 2, 0.25
        return result
    monkeypatch.setattr(Trainer, "fit", fit_with_two_rollbacks)
    assert main(["train", "--data", "moons", "--out", str(tmp_path / "r"), "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "diverged and rolled back 2 time(s), learning rate now 0.25x (events.jsonl has each)" in out
    assert main(["train", "--data", "moons", "--out", str(tmp_path / "j"), "--steps", "2", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert (res["rollbacks"], res["lr_scale"]) == (2, 0.25)


def _discrete_files(tmp_path):
    import numpy as np
    rng = np.random.default_rng(0)
    cat, bits = tmp_path / "cat.npy", tmp_path / "bits.npy"
    np.save(cat, rng.integers(0, 3, (200, 4)))
    np.save(bits, rng.integers(0, 2, (200, 6)))
    return cat, bits


@pytest.mark.parametrize("case, args, words", [
    # categorical data was called "binary data", and drl on discrete data advised dsm / ssm, which refuse it
    ("cat", ["--categories", "3", "--objective", "ssm"], "use objective 'cd' for one-hot categorical data"),
    ("cat", ["--categories", "3", "--objective", "drl"], "trains on continuous images; for categorical data use cd"),
    ("bits", ["--objective", "drl"], "trains on continuous images; for binary data use cd"),
    ("cat", ["--categories", "3", "--net", "conv"], "net 'conv' does not take categorical data"),
    ("cat", ["--categories", "3", "--net", "resnet"], "categorical data is modelled by the MLP (net mlp) or a Potts model"),
])
def test_discrete_data_refusals_name_the_data_and_what_fits_it(tmp_path, capsys, case, args, words):
    cat, bits = _discrete_files(tmp_path)
    out = tmp_path / "run"
    code = main(["train", "--data", str(cat if case == "cat" else bits), "--out", str(out), "--steps", "2",
                 "--quiet", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0], err
    assert "binary" not in err[0] or case == "bits"
    assert not out.exists()


def test_grad_clip_zero_is_refused_not_a_chain_of_pure_noise(tmp_path, capsys):
    # 0 clipped every gradient away (the samplers' own grad_clip refuses it too); empty means no clipping
    out = tmp_path / "run"
    assert main(["train", "--data", "moons", "--out", str(out), "--steps", "2", "--grad-clip", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "grad_clip must be > 0, or empty for no clipping" in err[0], err
    assert not out.exists()


def test_a_bad_label_is_printed_as_a_number(tmp_path, capsys):
    # the row's value printed as np.float64(-1.5)
    import numpy as np
    data, labels = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(data, np.random.default_rng(0).normal(size=(50, 2)))
    y = np.zeros(50)
    y[3] = -1.5
    np.save(labels, y)
    assert main(["train", "--data", str(data), "--labels", str(labels), "--preset", "conditional",
                 "--out", str(tmp_path / "run"), "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "row 3 is -1.5" in err and "np.float64" not in err, err


def test_an_unknown_setting_names_the_nearest_known_key(tmp_path, capsys):
    # the one-line error listed all ~70 keys and left the user to find the one a typo meant
    (tmp_path / "c.toml").write_text("stepz = 5\n")
    assert main(["train", "--data", "moons", "--out", str(tmp_path / "run"), "--config",
                 str(tmp_path / "c.toml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown key(s) 'stepz' (did you mean 'stepz' -> 'steps'?)" in err[0], err


def test_an_unknown_setting_from_python_names_the_nearest_known_key():
    import torch
    import ebmlab
    with pytest.raises(ebmlab.EBMError, match=r"'stepz' \(did you mean 'stepz' -> 'steps'\?\)"):
        ebmlab.train(torch.nn.Linear(2, 1), torch.randn(20, 2), stepz=3)


def test_held_out_points_outside_the_support_box_are_said_not_a_bare_inf(tmp_path, capsys):
    # a 3-point set holds out one point; here (seed 0) it falls outside the box of the other two, and the
    # summary said only "exact test NLL inf nats"
    import numpy as np
    data = tmp_path / "three.npy"
    np.save(data, np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]))
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--steps", "3", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "1 of 1 held-out points lie outside the support box learned from the training data" in out, out
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "j"), "--steps", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_points_outside_box"] == 1


def test_an_mlp_on_continuous_images_is_refused_not_silently_a_conv_net(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--net", "mlp", "--out", str(out), "--steps", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "net 'mlp' is for vectors; for images use net auto" in err[0], err
    assert not out.exists()


def test_a_damaged_newest_checkpoint_names_the_earlier_ones_and_the_hint_works(tmp_path, capsys):
    # a run keeps 2 checkpoints by default, but a damaged newest one read as the end of the run: --resume stopped
    # with "the run directory is damaged" and no word of the intact one before it
    run = tmp_path / "run"
    assert main(["train", "--data", "moons", "--out", str(run), "--steps", "20", "--checkpoint-every", "5",
                 "--quiet"]) == 0
    ckdir = run / "checkpoints"
    assert (ckdir / "LATEST").read_text().strip() == "step-0000020"
    (ckdir / "step-0000020" / "model.safetensors").write_bytes(b"not a safetensors file")
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", "30", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "earlier checkpoints: step-0000015: to go on from one, write its name into" in err[0], err
    (ckdir / "LATEST").write_text("step-0000015")
    assert main(["train", "--resume", str(run), "--steps", "30", "--quiet"]) == 0
    assert (ckdir / "LATEST").read_text().strip() == "step-0000030"


@pytest.mark.parametrize("flags, key, owner", [
    (["--nce-ratio", "8"], "nce_ratio", "nce"),                         # cd trained on, the ratio unread
    (["--ssm-projections", "4"], "ssm_projections", "ssm"),
    (["--dsm-sigmas", "0.2"], "dsm_sigmas", "dsm / sampler annealed-langevin"),
])
def test_a_setting_the_run_s_objective_does_not_read_is_named(tmp_path, recwarn, flags, key, owner):
    # `--nce-ratio 8` on a cd run (the default objective) was accepted and ignored without a word
    assert main(["train", "--data", "moons", "--steps", "2", "--out", str(tmp_path / "r"), "--quiet", *flags]) == 0
    said = [str(w.message) for w in recwarn if key in str(w.message)]
    assert len(said) == 1, said                                            # once, not once per resolve
    assert f"read only by {owner}" in said[0] and "objective 'cd' ignores it" in said[0]


def test_settings_of_the_run_s_own_objective_or_sampler_raise_no_warning(tmp_path, recwarn):
    assert main(["train", "--data", "moons", "--steps", "2", "--out", str(tmp_path / "a"), "--quiet",
                 "--objective", "nce", "--nce-ratio", "2"]) == 0
    assert main(["train", "--data", "moons", "--steps", "2", "--out", str(tmp_path / "b"), "--quiet",
                 "--sampler", "annealed-langevin", "--dsm-sigmas", "0.3,0.1"]) == 0
    said = [str(w.message) for w in recwarn]
    assert not [m for m in said if "read only by" in m], said


def test_mcmc_steps_zero_is_refused_where_the_chains_make_the_negatives(tmp_path, capsys):
    # `--mcmc-steps 0` trained a cd run whose negatives never moved from their start: data against noise
    assert main(["train", "--data", "moons", "--mcmc-steps", "0", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    _one_line_error(capsys, "mcmc_steps 0", "'cd'", "at least 1")
    assert not (tmp_path / "r").exists()
    # score matching and nce have no chains in their loss: 0 stays allowed there
    assert main(["train", "--data", "moons", "--objective", "dsm", "--mcmc-steps", "0", "--steps", "2",
                 "--out", str(tmp_path / "d"), "--quiet"]) == 0
    assert json.loads((tmp_path / "d" / "config.json").read_text())["mcmc_steps"] == 0
