"""Opening a run directory for the commands that read one (``sample``, ``eval``, ``plot``, ``compose``,
``inpaint``): the model with its config and data description, and the run's held-out data."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ebmlab.data.scaling import Scaling
from ebmlab.data.sources import load_data, with_recorded_scaling
from ebmlab.errors import EBMError
from ebmlab.rundir.build import build_model_from_run, component_dirs, resolve_component
from ebmlab.rundir.checkpoint import read_json
from ebmlab.rundir.config import RunConfig
from ebmlab.rundir.export import is_export, load_export


@dataclass
class Run:
    """A loaded run directory: the model, its config and data description."""

    path: Path
    model: torch.nn.Module
    config: RunConfig
    data: dict[str, Any]

    @property
    def is_vector(self) -> bool:
        return self.data["kind"] == "vector"

    @property
    def scaling(self) -> Scaling | None:
        s = self.data.get("scaling")
        return Scaling.from_dict(s) if s else None


def open_run(path: str | Path, device: str = "cpu", trust_code: bool = False) -> Run:
    """Load a run directory (trained or composed).

    ``trust_code``: a run of a user's own network imports the recorded network class (see
    ``ebmlab.load``); without it such a run is a one-line EBMError that says how to load it.

    A composite has no config of its own: it takes the config and data description of its first
    component (the components share the data's shape and scale, ``ebmlab.tasks.compose`` checks).
    """
    p = Path(path)
    if is_export(p):       # an `ebmlab export` file: sample and eval take it like a run
        return Run(p, *load_export(p, device, trust_code=trust_code))
    model = build_model_from_run(p, device, trust_code=trust_code)
    data = read_json(p / "data.json", "data description (data.json)")
    if data["kind"] == "composite":
        first = open_run(_component_path(p, data["spec"]), device, trust_code)
        config, data = first.config, {**first.data, "composite": data["spec"]}
        if getattr(model, "bounds", None) is not None and data["kind"] == "vector":
            data["bounds"] = model.bounds.tolist()
    else:
        config = RunConfig.from_dict(read_json(p / "config.json", "run configuration (config.json)"))
    return Run(p, model, config, data)


def refuse_writing_over_data(run: Run, out: Path, *inputs: str | Path, flag: str = "--out") -> None:
    """Refuse an output file that is the run's own training data or labels file, lies inside its training image
    folder (a composite: those of every component run), or is one of this command's ``inputs``: writing there
    would silently replace (or, in a folder, join) the data the run was trained on — it would not even resume
    then, its data's fingerprint changed."""
    target = out.resolve()
    for trained_by, source in _training_sources(run):
        for key, what in (("path", "data"), ("labels", "labels")):
            given = source.get(key)
            if not (isinstance(given, str) and Path(given).is_absolute() and Path(given).exists()):
                continue
            data = Path(given).resolve()
            if target == data or (data.is_dir() and data in target.parents):
                where = "is" if target == data else "lies in"
                raise EBMError(f"{flag} {str(out)!r} {where} the {what} {trained_by} was trained on ({data}); "
                               f"writing there would replace its training {what}: give another file name")
    for given in inputs:
        if target == Path(given).resolve():
            raise EBMError(f"{flag} {str(out)!r} is also this command's input file; writing there would replace "
                           f"it: give another file name")


def _training_sources(run: Run) -> list[tuple[Path, dict[str, Any]]]:
    """(run directory, data.json's source) of the run, and of every component run of a composite (at any depth:
    ``run.data`` holds only the first's)."""
    found = []
    source = run.data.get("source")
    if isinstance(source, dict):
        found.append((run.path, source))
    if "composite" in run.data:
        for d in sorted(component_dirs(Path(run.path))):
            data = read_json(d / "data.json", "data description (data.json)") if (d / "data.json").is_file() else {}
            if isinstance(data.get("source"), dict):
                found.append((d, data["source"]))
    return found


def _component_path(run_dir: Path, spec: dict[str, Any]) -> Path:
    src = spec["components"][0]
    while isinstance(src, dict):         # nested composite: follow its first component
        src = src["components"][0]
    return resolve_component(run_dir, src)


def test_data(run: Run) -> torch.Tensor:
    """The run's held-out test split [N, *event] in the MODEL's scale (the split training kept aside)."""
    c = run.config
    if c.data.startswith("<"):
        raise EBMError(f"{run.path} was trained on data passed from Python ({c.data}), which the run directory does "
                       "not hold; give the data to evaluate on (ebmlab eval RUN --data FILE.npy)")
    # binary as the run was trained (data.json): 0/1 data trained as continuous (binary=False) must not be
    # re-detected as binary here, which would flatten its images to vectors the model cannot take
    ds = load_data(c.data, c.seed, c.n_test, c.test_fraction, c.image_size, categories=c.categories,
                   binary=bool(run.data.get("binary")))
    # the model scale the run recorded (image sets are stored as uint8; its data.json says how they map)
    return with_recorded_scaling(ds, run.data.get("scaling")).to_model(ds.test)


test_data.__test__ = False   # a public name starting with "test": tell pytest it is not a test
