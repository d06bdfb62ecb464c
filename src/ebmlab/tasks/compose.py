"""What ``ebmlab compose`` does: check the components and write a composite run directory.

The directory holds only data.json with the composite's JSON recipe (``ebmlab.models.spec``) naming
the component runs; ``ebmlab.load`` and ``open_run`` rebuild the model from it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from ebmlab.atomic import atomic_write_text
from ebmlab.errors import EBMError
from ebmlab.models.compose import Temperature, class_view, compose
from ebmlab.models.spec import class_spec, to_spec
from ebmlab.rundir.checkpoint import FORMAT_VERSION
from ebmlab.tasks.open import Run, open_run
from ebmlab.rundir.build import component_dirs, stored_component_path
from ebmlab.rundir.export import is_export
from ebmlab.rundir.layout import prepare_run_dir


def parse_component(text: str) -> tuple[str, int | None]:
    """A compose component: ``RUN`` (a run directory) or ``RUN:CLASS`` (class CLASS of a conditional run).

    A path that exists is always a run directory, so a directory whose name ends in ``:3`` is still
    read as itself; otherwise a trailing ``:INTEGER`` names a class.
    """
    if Path(text).exists():
        return text, None
    head, sep, tail = text.rpartition(":")
    if sep and head:
        try:
            return head, int(tail)
        except ValueError:
            if Path(head).exists():
                raise EBMError(f"{text!r}: the class after ':' must be an integer (RUN:CLASS, e.g. {head}:3)") from None
    return text, None


def compose_runs(sources: list[str], op: str | None, weights: list[float] | None, out: Path, force: bool = False,
                 temperature: float | None = None, trust_code: bool = False) -> Path:
    """Write a composite run directory C that sample/eval/plot/``ebmlab.load`` accept like any other.

    ``sources``: run directories, or ``RUN:CLASS`` for class CLASS of a conditional/JEM run (its
    ``for_class`` view, f(x) = logits[CLASS]). ``op``: and / or / not (None: one component only,
    used as it is). ``temperature``: divide the result's f by T > 0. Everything is checked before
    ``out`` is created.
    """
    if temperature is not None and not (math.isfinite(temperature) and temperature > 0):
        raise EBMError(f"--temperature must be a finite number > 0, got {temperature}")
    if op is None:
        if len(sources) != 1:
            raise EBMError(f"give --op and, or or not to combine {len(sources)} models")
        if weights is not None:
            raise EBMError("--weights needs --op")
    parsed = [parse_component(s) for s in sources]
    if op is None and parsed[0][1] is None and temperature is None:
        raise EBMError("nothing to compose: give --op with two or more models, --temperature T, or a class RUN:CLASS")
    opened: dict[str, Run] = {}
    runs, models, specs = [], [], []
    for text, (path, klass) in zip(sources, parsed):
        if is_export(Path(path)):      # the recipe names component run directories; an export has none
            raise EBMError(f"compose takes run directories; {path} is a file of `ebmlab export`: compose the run it "
                           "was exported from (its card's exported_from)")
        key = str(Path(path).resolve())
        if key not in opened:
            opened[key] = open_run(path, trust_code=trust_code)
        r = opened[key]
        if r.config.objective == "drl":
            # its samples come from the walk down its L levels (sampler recovery), which a product or mixture
            # of f's does not have: the composite would refuse to sample
            raise EBMError(f"{path} was trained with --objective drl: it generates by walking down its noise levels, "
                           "which a composite of f's cannot do; compose runs of the other objectives")
        runs.append(r)
        stored = stored_component_path(Path(key), Path(out))     # relative: shareable with its components
        if klass is None:
            models.append(r.model)
            specs.append(stored)
        else:
            models.append(class_view(r.model, klass, name=path))
            specs.append(class_spec(stored, klass))
    first = runs[0]
    for r in runs[1:]:
        if r.data["event_shape"] != first.data["event_shape"]:
            raise EBMError(f"cannot compose {r.path} (shape {r.data['event_shape']}) with {first.path} "
                           f"(shape {first.data['event_shape']}): data shapes differ")
        if r.data.get("scaling") != first.data.get("scaling"):
            raise EBMError(f"cannot compose {r.path} with {first.path}: their data scales differ")
    if op is None:
        model, spec = models[0], specs[0]
    else:
        model = compose(op, models, weights)
        spec = to_spec(model, specs)
    if temperature is not None:
        spec = to_spec(Temperature(model, temperature), [spec])
    out = Path(out)
    needed = {Path(k) for k in opened}         # the components and, for composites, theirs at any depth
    for k in opened:
        needed |= component_dirs(Path(k))
    if any(out.resolve() == k or out.resolve() in k.parents for k in needed):
        raise EBMError(f"--out {str(out)!r} is one of the runs being composed, at some depth (or holds one); "
                       "choose a new directory")
    prepare_run_dir(out, force, kind="composite")
    atomic_write_text(out / "data.json", json.dumps({"format_version": FORMAT_VERSION, "kind": "composite",
                                                     "spec": spec}, indent=2))
    return out
