"""Audit of session 15/16's features (score, input_gain, uint8 .npy scaling, unread-knob warnings, closed pipes):
each test failed before its fix."""
from __future__ import annotations

import numpy as np
import pytest

from ebmlab.cli import main as cli_main

from helpers_runs import fails_cleanly, tiny_data


def test_score_and_sample_refuse_the_run_s_labels_file(tmp_path, capsys):
    """Before: `score RUN --out labels.npy` of a conditional run replaced the labels it was trained on (it would not
    resume: 'labels must be integers')."""
    data = tiny_data(tmp_path / "pts.npy")
    labels = tmp_path / "lab.npy"
    np.save(labels, np.arange(200) % 2)
    assert cli_main(["train", "--data", str(data), "--labels", str(labels), "--objective", "conditional",
                     "--steps", "2", "--mcmc-steps", "2", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    before = labels.read_bytes()
    line = fails_cleanly(["score", str(tmp_path / "run"), "--data", str(data), "--out", str(labels)], capsys)
    assert "labels" in line and "was trained on" in line
    line = fails_cleanly(["sample", str(tmp_path / "run"), "--n", "3", "--out", str(labels)], capsys)
    assert "labels" in line and "was trained on" in line
    assert labels.read_bytes() == before


def test_a_composite_protects_every_component_s_data(tmp_path, capsys):
    """Before: a composite's run.data held only its first component's source, so `score COMPOSITE --out b.npy`
    replaced the second component's training file."""
    for name, seed in (("a", 0), ("b", 1)):
        tiny_data(tmp_path / f"{name}.npy", seed=seed)
        assert cli_main(["train", "--data", str(tmp_path / f"{name}.npy"), "--steps", "2", "--mcmc-steps", "2",
                         "--out", str(tmp_path / f"run_{name}"), "--quiet"]) == 0
    assert cli_main(["compose", str(tmp_path / "run_a"), str(tmp_path / "run_b"), "--op", "and",
                     "--out", str(tmp_path / "both")]) == 0
    capsys.readouterr()
    before = (tmp_path / "b.npy").read_bytes()
    line = fails_cleanly(["score", str(tmp_path / "both"), "--data", str(tmp_path / "a.npy"),
                          "--out", str(tmp_path / "b.npy")], capsys)
    assert "run_b" in line and "was trained on" in line
    line = fails_cleanly(["sample", str(tmp_path / "both"), "--n", "3", "--out", str(tmp_path / "b.npy")], capsys)
    assert "was trained on" in line
    assert (tmp_path / "b.npy").read_bytes() == before
    assert cli_main(["score", str(tmp_path / "both"), "--data", str(tmp_path / "a.npy"),
                     "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (200,)


def test_score_takes_one_categorical_point_and_names_its_option(tmp_path, capsys):
    """Before: a categorical run's score refused a file of one point ('N >= 2', training's rule for a test split) and
    hid every other problem of such a file behind that message; its errors named no --data."""
    g = np.random.default_rng(0)
    np.save(tmp_path / "cat.npy", g.integers(0, 3, (100, 2)))
    assert cli_main(["train", "--data", str(tmp_path / "cat.npy"), "--categories", "3", "--steps", "2",
                     "--mcmc-steps", "2", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    np.save(tmp_path / "one.npy", np.array([[0, 2]]))
    assert cli_main(["score", str(tmp_path / "run"), "--data", str(tmp_path / "one.npy"), "--out",
                     str(tmp_path / "s.npy"), "--log-p"]) == 0
    assert np.load(tmp_path / "s.npy").shape == (1,) and np.isfinite(np.load(tmp_path / "s.npy")).all()
    assert "log_p of 1 point (" in capsys.readouterr().out          # not "of 1 points"
    np.save(tmp_path / "bad.npy", np.array([[0, 5]]))
    capsys.readouterr()
    line = fails_cleanly(["score", str(tmp_path / "run"), "--data", str(tmp_path / "bad.npy"), "--out",
                          str(tmp_path / "t.npy")], capsys)
    assert "--data" in line and "0..2: 5" in line
    np.save(tmp_path / "none.npy", np.zeros((0, 2), np.int64))
    line = fails_cleanly(["score", str(tmp_path / "run"), "--data", str(tmp_path / "none.npy"), "--out",
                          str(tmp_path / "t.npy")], capsys)
    assert "--data" in line and "holds no points" in line
    assert not (tmp_path / "t.npy").exists()


class _Reads:
    """A RunConfig that records which fields are read."""

    def __init__(self, config):
        self._config, self.read = config, set()

    def __getattr__(self, name):
        self.read.add(name)
        return getattr(self._config, name)


# read for every objective by the chains of `ebmlab sample` / `eval` (drl's loss reads them too); and
# dsm_anneal_factor, which RunConfig itself refuses outside dsm
_EVERY_RUN_READS = {"mcmc_steps", "step_size", "dsm_anneal_factor"}


def test_every_objective_only_knob_has_its_readers_as_owners():
    """Each setting an objective's loss reads is one every objective reads, or _KNOB_OWNERS names exactly the
    objectives that read it. Before: l2 (read by cd / conditional / jem / drl) and alpha_cd (jem) were missing, so
    `--objective dsm --l2 0.1` and a cd run's alpha_cd were ignored without a word."""
    from ebmlab.rundir.config import OBJECTIVES, RunConfig
    from ebmlab.training.objectives import OBJECTIVES as CLASSES
    from ebmlab.training.presets import _KNOB_OWNERS
    readers: dict[str, set[str]] = {}
    for name in OBJECTIVES:
        proxy = _Reads(RunConfig())
        CLASSES[name].from_config(proxy)
        for key in proxy.read:
            readers.setdefault(key, set()).add(name)
    for key, objs in readers.items():
        if objs == set(OBJECTIVES) or key in _EVERY_RUN_READS:
            continue
        assert key in _KNOB_OWNERS, f"{key} is read only by {sorted(objs)} but has no entry in _KNOB_OWNERS"
        assert {o for o in _KNOB_OWNERS[key] if o in OBJECTIVES} == objs, (key, _KNOB_OWNERS[key], objs)


@pytest.mark.parametrize("objective", ["cd", "dsm", "ssm", "nce", "conditional", "jem"])
def test_l2_and_alpha_cd_warn_exactly_where_unread(tmp_path, objective):
    """Every objective x {l2, alpha_cd}: a warning naming the key where the objective ignores it, none where it
    reads it (before: never a warning); alpha_cd has no --flag to name."""
    import warnings
    import ebmlab
    from ebmlab.training.presets import _KNOB_OWNERS
    labels = None
    if objective in ("conditional", "jem"):
        labels = str(tmp_path / "y.npy")
        np.save(labels, np.arange(200) % 2)
    x = str(tiny_data(tmp_path / "x.npy"))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ebmlab.train(None, x, tmp_path / "r", labels=labels, objective=objective, steps=2, mcmc_steps=2,
                     l2=0.1, alpha_cd=0.5, progress=False)
    said = [str(w.message) for w in seen if "read only by" in str(w.message)]
    for key in ("l2", "alpha_cd"):
        mine = [m for m in said if m.startswith(key + " ")]
        assert len(mine) == (objective not in _KNOB_OWNERS[key]), (key, said)
    assert not [m for m in said if "--alpha-cd" in m]
    assert len(said) == sum(objective not in _KNOB_OWNERS[k] for k in ("l2", "alpha_cd"))


def test_every_knob_with_a_flag_is_an_option_of_train():
    from ebmlab.cli import _parser
    from ebmlab.training.presets import _KNOB_OWNERS, _NO_FLAG
    train = next(a for a in _parser()._subparsers._group_actions[0].choices.items() if a[0] == "train")[1]
    options = {o for a in train._actions for o in a.option_strings}
    for key in _KNOB_OWNERS:
        assert (("--" + key.replace("_", "-")) in options) == (key not in _NO_FLAG), key


def test_eval_data_names_the_run_s_own_file_however_spelled(tmp_path, capsys, monkeypatch):
    """Before: `eval RUN --data pts.npy` (relative) compared the string with config.json's resolved path, so the run's
    own file evaluated all its points (training ones too, and an image run by today's scaling rule rather than the
    recorded one), while the absolute spelling evaluated the held-out split."""
    import json
    data = tiny_data(tmp_path / "pts.npy")
    assert cli_main(["train", "--data", str(data), "--steps", "2", "--mcmc-steps", "2", "--out",
                     str(tmp_path / "run"), "--quiet"]) == 0
    monkeypatch.chdir(tmp_path)
    got = {}
    for spelled in (str(data), "pts.npy", "./pts.npy"):
        capsys.readouterr()
        assert cli_main(["eval", "run", "--data", spelled, "--json"]) == 0
        res = json.loads(capsys.readouterr().out)
        got[spelled] = (res["n_test"], res["nll"])
    assert len(set(got.values())) == 1, got
    assert got["pts.npy"][0] < 200                       # the held-out split, not the whole file


def test_input_gain_is_refused_for_a_user_network(tmp_path):
    """Before: ebmlab.train(MyNet(), ..., input_gain=2) trained and recorded input_gain 2 in config.json, which no
    part of the user's network reads (the built-in networks' check was skipped for a user's network)."""
    import ebmlab
    from ebmlab.errors import EBMError
    from user_networks import ResidualMLP
    x = str(tiny_data(tmp_path / "x.npy"))
    with pytest.raises(EBMError, match="input_gain .* your own network has no such input"):
        ebmlab.train(ResidualMLP(), x, out=tmp_path / "r", steps=2, mcmc_steps=2, progress=False, input_gain=2.0)
    assert not (tmp_path / "r").exists()
    # gain 1 (and the 2-D nce preset's 1.4, which a user's network drops) trains as before
    ebmlab.train(ResidualMLP(), "moons", out=tmp_path / "n", objective="nce", steps=2, progress=False)
    assert ebmlab.load(tmp_path / "n", trust_code=True) is not None


def test_score_names_values_too_large_for_float32(tmp_path, capsys):
    """Before: finite float64 points beyond float32's range printed numpy's 'overflow encountered in cast' warning
    and then 'contains NaN or infinite values', which the file does not."""
    data = tiny_data(tmp_path / "pts.npy")
    assert cli_main(["train", "--data", str(data), "--steps", "2", "--mcmc-steps", "2", "--out",
                     str(tmp_path / "run"), "--quiet"]) == 0
    np.save(tmp_path / "big.npy", np.array([[1e300, 0.0], [0.0, 0.0]]))
    capsys.readouterr()
    line = fails_cleanly(["score", str(tmp_path / "run"), "--data", str(tmp_path / "big.npy"), "--out",
                          str(tmp_path / "s.npy")], capsys)
    assert "beyond float32's range" in line and "NaN" not in line
    np.save(tmp_path / "nan.npy", np.array([[np.nan, 0.0]]))
    line = fails_cleanly(["score", str(tmp_path / "run"), "--data", str(tmp_path / "nan.npy"), "--out",
                          str(tmp_path / "s.npy")], capsys)
    assert "contains NaN or infinite values" in line
    assert not (tmp_path / "s.npy").exists()


@pytest.mark.parametrize("net, words", [("rbm", "binary {0,1} data"), ("potts", "--categories K")])
def test_a_preset_gain_does_not_mask_the_network_s_own_refusal(tmp_path, capsys, net, words):
    """Before: `--objective nce --net rbm` on 2-D data was told to 'leave input_gain at 1', a setting the user never
    gave (the 2-D nce preset's 1.4), instead of why an rbm / potts does not fit continuous data."""
    line = fails_cleanly(["train", "--data", "moons", "--objective", "nce", "--net", net, "--steps", "2",
                          "--out", str(tmp_path / "r")], capsys)
    assert words in line and "input_gain" not in line
    assert not (tmp_path / "r").exists()


def test_a_binary_image_run_scores_images_of_its_training_shape(tmp_path, capsys):
    """Before: a binary image run (trained on (N, 1, 4, 4) 0/1 images, flattened to 16 bits) refused its own training
    file in score --data and eval --ood ('has shape (40, 1, 4, 4) but the model takes points of shape (16,)')."""
    imgs = np.random.default_rng(0).integers(0, 2, (40, 1, 4, 4)).astype(np.float32)
    np.save(tmp_path / "b.npy", imgs)
    np.save(tmp_path / "flat.npy", imgs.reshape(40, -1))
    assert cli_main(["train", "--data", str(tmp_path / "b.npy"), "--steps", "2", "--mcmc-steps", "2",
                     "--batch-size", "8", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    for name in ("b", "flat"):
        assert cli_main(["score", str(tmp_path / "run"), "--data", str(tmp_path / f"{name}.npy"), "--out",
                         str(tmp_path / f"s_{name}.npy"), "--log-p"]) == 0
    assert np.array_equal(np.load(tmp_path / "s_b.npy"), np.load(tmp_path / "s_flat.npy"))
    assert cli_main(["eval", str(tmp_path / "run"), "--ood", str(tmp_path / "b.npy"), "--json"]) == 0
    capsys.readouterr()
    # another image shape is still refused in one line
    np.save(tmp_path / "wrong.npy", imgs.reshape(40, 1, 2, 8))
    line = fails_cleanly(["score", str(tmp_path / "run"), "--data", str(tmp_path / "wrong.npy"), "--out",
                          str(tmp_path / "w.npy")], capsys)
    assert "(16,) (or images of shape (1, 4, 4))" in line and not (tmp_path / "w.npy").exists()


def test_an_unread_knob_is_named_by_the_main_process_only(monkeypatch):
    """Before: `ebmlab train --nproc 2 --nce-ratio 4` printed the warning once per process (the images and --compile
    warnings were already said by rank 0 only)."""
    import warnings
    from ebmlab.training.presets import _warn_unread_knobs
    for rank, expected in (("1", 0), ("0", 1)):
        monkeypatch.setenv("RANK", rank)
        monkeypatch.setenv("LOCAL_RANK", rank)
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
        monkeypatch.setenv("MASTER_PORT", "29500")
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            _warn_unread_knobs("cd", "langevin", {"nce_ratio": 4})
        assert len([w for w in seen if "nce_ratio" in str(w.message)]) == expected, rank


def test_a_run_written_with_mcmc_steps_0_before_the_rule_still_opens(tmp_path, capsys):
    """Before: the new-run rule 'mcmc_steps 0 is refused for cd' sat in RunConfig's validation, so a cd run written
    with mcmc_steps 0 before 0.14 could no longer be scored, sampled, evaluated or resumed (the same error line)."""
    import json
    import ebmlab
    from ebmlab.errors import EBMError
    from ebmlab.rundir.config import RunConfig
    data = tiny_data(tmp_path / "pts.npy")
    assert cli_main(["train", "--data", str(data), "--steps", "2", "--mcmc-steps", "2", "--out",
                     str(tmp_path / "run"), "--quiet"]) == 0
    cfg = tmp_path / "run" / "config.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "mcmc_steps": 0}))   # as 0.13 wrote it
    assert cli_main(["score", str(tmp_path / "run"), "--data", str(data), "--out", str(tmp_path / "s.npy")]) == 0
    assert cli_main(["sample", str(tmp_path / "run"), "--n", "3", "--out", str(tmp_path / "x.npy")]) == 0
    assert cli_main(["train", "--resume", str(tmp_path / "run"), "--steps", "3", "--quiet"]) == 0
    assert np.load(tmp_path / "s.npy").shape == (200,) and np.load(tmp_path / "x.npy").shape == (3, 2)
    # a new run is still refused, from flags and from a RunConfig given whole
    capsys.readouterr()
    line = fails_cleanly(["train", "--data", str(data), "--mcmc-steps", "0", "--out", str(tmp_path / "new")], capsys)
    assert "mcmc_steps 0" in line
    with pytest.raises(EBMError, match="mcmc_steps 0"):
        ebmlab.train(None, str(data), tmp_path / "new2", config=RunConfig(mcmc_steps=0, steps=2), progress=False)
    assert not (tmp_path / "new").exists() and not (tmp_path / "new2").exists()


def test_too_many_categorical_states_for_log_p_names_score_s_way_out(tmp_path, capsys):
    """Before: score --log-p of a 3^20-state categorical run ended on eval's message ('an exact likelihood needs fewer
    sites or categories') without the alternative the bits' and images' messages give: score without --log-p."""
    np.save(tmp_path / "c.npy", np.random.default_rng(0).integers(0, 3, (60, 20)))
    assert cli_main(["train", "--data", str(tmp_path / "c.npy"), "--categories", "3", "--steps", "2",
                     "--mcmc-steps", "2", "--out", str(tmp_path / "run"), "--quiet"]) == 0
    capsys.readouterr()
    line = fails_cleanly(["score", str(tmp_path / "run"), "--data", str(tmp_path / "c.npy"), "--out",
                          str(tmp_path / "s.npy"), "--log-p"], capsys)
    assert "3^20" in line and "score without --log-p" in line
    assert not (tmp_path / "s.npy").exists()


def test_score_data_that_is_a_folder_is_named_a_folder(tmp_path, capsys):
    """Before: `score RUN --data some_folder` said 'data file ... does not exist' of a folder that exists."""
    data = tiny_data(tmp_path / "pts.npy")
    assert cli_main(["train", "--data", str(data), "--steps", "2", "--mcmc-steps", "2", "--out",
                     str(tmp_path / "run"), "--quiet"]) == 0
    (tmp_path / "pics").mkdir()
    capsys.readouterr()
    line = fails_cleanly(["score", str(tmp_path / "run"), "--data", str(tmp_path / "pics"), "--out",
                          str(tmp_path / "s.npy")], capsys)
    assert "is a folder" in line and "does not exist" not in line
