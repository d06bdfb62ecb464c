"""An audit of the commands other than ``train`` (sample, eval, plot, compose, inpaint, runs, export,
prepare, completion) across the kinds of run: each finding a user could hit, pinned by a test."""
from __future__ import annotations

from ebmlab.cli import _parser


def _subparser(name: str):
    import argparse
    (sub,) = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sub, sub.choices[name]


def test_train_help_names_every_objective_not_only_cd():
    # `ebmlab --help` said "train an EBM by contrastive divergence" after dsm/ssm/nce/drl arrived
    sub, _ = _subparser("train")
    line = next(a.help for a in sub._choices_actions if a.dest == "train")
    for word in ("contrastive divergence", "score matching", "NCE", "recovery likelihood"):
        assert word in line, line



def test_help_texts_name_what_the_commands_take_and_write():
    # the docs audit's findings: train's --data left out the binary digits, --preset the discrete recipes,
    # --net potts; plot's line left out two of its pictures; inpaint's --out did not say it is a prefix
    import ebmlab.data.binary as binary
    from ebmlab.rundir.config import NETS
    from ebmlab.training.presets import PRESETS
    sub, train = _subparser("train")
    helps = {a.dest: a.help for a in train._actions}
    assert all(name in helps["data"] for name in binary.BINARY_DIGITS), helps["data"]
    assert all(name in helps["preset"] for name in PRESETS), helps["preset"]
    assert all(name in helps["net"] for name in NETS if name not in ("custom",)), helps["net"]
    plot_line = next(a.help for a in sub._choices_actions if a.dest == "plot")
    assert "traces.png" in plot_line and "energy_hist.png" in plot_line, plot_line
    _, inpaint = _subparser("inpaint")
    assert "-inpaint.png" in next(a.help for a in inpaint._actions if a.dest == "out")

def _fake_run(d, objective: str, steps: int = 60, events: list[dict] | None = None):
    """A run directory as `ebmlab runs` sees one (config.json, data.json; no checkpoint yet)."""
    import json
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"steps": steps, "objective": objective}))
    (d / "data.json").write_text(json.dumps({"kind": "vector", "event_shape": [2]}))
    if events is not None:
        (d / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return d


def test_runs_lists_the_objective_and_a_diverged_run_as_diverged(tmp_path, capsys):
    # `ebmlab runs` showed no objective (a dsm and a cd run looked alike), and a run the divergence guard
    # stopped was "partial" ("resume it"), though resuming repeats the divergence unless settings change
    from ebmlab.tasks.runs_list import format_rows, list_runs
    diverged = {"event": "diverged", "step": 1, "quantity": "param_update", "value": 19.2, "message": "..."}
    _fake_run(tmp_path / "a-dsm", "dsm")
    _fake_run(tmp_path / "b-div", "cd", events=[diverged])
    _fake_run(tmp_path / "c-rolled", "nce", events=[diverged, {"event": "rollback", "diverged_at": 1}])
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in list_runs(tmp_path)}
    assert rows["a-dsm"]["objective"] == "dsm" and rows["a-dsm"]["status"] == "partial"
    assert rows["b-div"]["status"] == "diverged"
    assert rows["c-rolled"]["status"] == "partial" and rows["c-rolled"]["objective"] == "nce"
    lines = format_rows(list(sorted(rows.values(), key=lambda r: r["path"])))
    assert " dsm " in lines[0] and " diverged " in lines[1] and " nce " in lines[2]


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished 6-step 2-D run (persistent chains, mh-jump)."""
    from helpers_runs import train_tiny_run
    return train_tiny_run(tmp_path_factory.mktemp("audit"))


def _annealed(run_dir, levels=(1.0, 0.5, 0.25, 0.1), mcmc_steps=40):
    """The tiny run opened with dsm's annealed Langevin over ``levels`` as its sampler (as a dsm run has it)."""
    from ebmlab.tasks.open import open_run
    run = open_run(run_dir)
    run.config = run.config.replace(sampler="annealed-langevin", dsm_sigmas=list(levels), mcmc_steps=mcmc_steps)
    return run


def test_sample_n_steps_spreads_an_annealed_chain_over_all_its_levels(tiny_run, monkeypatch):
    # `sample --n-steps 8` of a dsm run (40 training steps over 4 levels) ran 8 steps of the top two
    # levels only: the samples stayed at sigma 0.5 (and a noise-conditional model denoised them as at 0.1)
    import ebmlab.tasks.sample as sample_task
    seen = []
    real = sample_task.sampler_from_config
    monkeypatch.setattr(sample_task, "sampler_from_config", lambda cfg, *a: seen.append(cfg) or real(cfg, *a))
    sample_task.draw_samples(_annealed(tiny_run), 4, n_steps=8)
    kernel = real(seen[-1], *_kernel_args(tiny_run))
    assert kernel.steps_per_level * 4 == 8
    sample_task.draw_samples(_annealed(tiny_run), 4)        # the default: the training chain, unchanged
    assert seen[-1].mcmc_steps == 40


def _kernel_args(run_dir):
    from ebmlab.tasks.open import open_run
    run = open_run(run_dir)
    return run.model, run.data


def test_sample_of_an_annealed_chain_refuses_a_trajectory_and_too_few_steps(tiny_run):
    # each --trajectory chunk restarted the annealing at the top level: the written samples were those of a
    # K-step chain at high noise
    from ebmlab.errors import EBMError
    from ebmlab.tasks.sample import draw_samples
    with pytest.raises(EBMError, match="--trajectory is not available with the annealed-langevin sampler"):
        draw_samples(_annealed(tiny_run), 4, trajectory_every=2)
    with pytest.raises(EBMError, match="fewer than the 4 noise levels"):
        draw_samples(_annealed(tiny_run), 4, n_steps=3)


def test_eval_says_why_a_run_has_no_likelihood(tmp_path):
    # `ebmlab eval` of an image or d > 3 run printed no log Z / NLL and said nothing about it
    import numpy as np
    from helpers_runs import TINY6
    from ebmlab.tasks.evaluate import evaluate_run
    from ebmlab.tasks.open import open_run
    from ebmlab.training.api import start_run
    g = np.random.default_rng(0)
    np.save(tmp_path / "x4.npy", g.normal(size=(120, 4)).astype(np.float32))
    trainer, _ = start_run(str(tmp_path / "x4.npy"), tmp_path / "run", **{**TINY6, "steps": 2})
    trainer.fit()
    trainer.run_lock.release()
    out = evaluate_run(open_run(tmp_path / "run"), n_samples=50)
    assert "nll" not in out and "--log-z ais" in out["log_z_note"] and "4-dimensional" in out["log_z_note"]



def test_eval_quadrature_of_an_image_run_is_refused_with_what_to_use(tmp_path, capsys):
    # it failed with exact_nll's advice to a Python user: "pass bounds=[(lo, hi), ...]"
    from helpers_runs import fails_cleanly
    from ebmlab.training.api import start_run
    trainer, _ = start_run("digits", tmp_path / "run", steps=1, batch_size=8, mcmc_steps=1, plot_every=1000)
    trainer.fit()
    trainer.run_lock.release()
    line = fails_cleanly(["eval", str(tmp_path / "run"), "--log-z", "quadrature"], capsys, "--log-z ais")
    assert "bounds=" not in line


def test_plot_of_a_binary_image_run_draws_its_sample_grid(tmp_path):
    # binary images are trained as vectors (d = 16 here), so `ebmlab plot` (and train's final picture) drew
    # no samples.png for them, though `sample --out x.png` draws them as images
    from ebmlab.tasks.open import open_run
    from ebmlab.tasks.plot import plot_run
    from ebmlab.training.api import start_run
    trainer, _ = start_run("digits-binary-4x4", tmp_path / "run", steps=2, batch_size=16, mcmc_steps=2,
                           plot_every=1000)
    trainer.fit()
    trainer.run_lock.release()
    written = plot_run(open_run(tmp_path / "run"))
    assert tmp_path / "run" / "samples.png" in written and (tmp_path / "run" / "samples.png").is_file()


def test_inpaint_of_a_vector_run_says_what_the_run_is(tiny_run, tmp_path, capsys):
    from helpers_runs import fails_cleanly
    fails_cleanly(["inpaint", str(tiny_run), "--image", str(tmp_path / "x.png"), "--out", str(tmp_path / "p")],
                  capsys, "was trained on 2-dimensional vectors")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["sample", "eval", "plot", "inpaint"])
@pytest.mark.parametrize("seed", ["99999999999999999999999", "-1"])
def test_a_seed_torch_cannot_take_is_a_usage_error(tiny_run, tmp_path, capsys, command, seed):
    # --seed 99999999999999999999999 ended as "internal error: ValueError: Overflow when unpacking long long"
    from ebmlab.cli import main
    extra = {"sample": ["--out", str(tmp_path / "x.npy")], "inpaint": ["--image", str(tmp_path / "x.png")]}
    with pytest.raises(SystemExit) as e:
        main([command, str(tiny_run), "--seed", seed, *extra.get(command, [])])
    assert e.value.code == 2 and "seed from 0 to 2**63 - 1" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_sample_of_too_many_chains_is_one_line_and_writes_nothing(tiny_run, tmp_path, capsys):
    # --n 1000000000000 ended as "internal error: RuntimeError: ... DefaultCPUAllocator: can't allocate memory"
    from helpers_runs import fails_cleanly
    fails_cleanly(["sample", str(tiny_run), "--n", "1000000000000", "--out", str(tmp_path / "x.npy")], capsys,
                  "samples a sampling run may draw")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_torch_allocation_is_a_users_error_not_a_bug():
    # what torch raises when memory runs out (a CPU RuntimeError, a CUDA OutOfMemoryError), e.g. eval --fid
    # of too many images: the user can fix it, so one line and exit 2 like Python's MemoryError
    import torch
    from ebmlab.cli import error_line
    cpu = RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
                       "you tried to allocate 8000000000000 bytes. Error code 12 (Cannot allocate memory)")
    for e in (cpu, torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")):
        line, code = error_line(e)
        assert code == 2 and "out of memory" in line
    assert error_line(RuntimeError("shape mismatch"))[1] == 1          # other RuntimeErrors stay bugs


def test_compose_refuses_an_exported_file_and_a_drl_run_in_one_line(tiny_run, tmp_path, capsys):
    # an exported file failed with "cannot read data description (data.json) .../m.safetensors/data.json: Not a
    # directory"; a drl run was composed, and the composite then refused to sample (it has no levels to walk)
    from helpers_runs import fails_cleanly
    from ebmlab.cli import main
    from ebmlab.training.api import start_run
    assert main(["export", str(tiny_run), "--out", str(tmp_path / "m.safetensors")]) == 0
    fails_cleanly(["compose", str(tmp_path / "m.safetensors"), str(tiny_run), "--op", "and",
                   "--out", str(tmp_path / "c")], capsys, "is a file of `ebmlab export`")
    trainer, _ = start_run("digits", tmp_path / "drl", preset="digits", objective="drl", steps=1, batch_size=8,
                           mcmc_steps=1, drl_levels=2, net_width=4, plot_every=1000)
    trainer.fit()
    trainer.run_lock.release()
    fails_cleanly(["compose", str(tmp_path / "drl"), "--temperature", "2", "--out", str(tmp_path / "c")], capsys,
                  "trained with --objective drl")
    assert not (tmp_path / "c").exists()


def test_compose_onto_an_existing_composite_does_not_advise_resume(tiny_run, tmp_path, capsys):
    # "already exists; use --resume to continue it" — compose has no --resume, and a composite is never trained
    from helpers_runs import fails_cleanly
    from ebmlab.cli import main
    out = tmp_path / "c"
    assert main(["compose", str(tiny_run), "--temperature", "2", "--out", str(out)]) == 0
    line = fails_cleanly(["compose", str(tiny_run), "--temperature", "3", "--out", str(out)], capsys, "--force")
    assert "--resume" not in line


def test_sample_out_that_is_a_folder_is_named_as_such(tiny_run, tmp_path, capsys):
    # it failed with "Is a directory [EISDIR]: .../.d.npy.zs_7zpkb.tmp", naming a temporary file
    from helpers_runs import fails_cleanly
    (tmp_path / "d.npy").mkdir()
    fails_cleanly(["sample", str(tiny_run), "--n", "4", "--n-steps", "1", "--out", str(tmp_path / "d.npy")],
                  capsys, "is a folder")
    assert [p.name for p in tmp_path.iterdir()] == ["d.npy"] and not any((tmp_path / "d.npy").iterdir())


def test_plot_of_an_exported_file_says_what_to_do(tiny_run, tmp_path, capsys):
    # it failed with "File exists [EEXIST]: m.safetensors" (it tried to make the file a folder of pictures)
    from helpers_runs import fails_cleanly
    from ebmlab.cli import main
    assert main(["export", str(tiny_run), "--out", str(tmp_path / "m.safetensors")]) == 0
    capsys.readouterr()
    fails_cleanly(["plot", str(tmp_path / "m.safetensors")], capsys, "ebmlab sample")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]


def test_sampler_refusals_name_what_fits(tiny_run, tmp_path, capsys):
    # sample --from buffer of a dsm run said "its recipe is not persistent" (the 2d preset's negatives are
    # persistent; dsm draws none); --method gibbs on continuous data offered the categorical samplers too
    from helpers_runs import fails_cleanly
    from ebmlab.errors import EBMError
    from ebmlab.tasks.open import open_run
    from ebmlab.tasks.sample import draw_samples
    run = open_run(tiny_run)
    run.config = run.config.replace(objective="dsm")
    (tmp_path / "empty").mkdir()
    run.path = tmp_path / "empty"                # no checkpoint, so no buffer
    with pytest.raises(EBMError, match="objective dsm draws no negative chains"):
        draw_samples(run, 4, start="buffer")
    line = fails_cleanly(["sample", str(tiny_run), "--method", "gibbs", "--n", "2", "--out", str(tmp_path / "x.npy")],
                         capsys, "continuous; choose one of")
    assert "categorical" not in line and "langevin" in line


def test_noise_conditional_sampler_hint_names_the_flag_of_each_command():
    # "use --sampler annealed-langevin" was the advice in `sample`, whose flag is --method
    from ebmlab.errors import EBMError
    from ebmlab.rundir.config import RunConfig
    with pytest.raises(EBMError, match="--method in sample"):
        RunConfig(objective="dsm", dsm_conditional=True, sampler="langevin", dsm_sigmas=[1.0, 0.1])


def test_trajectory_is_drawn_for_binary_images_and_refused_for_vectors(tmp_path, tiny_run, capsys):
    # --trajectory on a 2-D or a binary-image run was silently ignored (no strip, no word): binary images
    # are trained as vectors, and the strip was drawn for non-vector runs only
    from helpers_runs import fails_cleanly
    from ebmlab.cli import main
    from ebmlab.training.api import start_run
    fails_cleanly(["sample", str(tiny_run), "--n", "4", "--trajectory", "2", "--out", str(tmp_path / "v.png")],
                  capsys, "sample without it")
    assert list(tmp_path.iterdir()) == []
    trainer, _ = start_run("digits-binary-4x4", tmp_path / "bin", steps=1, batch_size=16, mcmc_steps=2,
                           plot_every=1000)
    trainer.fit()
    trainer.run_lock.release()
    assert main(["sample", str(tmp_path / "bin"), "--n", "4", "--n-steps", "4", "--trajectory", "2",
                 "--out", str(tmp_path / "b.png")]) == 0
    assert (tmp_path / "b-trajectory.png").is_file()


def test_eval_on_an_image_folder_reads_it_at_the_models_size(tiny_run, tmp_path, capsys, monkeypatch):
    # eval --data FOLDER failed with "an image folder needs --image-size", a flag eval does not have
    from helpers_runs import fails_cleanly
    import ebmlab.tasks.evaluate as evaluate
    from ebmlab.tasks.open import Run, open_run
    (tmp_path / "imgs").mkdir()
    line = fails_cleanly(["eval", str(tiny_run), "--data", str(tmp_path / "imgs")], capsys, "2-dimensional vectors")
    assert "--image-size" not in line
    seen = {}

    def fake_load(spec, seed, n_test, test_fraction, image_size, **kw):
        seen["image_size"] = image_size
        raise evaluate.EBMError("stop here")
    monkeypatch.setattr(evaluate, "load_data", fake_load)
    run = open_run(tiny_run)
    image_run = Run(run.path, run.model, run.config, {**run.data, "kind": "image", "event_shape": [1, 8, 8]})
    with pytest.raises(evaluate.EBMError, match="stop here"):
        evaluate.evaluate_run(image_run, data=str(tmp_path / "imgs"))
    assert seen["image_size"] == 8


def test_ctrl_c_before_a_command_runs_is_one_line(monkeypatch, capsys):
    # Ctrl-C while the parser (presets, samplers) loaded, a few seconds on a busy machine, printed a traceback:
    # only the command itself was inside main's KeyboardInterrupt handler
    import ebmlab.cli as cli

    def slow_parser():
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "_parser", slow_parser)
    assert cli.main(["runs"]) == 130
    assert capsys.readouterr().err == "ebmlab: interrupted\n"
