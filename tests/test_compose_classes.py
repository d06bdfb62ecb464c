"""Composing classes of a conditional run (issue 6, "compositional generation"): ``RUN:CLASS``
components on the command line, the spec round trip through data.json, and the composed f equal to
the algebra on the logits. A tiny 3-class 2-D conditional run keeps it fast (2 shared cores)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import ebmlab
from ebmlab.cli import main as cli_main
from ebmlab.models.compose import Contrast, Mixture, Product, Temperature
from ebmlab.models.spec import class_spec, from_spec, to_spec
from ebmlab.models.conditional import ClassConditional, ConditionalEnergyModel
from ebmlab.errors import EBMError
from ebmlab.tasks.compose import parse_component
from ebmlab.tasks.open import open_run
from ebmlab.training.api import start_run

from helpers_runs import TINY


@pytest.fixture(scope="module")
def cond(tmp_path_factory) -> tuple[Path, torch.Tensor]:
    """A 3-class conditional run on three 2-D blobs (4 training steps) and points inside its support."""
    tmp = tmp_path_factory.mktemp("compose_classes")
    g = np.random.default_rng(0)
    y = np.arange(150) % 3
    centres = 2 * np.stack([np.cos(2 * np.pi * y / 3), np.sin(2 * np.pi * y / 3)], 1)
    x = (centres + 0.3 * g.normal(size=(150, 2))).astype(np.float32)
    np.save(tmp / "x.npy", x)
    np.save(tmp / "y.npy", y.astype(np.int64))
    trainer, _ = start_run(str(tmp / "x.npy"), tmp / "run", labels=str(tmp / "y.npy"), preset="conditional",
                           **{**TINY, "steps": 4, "checkpoint_every": 4, "log_every": 2})
    trainer.fit()
    return tmp / "run", torch.from_numpy(x[:32])


def _logits(run: Path, x: torch.Tensor) -> torch.Tensor:
    m = ebmlab.load(run)
    assert isinstance(m, ConditionalEnergyModel)
    with torch.no_grad():
        return m.logits(x)


def _composed_f(out: Path, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return ebmlab.load(out).log_density(x)


@pytest.mark.parametrize("argv, expected", [
    (["{r}:0", "{r}:2", "--op", "and", "--weights", "1,0.5"], lambda L: L[:, 0] + 0.5 * L[:, 2]),
    (["{r}:0", "{r}:2", "--op", "and"], lambda L: L[:, 0] + L[:, 2]),
    (["{r}:0", "{r}:1", "--op", "or", "--weights", "1,3"],
     lambda L: torch.logsumexp(torch.stack([L[:, 0] + math.log(0.25), L[:, 1] + math.log(0.75)], 1), 1)),
    (["{r}:1", "{r}:2", "--op", "not", "--weights", "0.3"], lambda L: L[:, 1] - 0.3 * L[:, 2]),
    (["{r}:1", "{r}:2", "--op", "not", "--weights", "2,0.5"], lambda L: 2 * L[:, 1] - 0.5 * L[:, 2]),
    (["{r}:2"], lambda L: L[:, 2]),
    (["{r}:2", "--temperature", "0.5"], lambda L: L[:, 2] / 0.5),
    (["{r}", "--temperature", "2"], lambda L: torch.logsumexp(L, 1) / 2),         # the marginal, tempered
    (["{r}", "{r}:1", "--op", "and"], lambda L: torch.logsumexp(L, 1) + L[:, 1]),  # a run and a class mixed
    (["{r}:0", "{r}:1", "--op", "and", "--weights", "1,1", "--temperature", "4"], lambda L: (L[:, 0] + L[:, 1]) / 4),
])
def test_composed_f_is_the_algebra_on_the_logits(cond, tmp_path, capsys, argv, expected):
    run, x = cond
    out = tmp_path / "c"
    assert cli_main(["compose", *[a.format(r=run) for a in argv], "--out", str(out)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    torch.testing.assert_close(_composed_f(out, x), expected(_logits(run, x)))


def test_spec_stores_class_nodes_and_nests(cond, tmp_path, capsys):
    run, x = cond
    c = tmp_path / "c"
    assert cli_main(["compose", f"{run}:0", f"{run}:2", "--op", "and", "--weights", "1,0.5", "--out", str(c)]) == 0
    spec = json.loads((c / "data.json").read_text())["spec"]
    key = str(run.resolve())
    assert spec["op"] == "and" and spec["weights"] == [1.0, 0.5]
    assert spec["components"] == [class_spec(key, 0), class_spec(key, 2)]
    assert spec["components"][1] == {"format": "ebmlab.compose/1", "op": "class", "class": 2, "components": [key]}
    # a composite of a composite and a class, through the command line
    cc = tmp_path / "cc"
    assert cli_main(["compose", str(c), f"{run}:1", "--op", "or", "--out", str(cc)]) == 0
    capsys.readouterr()
    L = _logits(run, x)
    want = torch.logsumexp(torch.stack([L[:, 0] + 0.5 * L[:, 2] + math.log(0.5), L[:, 1] + math.log(0.5)], 1), 1)
    torch.testing.assert_close(_composed_f(cc, x), want)
    m = ebmlab.load(cc)
    assert isinstance(m, Mixture) and isinstance(m.models[0], Product)
    assert all(isinstance(v, ClassConditional) for v in m.models[0].models)
    assert [v.y for v in m.models[0].models] == [0, 2] and m.models[1].y == 1


def test_from_spec_round_trip_with_class_views_in_python(cond):
    """Specs built by hand (to_spec + class_spec) rebuild the same f through json, with any loader."""
    run, x = cond
    parent = ebmlab.load(run)
    a, b = parent.for_class(0), parent.for_class(1)
    cases = [(Product([a, b], [1.0, 0.5]), [class_spec("R", 0), class_spec("R", 1)]),
             (Mixture([a, b], [2.0, 1.0]), [class_spec("R", 0), class_spec("R", 1)]),
             (Contrast(a, b, alpha=0.7), [class_spec("R", 0), class_spec("R", 1)]),
             (Temperature(a, 3.0), [class_spec("R", 0)])]
    for model, sources in cases:
        rebuilt = from_spec(json.loads(json.dumps(to_spec(model, sources))), {"R": parent}.__getitem__)
        with torch.no_grad():
            torch.testing.assert_close(rebuilt.log_density(x), model.log_density(x))
    view = from_spec(class_spec("R", 2), {"R": parent}.__getitem__)
    assert isinstance(view, ClassConditional) and view.y == 2


@pytest.mark.parametrize("spec, contains", [
    (class_spec("R", 3), "class 3 is out of range"),
    ({"op": "class", "class": "3", "components": ["R"]}, "integer 'class'"),
    ({"op": "class", "class": 0, "components": ["R", "R"]}, "exactly one component"),
    ({"op": "class", "class": 0, "components": ["U"]}, "unconditional"),
])
def test_bad_class_specs_are_one_line_errors(cond, spec, contains):
    run, _ = cond
    store = {"R": ebmlab.load(run), "U": ebmlab.EnergyModel(torch.nn.Linear(2, 1))}
    with pytest.raises(EBMError) as e:
        from_spec(spec, store.__getitem__)
    assert contains in str(e.value) and "\n" not in str(e.value)


def test_sample_eval_plot_take_a_class_composite(cond, tmp_path, capsys):
    run, _ = cond
    c = tmp_path / "c"
    assert cli_main(["compose", f"{run}:0", f"{run}:1", "--op", "or", "--out", str(c)]) == 0
    assert cli_main(["sample", str(c), "--n", "20", "--n-steps", "5", "--out", str(tmp_path / "s.npy")]) == 0
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (20, 2) and np.isfinite(s).all()
    capsys.readouterr()
    assert cli_main(["eval", str(c), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert math.isfinite(res["nll"]) and "test_accuracy" not in res
    assert cli_main(["plot", str(c)]) == 0
    assert (c / "plot.png").exists()
    r = open_run(c)
    assert r.data["kind"] == "vector" and r.data["composite"]["op"] == "or"
    capsys.readouterr()


def test_parse_component(tmp_path):
    assert parse_component("runs/cond:3") == ("runs/cond", 3)
    assert parse_component("runs/cond:-1") == ("runs/cond", -1)     # so the error says "out of range"
    assert parse_component("runs/cond") == ("runs/cond", None)
    odd = tmp_path / "run:7"
    odd.mkdir()
    assert parse_component(str(odd)) == (str(odd), None)             # a path that exists wins
    assert parse_component(f"{odd}:2") == (str(odd), 2)
    with pytest.raises(EBMError, match="must be an integer"):
        parse_component(f"{tmp_path}:x")


def test_sample_class_of_a_composite_is_one_line(cond, tmp_path, capsys):
    run, _ = cond
    c = tmp_path / "c"
    assert cli_main(["compose", f"{run}:0", f"{run}:1", "--op", "and", "--out", str(c)]) == 0
    capsys.readouterr()
    assert cli_main(["sample", str(c), "--class", "0", "--n", "3", "--out", str(tmp_path / "s.npy")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a composite" in err[0] and not (tmp_path / "s.npy").exists()
