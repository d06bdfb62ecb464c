"""Every objective gets CD's guarantees (issue 15): the divergence guard and rollback, exact resume,
checkpoints the other commands read, its own stats in the progress bar and the logs, and bad input
refused in one line with nothing written. The per-objective tests that live elsewhere
(test_objectives_score_nce.py, test_objective_drl.py, test_objective_dsm_conditional.py,
test_conditional_training.py, test_ema.py, test_resume.py) are not repeated here; this file fills the
cells of the objective x guarantee matrix they left empty."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ebmlab.rundir.config import RunConfig
from ebmlab.training.api import resume_run, start_run

from helpers_runs import assert_runs_identical, events, fails_cleanly, metric_rows, tiny_data

# tiny runs of each objective the CLI and ebmlab.train offer, on the data kind it fits
VEC = dict(steps=6, batch_size=32, hidden=8, depth=1, checkpoint_every=3, log_every=2, plot_every=1000,
           tensorboard=False, seed=2)
DIG = dict(steps=4, batch_size=16, net_width=4, checkpoint_every=2, log_every=1, plot_every=1000,
           tensorboard=False, seed=2)
RUNS = {
    "cd": ("vec", dict(mcmc_steps=2, buffer_size=64)),
    "dsm": ("vec", dict(objective="dsm", dsm_sigmas=[0.3])),
    "dsm-levels": ("vec", dict(objective="dsm", dsm_sigmas=[0.5, 0.2, 0.1], sampler="annealed-langevin",
                               mcmc_steps=6)),
    "ssm": ("vec", dict(objective="ssm")),
    "nce": ("vec", dict(objective="nce")),
    "dsm-conditional": ("digits", dict(preset="digits", objective="dsm", dsm_conditional=True,
                                       dsm_sigmas=[1.0, 0.3, 0.05], sampler="annealed-langevin", mcmc_steps=3)),
    "drl": ("digits", dict(preset="digits", objective="drl", drl_levels=2, mcmc_steps=2)),
    "jem": ("digits", dict(preset="jem", labels="builtin", mcmc_steps=2)),
    "conditional": ("digits", dict(preset="conditional", labels="builtin", mcmc_steps=2)),
}


def _start(name: str, tmp_path, out, **kw):
    kind, cfg = RUNS[name]
    if kind == "vec":
        return start_run(str(tiny_data(tmp_path / "x.npy")), out, **{**VEC, **cfg, **kw})
    return start_run("digits", out, **{**DIG, **cfg, **kw})


# ------------------------------------------------------------------ the guard, per objective
# objectives without the trainer's MCMC chains (and dsm/ssm/nce ignore --l2): the divergence message
# named --mcmc-steps and --l2 as remedies for every objective, knobs these runs do not have
@pytest.mark.parametrize("name,absent,present", [
    ("dsm", ["--mcmc-steps", "--l2"], ["--lr"]),
    ("ssm", ["--mcmc-steps", "--l2"], ["--lr"]),
    ("nce", ["--mcmc-steps", "--l2"], ["--lr"]),
    ("drl", ["--mcmc-steps"], ["--lr", "--step-size"]),
    ("cd", [], ["--lr", "--mcmc-steps", "--l2"]),
    ("jem", [], ["--lr", "--mcmc-steps", "--l2"]),
])
def test_a_divergence_names_remedies_the_objective_has(tmp_path, capsys, name, absent, present):
    torch.set_num_threads(1)
    trainer, _ = _start(name, tmp_path, tmp_path / "run", lr=1e4)
    from ebmlab.training.guard import DivergenceError
    with pytest.raises(DivergenceError) as e:
        trainer.fit()
    msg = str(e.value)
    assert "\n" not in msg and "training diverged at step 1" in msg
    for flag in absent:
        assert flag not in msg, msg
    for flag in present:
        assert flag in msg, msg
    ev = events(tmp_path / "run")
    assert ev[-1]["event"] == "diverged" and ev[-1]["message"] == msg


@pytest.mark.parametrize("name,at", [("dsm", 5), ("dsm-levels", 5), ("ssm", 5), ("nce", 5), ("dsm-conditional", 5),
                                     ("drl", 5), ("jem", 5), ("conditional", 5), ("nce", 2), ("drl", 2)])
def test_rollback_recovers_each_objective_from_an_exploding_step(tmp_path, monkeypatch, name, at):
    """An update of 1e6 to every weight (NCE's log Z included) at step ``at``: the guard catches it, the run
    rolls back to the checkpoint at 3 (or, before it, to the state at step 0: weights, optimiser, the
    objective's own state), halves the lr and finishes with finite weights; nothing of the poisoned step
    reaches a checkpoint."""
    import ebmlab.training.trainer as tr
    from helpers_runs import all_checkpoint_tensors_finite
    torch.set_num_threads(1)
    trainer, model = _start(name, tmp_path, tmp_path / "run", on_divergence="rollback", steps=6,
                            checkpoint_every=3, log_every=2)
    real, hit = tr.check_step, {"n": 0}

    def explode(step, guarded, limits):
        if step == at and not hit["n"]:
            hit["n"] = 1
            with torch.no_grad():
                for p in trainer._params:
                    p.add_(1e6)
            guarded = {**guarded, **tr.param_quantities(trainer._params, torch.tensor(1.0))}
        return real(step, guarded, limits)
    monkeypatch.setattr(tr, "check_step", explode)
    res = trainer.fit()
    assert res.status == "finished" and res.step == 6 and hit["n"] == 1 and trainer.rollbacks == 1
    ev = [e for e in events(tmp_path / "run") if e["event"] == "rollback"]
    assert len(ev) == 1 and ev[0]["restored_step"] == (3 if at > 3 else 0) and ev[0]["diverged_at"] == at
    assert all(float(p.detach().abs().max()) < 1e5 for p in trainer._params)
    assert all_checkpoint_tensors_finite(tmp_path / "run")
    rows = metric_rows(tmp_path / "run")
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert all(np.isfinite(v) for r in rows for v in r.values())


# ------------------------------------------------------------------ progress bar and logs
# the progress bar showed f+ - f-, the acceptance and |grad| only: a dsm, ssm or nce run's bar held |grad|
# alone, none of its own stats (issue 15: "its stats in the progress bar")
@pytest.mark.parametrize("name,labels", [
    ("cd", ["f+ - f-", "acc", "|grad|"]),
    ("dsm", ["dsm", "|grad|"]),
    ("dsm-levels", ["dsm", "|grad|"]),
    ("ssm", ["ssm", "|grad|"]),
    ("nce", ["nce acc", "log Z", "|grad|"]),
    ("drl", ["f+ - f-", "move", "|grad|"]),
])
def test_the_progress_bar_shows_the_objective_s_own_stats(tmp_path, name, labels):
    from ebmlab.training.progress import ProgressBar
    torch.set_num_threads(1)
    bar = ProgressBar()
    trainer, _ = _start(name, tmp_path, tmp_path / "run", callbacks=[bar], steps=2, log_every=2)
    seen = {}
    real = bar.on_log

    def on_log(tr, row):
        real(tr, row)
        seen.update(bar.bar.postfix and dict(kv.split("=", 1) for kv in bar.bar.postfix.split(", ")))
    bar.on_log = on_log
    try:
        assert trainer.fit().status == "finished"
    finally:
        bar.close()
    assert list(seen) == labels, seen
    assert all(np.isfinite(float(v)) for v in seen.values()), seen
    # the metrics log and TensorBoard's scalars are the row itself: the objective's stats, finite
    row = metric_rows(tmp_path / "run")[-1]
    for key, _, _ in trainer.objective.progress:
        assert key in row and np.isfinite(row[key])


# ------------------------------------------------------------------ bad input
# dsm_sigmas [0.3, 0.3, 0.1] was accepted: on a noise-conditional network the second 0.3 is a level the loss
# never trains (each example's sigma goes to the first level that equals it) and annealed sampling walks through it
@pytest.mark.parametrize("argv", [
    ["--data", "moons", "--objective", "dsm", "--dsm-sigmas", "0.3,0.1,0.3"],
    ["--data", "digits", "--objective", "dsm", "--dsm-conditional", "--sampler", "annealed-langevin",
     "--dsm-sigmas", "0.3,0.3,0.1"],
])
def test_a_noise_level_given_twice_is_refused_in_one_line(tmp_path, capsys, argv):
    out = tmp_path / "run"
    line = fails_cleanly(["train", *argv, "--out", str(out), "--steps", "2"], capsys, "dsm_sigmas")
    assert "0.3" in line and "twice" in line
    assert not out.exists()


def test_a_noise_level_given_twice_from_python_and_a_config_file_is_refused(tmp_path, capsys):
    import ebmlab
    from ebmlab.errors import EBMError
    with pytest.raises(EBMError, match="dsm_sigmas holds 0.2 twice"):
        ebmlab.train("mlp", "moons", tmp_path / "py", objective="dsm", dsm_sigmas=(0.5, 0.2, 0.2), steps=2,
                     progress=False)
    assert not (tmp_path / "py").exists()
    toml = tmp_path / "c.toml"
    toml.write_text('objective = "dsm"\ndsm_sigmas = [0.5, 0.5]\n')
    fails_cleanly(["train", "--data", "moons", "--config", str(toml), "--out", str(tmp_path / "cf")], capsys,
                  "dsm_sigmas holds 0.5 twice")
    assert not (tmp_path / "cf").exists()
    # the order is free: the levels are a set (the model and the sampler sort them)
    assert RunConfig(objective="dsm", dsm_sigmas=[0.1, 0.5, 0.2]).dsm_sigmas == [0.1, 0.5, 0.2]


# ------------------------------------------------------------------ exact resume after a kill
def _bits(path, categories: int | None = None):
    g = np.random.default_rng(0)
    x = g.integers(0, categories, (200, 5)) if categories else (g.random((200, 6)) > 0.5).astype(np.float32)
    np.save(path, x)
    return str(path.resolve())


# data, settings: the objectives and data kinds whose resume no test compared bit for bit (CD's persistent
# chains on 2-D data are test_resume.py's; dsm/ssm/nce/drl without EMA test_objectives_score_nce.py's ...)
KILLED = {
    "cd-short-run": ("vec", dict(negatives="short-run", mcmc_steps=2)),
    "cd-negatives-cd": ("vec", dict(negatives="cd", mcmc_steps=2)),
    "binary": ("bits", dict(mcmc_steps=2, buffer_size=64)),
    "categorical": ("cats", dict(categories=3, mcmc_steps=2, buffer_size=64)),
    "dsm-levels-ema": ("vec", dict(objective="dsm", dsm_sigmas=[0.5, 0.1], ema_decay=0.9)),
    "nce-ema": ("vec", dict(objective="nce", ema_decay=0.9)),
    "drl-ema": ("digits", dict(preset="digits", objective="drl", drl_levels=2, mcmc_steps=2, ema_decay=0.9)),
}


@pytest.mark.parametrize("name", list(KILLED))
def test_a_run_killed_after_a_checkpoint_resumes_bit_exactly(tmp_path, name):
    """SIGKILL in the middle of step 5 (checkpoint at 3, a metrics row at 4 already written), then
    resume_run: the final weights, EMA, optimiser, generators, the objective's state and the metrics
    log equal an uninterrupted run's."""
    import os
    import signal
    import time
    import warnings
    from helpers_runs import install_pause_hook
    torch.set_num_threads(1)
    kind, cfg = KILLED[name]
    data = {"vec": lambda: str(tiny_data(tmp_path / "x.npy")), "digits": lambda: "digits",
            "bits": lambda: _bits(tmp_path / "b.npy"), "cats": lambda: _bits(tmp_path / "c.npy", 3)}[kind]()
    cfg = {**(DIG if kind == "digits" else VEC), "steps": 6, "checkpoint_every": 3, "log_every": 2, **cfg}
    ref, _ = start_run(data, tmp_path / "ref", **cfg)
    assert ref.fit().status == "finished"
    marker = tmp_path / "m"
    marker.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:                                     # the child trains until it pauses inside step 5
        try:
            install_pause_hook("step", 5, marker)
            trainer, _ = start_run(data, tmp_path / "run", **cfg)
            trainer.fit()
        finally:
            os._exit(1)
    t_end = time.time() + 120
    while not (marker / "paused").exists() and time.time() < t_end:
        assert os.waitpid(pid, os.WNOHANG)[0] == 0, "the child ended before its kill point"
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert (marker / "paused").exists()
    assert [r["step"] for r in metric_rows(tmp_path / "run")] == [2, 4]     # a row past the checkpoint
    rest = resume_run(tmp_path / "run")
    assert rest.step == 3 and rest.fit().status == "finished"
    assert_runs_identical(tmp_path / "ref", tmp_path / "run")


# ------------------------------------------------------------------ the other commands on each objective's run
@pytest.mark.slow          # 6-12 s each on a shared core: plot's quadrature grids, eval's chains
@pytest.mark.parametrize("name,commands", [
    ("ssm", ["score", "plot"]),
    ("nce", ["score", "plot", "sample"]),
    ("dsm-levels", ["score", "plot"]),
    ("dsm-conditional", ["score", "plot", "eval"]),
    ("drl", ["score", "plot", "eval"]),
])
def test_score_plot_and_eval_read_each_objective_s_run(tmp_path, capsys, name, commands):
    """(sample of dsm-levels, dsm-conditional and drl runs: test_objectives_score_nce.py, test_objective_dsm_conditional.py,
    test_objective_drl.py)"""
    from ebmlab.cli import main
    torch.set_num_threads(1)
    trainer, _ = _start(name, tmp_path, tmp_path / "run", steps=2)
    trainer.fit()
    trainer.run_lock.release()
    run = str(tmp_path / "run")
    if RUNS[name][0] == "vec":
        pts = np.load(tmp_path / "x.npy")[:7]
    else:
        from sklearn.datasets import load_digits
        pts = load_digits().images[:7, None].astype(np.float32)
    np.save(tmp_path / "pts.npy", pts)
    argv = {"score": ["score", run, "--data", str(tmp_path / "pts.npy"), "--out", str(tmp_path / "f.npy")],
            "plot": ["plot", run], "eval": ["eval", run, "--json"],
            "sample": ["sample", run, "--n", "5", "--out", str(tmp_path / "s.npy")]}
    for cmd in commands:
        code = main(argv[cmd])
        err = capsys.readouterr().err
        assert code == 0, (cmd, err)
    f = np.load(tmp_path / "f.npy")
    assert f.shape == (7,) and np.isfinite(f).all()
    assert list((tmp_path / "run").glob("*.png"))
    if "sample" in commands:
        s = np.load(tmp_path / "s.npy")
        assert s.shape == (5, 2) and np.isfinite(s).all()


# nce on binary or categorical data trained (its Gaussian noise against the data's points: nce_acc -> 1, a
# learned log Z unrelated to the model's, the NLL drifting away from the entropy), and the refusals of dsm, ssm
# and drl on such data advised it
@pytest.mark.parametrize("categories", [None, 3])
def test_nce_on_discrete_data_is_refused_naming_cd(tmp_path, capsys, categories):
    import ebmlab
    from ebmlab.errors import EBMError
    data = _bits(tmp_path / "d.npy", categories)
    flags = ["--categories", "3"] if categories else []
    out = tmp_path / "run"
    line = fails_cleanly(["train", "--data", data, *flags, "--objective", "nce", "--out", str(out), "--steps", "2"],
                         capsys, "use objective 'cd'")
    assert ("categorical" if categories else "binary") in line and not out.exists()
    with pytest.raises(EBMError, match="objective 'nce' contrasts the data with continuous Gaussian noise"):
        ebmlab.train(None, np.load(data), tmp_path / "py", objective="nce", categories=categories, steps=2,
                     progress=False)
    assert not (tmp_path / "py").exists()
    line = fails_cleanly(["train", "--data", data, *flags, "--objective", "dsm", "--out", str(out), "--steps", "2"],
                         capsys, "use objective 'cd'")
    assert "'nce'" not in line.split("values;")[1]


# a sampler that cannot be built for the model was refused before anything was written only when the objective
# runs chains; for dsm / ssm / nce (whose sampler is generation's) the whole run trained, then the final picture
# failed, leaving a run directory that `ebmlab sample` refuses
@pytest.mark.parametrize("argv,contains", [
    (["--data", "moons", "--objective", "ssm", "--sampler", "recovery"], "--objective drl"),
    (["--data", "moons", "--objective", "dsm", "--sampler", "recovery"], "--objective drl"),
    (["--data", "digits", "--objective", "nce", "--sampler", "mh-jump"], "needs vector data"),
])
def test_a_generation_sampler_that_cannot_be_built_is_refused_before_training(tmp_path, capsys, argv, contains):
    import ebmlab
    from ebmlab.errors import EBMError
    out = tmp_path / "run"
    fails_cleanly(["train", *argv, "--out", str(out), "--steps", "2", "--batch-size", "16"], capsys, contains)
    assert not out.exists()
    kw = dict(zip([a.lstrip("-").replace("-", "_") for a in argv[2::2]], argv[3::2]))
    with pytest.raises(EBMError, match=contains):
        ebmlab.train("auto", argv[1], tmp_path / "py", steps=2, batch_size=16, progress=False, **kw)
    assert not (tmp_path / "py").exists()


@pytest.mark.parametrize("name", ["nce", "dsm-conditional"])
def test_ctrl_c_during_an_objective_s_run_checkpoints_and_resumes_bit_exactly(tmp_path, name):
    """SIGINT (Ctrl-C) to the training process during step 4: the step finishes, is checkpointed as
    "interrupted", and the resumed run equals an uninterrupted one (test_resume.py does this for cd)."""
    import os
    import signal
    torch.set_num_threads(1)
    ref, _ = _start(name, tmp_path, tmp_path / "ref", steps=6, checkpoint_every=3, log_every=2)
    assert ref.fit().status == "finished"

    class CtrlC:
        def on_checkpoint(self, trainer, step):
            if step == 3:
                os.kill(os.getpid(), signal.SIGINT)      # handled by the trainer: stop at the next step boundary
    part, _ = _start(name, tmp_path, tmp_path / "run", steps=6, checkpoint_every=3, log_every=2, callbacks=[CtrlC()])
    res = part.fit()
    assert res.status == "interrupted" and res.step == 3
    part.run_lock.release()
    rest = resume_run(tmp_path / "run")
    assert rest.fit().status == "finished"
    assert_runs_identical(tmp_path / "ref", tmp_path / "run")


# dsm_sigmas 1e-50 (0 in float32) was accepted: on vectors the loss is then ½‖ε‖², no gradient, and the run
# "trained" nothing without a word; on a noise-conditional network f = n / σ was infinite and the error blamed
# the network's initialisation
@pytest.mark.parametrize("argv", [
    ["--data", "moons", "--objective", "dsm", "--dsm-sigmas", "1e-50"],
    ["--data", "moons", "--objective", "dsm", "--dsm-sigmas", "0.5,1e-9"],
    ["--data", "digits", "--objective", "dsm", "--dsm-sigmas", "1,1e-50"],
])
def test_a_noise_level_below_float32_resolution_is_refused(tmp_path, capsys, argv):
    out = tmp_path / "run"
    fails_cleanly(["train", *argv, "--out", str(out), "--steps", "2"], capsys, "must be at least 1e-06")
    assert not out.exists()
    assert RunConfig(objective="dsm", dsm_sigmas=[1e-6, 0.5]).dsm_sigmas == [1e-6, 0.5]


@pytest.mark.parametrize("objective", ["jem", "conditional"])
def test_labels_of_one_class_are_refused_naming_the_classes(tmp_path, capsys, objective):
    """One class was refused with "a conditional model's network must return logits [B, K] ... got (4,)":
    about the network, not the labels the user gave."""
    from torch.utils.data import TensorDataset
    import ebmlab
    from ebmlab.errors import EBMError
    x = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(EBMError, match="needs labels of at least two classes; these labels hold 1"):
        ebmlab.train("auto", TensorDataset(x, torch.zeros(200, dtype=torch.long)), tmp_path / "py",
                     objective=objective, steps=2, progress=False)
    assert not (tmp_path / "py").exists()
    np.save(tmp_path / "x.npy", x.numpy())
    np.save(tmp_path / "y.npy", np.zeros(200, dtype=np.int64))
    out = tmp_path / "run"
    fails_cleanly(["train", "--data", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"), "--preset",
                   objective, "--out", str(out), "--steps", "2"], capsys, "at least two classes")
    assert not out.exists()


def test_continuous_data_of_two_values_per_coordinate_is_not_called_binary(tmp_path, capsys):
    """Two distinct float rows repeated (values 3.1, -0.7 ...): dsm refused them as "binary data"."""
    g = np.random.default_rng(0)
    np.save(tmp_path / "two.npy", np.repeat(g.normal(size=(2, 3)), 50, 0).astype(np.float32))
    out = tmp_path / "run"
    line = fails_cleanly(["train", "--data", str(tmp_path / "two.npy"), "--objective", "dsm", "--out", str(out),
                          "--steps", "2"], capsys, "takes at most two values; use objective 'cd'")
    assert "binary" not in line and not out.exists()
