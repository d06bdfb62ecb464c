"""ebmlab: energy-based models p(x) = exp(f(x)) / Z in PyTorch.

f is ``log_density`` (the log unnormalised density); the energy is -f.
"""
from ebmlab.errors import EBMError
from ebmlab.models.energy import EnergyModel

__version__ = "0.1.0"


def __getattr__(name):  # lazy re-exports keep `import ebmlab` light and free of import cycles
    if name == "sample":
        from ebmlab.samplers.run import sample
        return sample
    if name == "log_z":
        from ebmlab.estimate.log_z import log_z
        return log_z
    if name == "load":
        from ebmlab.rundir.load import load
        return load
    raise AttributeError(f"module 'ebmlab' has no attribute {name!r}")


__all__ = ["EBMError", "EnergyModel", "sample", "log_z", "load", "__version__"]
