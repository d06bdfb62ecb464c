"""A user's own network in a run directory: recorded by name, never pickled, imported only on request.

A run of a custom ``nn.Module`` stores its weights in ``model.safetensors`` like any run, and in
config.json (``network``) what is needed to find the class again::

    {"class": "mypackage.nets:ResidualMLP", "kwargs": {"dim": 2, "width": 64} or null,
     "parametrisation": "exp", "bounds": [[lo, hi], ...] or null}

Loading such a run needs either an instance from the user (``ebmlab.load(DIR, network=MyNet())``:
nothing is imported) or the user's explicit trust (``trust_code=True`` / ``--trust-code``): only then
is ``module`` imported and the class built with the recorded ``kwargs``. Importing runs the module's
code, which is why it is never the default.
"""
from __future__ import annotations

import importlib
import json
from typing import Any

from torch import nn

from ebmlab.errors import EBMError


def network_reference(net: nn.Module, kwargs: dict[str, Any] | None, parametrisation: str,
                      bounds: list[list[float]] | None) -> dict[str, Any]:
    """The JSON record of a user network (see the module docstring); EBMError if ``kwargs`` is not JSON."""
    cls = type(net)
    if kwargs is not None:
        try:
            json.dumps(kwargs)
        except (TypeError, ValueError):
            raise EBMError("network_kwargs must be JSON-serialisable (numbers, strings, lists, dicts): they are "
                           "stored in config.json to rebuild the network with trust_code=True") from None
    return {"class": f"{cls.__module__}:{cls.__qualname__}", "kwargs": kwargs,
            "parametrisation": parametrisation, "bounds": bounds}


def import_network(ref: dict[str, Any], where: str) -> nn.Module:
    """Import the recorded class and build it with the recorded kwargs (call only with the user's trust)."""
    target = ref.get("class") if isinstance(ref, dict) else None
    if not isinstance(target, str) or ":" not in target:
        raise EBMError(f"{where}: the network record is damaged (no 'module:Class')")
    module_name, _, qualname = target.partition(":")
    if module_name == "__main__":
        raise EBMError(f"{where}: the network class {qualname} was defined in a script (__main__), which cannot be "
                       "imported again; load it with ebmlab.load(DIR, network=YourNet(...))")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise EBMError(f"{where}: cannot import the run's network {target} ({type(e).__name__}: {e}); make its "
                       "module importable or pass network=YourNet(...)") from None
    kwargs = ref.get("kwargs")
    if not isinstance(obj, type) or not issubclass(obj, nn.Module):
        raise EBMError(f"{where}: {target} is not an nn.Module class")
    try:
        return obj(**(kwargs or {}))
    except TypeError as e:
        hint = "" if kwargs is not None else " (no constructor arguments were recorded: pass network_kwargs= to ebmlab.train)"
        raise EBMError(f"{where}: cannot build {target}: {e}{hint}") from None


def untrusted_message(ref: dict[str, Any], where: str) -> str:
    """The one-line error for opening a custom-network run without ``network=`` or trust."""
    target = ref.get("class", "?") if isinstance(ref, dict) else "?"
    return (f"{where} was trained with your own network {target}; load it with "
            f"ebmlab.load(DIR, network={target.rpartition(':')[2]}(...)), or, if you trust that code, with "
            "trust_code=True (CLI: --trust-code), which imports and runs its module")
