"""Old import path, kept for users' code: ``EnergyModel`` lives in ``ebmlab.models.energy``."""
from ebmlab.density import DensityMethods, as_log_density, score_of  # noqa: F401
from ebmlab.models.energy import PARAMETRISATIONS, EnergyModel  # noqa: F401
