"""ebmlab: energy-based models p(x) = exp(f(x)) / Z in PyTorch.

f is ``log_density`` (the log unnormalised density); the energy is -f.
"""
from ebmlab.errors import EBMError

# public name -> the module that defines it; imported on first use, so `import ebmlab` stays light: free of
# torch, so the command line's Ctrl-C handler (ebmlab/__main__.py) is in place before torch's seconds of loading
_LAZY = {
    "EnergyModel": "ebmlab.models.energy",
    "sample": "ebmlab.samplers.run",
    "log_z": "ebmlab.estimate.log_z",
    "load": "ebmlab.rundir.load",
    "train": "ebmlab.training.api",
    "resume": "ebmlab.training.api",
    "TrainRun": "ebmlab.training.api",
}


def __getattr__(name):
    if name == "__version__":        # a checkout: its pyproject.toml (the one copy); else the metadata
        from ebmlab.cli import package_version
        return package_version()
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ebmlab' has no attribute {name!r}")


__all__ = ["EBMError", "EnergyModel", "sample", "log_z", "load", "train", "resume", "TrainRun", "__version__"]
