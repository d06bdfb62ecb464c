"""The JSON recipe of a composite model: what ``ebmlab compose`` writes into a run's data.json and
``ebmlab.load`` reads back.

A spec is ``{"format": SPEC_FORMAT, "op": OP, "components": [source, ...], **params}``: ``op`` is
one of the ops of ``ebmlab.models.compose`` (and, or, not, temperature, condition) or ``class``
(class y of a conditional model, its ``for_class(y)`` view); ``params`` are the op's arguments
(``ComposedModel.spec_params``). A source names a component the way the caller likes (a run
directory for the CLI) or is itself a nested spec. Writing (``to_spec``, ``class_spec``) and
reading (``from_spec``) live together here so the two sides of the format cannot drift apart.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from ebmlab.errors import EBMError
from ebmlab.models.compose import OPS, ComposedModel, Condition, Temperature, class_view

# The format tag written into every composite run directory. It names the file format, not a module:
# it stays "ebmlab.compose/1" so that run directories composed before the package layout still load.
SPEC_FORMAT = "ebmlab.compose/1"

Source = Any  # what the caller uses to name a component in a spec: a path string, or a nested spec dict


def to_spec(model: ComposedModel, sources: Sequence[Source]) -> dict:
    """A JSON-able description of ``model``; ``sources[i]`` names component i (a run directory, or a nested spec)."""
    if len(sources) != len(model.models):
        raise EBMError(f"to_spec: got {len(sources)} sources for {len(model.models)} components")
    return {"format": SPEC_FORMAT, "op": model.op, "components": list(sources), **model.spec_params()}


def class_spec(source: Source, klass: int) -> dict:
    """The spec of class ``klass`` of the conditional model named by ``source``: its ``for_class(klass)``.

    Usable wherever a source is (a component of another spec, or a spec of its own); ``from_spec``
    loads ``source`` and checks that it is conditional and that the class is in range.
    """
    if isinstance(klass, bool) or int(klass) != klass:
        raise EBMError(f"a class must be an integer, got {klass!r}")
    return {"format": SPEC_FORMAT, "op": "class", "class": int(klass), "components": [source]}


def from_spec(spec: Mapping[str, Any], loader: Callable[[Any], Any]) -> nn.Module:
    """Rebuild a composite from ``to_spec`` output; ``loader(source) -> model`` loads each component.

    Nested specs (a dict in ``components``) are rebuilt recursively with the same loader; a
    ``class_spec`` node becomes the component's ``for_class`` view.
    """
    if spec.get("format", SPEC_FORMAT) != SPEC_FORMAT:
        raise EBMError(f"unsupported composition format {spec.get('format')!r}; expected {SPEC_FORMAT}")
    if "op" not in spec or "components" not in spec:
        raise EBMError("composition spec needs 'op' and 'components'")
    parts = [from_spec(s, loader) if isinstance(s, Mapping) else loader(s) for s in spec["components"]]
    op = spec["op"]
    if op == "class":
        k = spec.get("class")
        if not isinstance(k, int) or isinstance(k, bool):
            raise EBMError(f"class: spec needs an integer 'class', got {k!r}")
        src = spec["components"][0] if len(spec["components"]) == 1 else None
        return class_view(_single(parts, op), k, name=str(src) if isinstance(src, str) else "the model")
    if op in OPS:       # and / or / not: the same table as the CLI's ``compose``
        extra = {"log_z": spec.get("log_z")} if op == "or" else {}
        return OPS[op](parts, spec.get("weights"), **extra)
    if op == "temperature":
        return Temperature(_single(parts, op), spec["T"])
    if op == "condition":
        return Condition(_single(parts, op), torch.tensor(spec["fixed_values"]), torch.tensor(spec["fixed_mask"]))
    raise EBMError(f"unknown composition op {op!r} in spec")


def _single(parts: list, op: str) -> Any:
    if len(parts) != 1:
        raise EBMError(f"{op}: spec must have exactly one component, got {len(parts)}")
    return parts[0]
