"""Old import path, kept for users' code: the composition algebra lives in ``ebmlab.models.compose``."""
from ebmlab.models.compose import (  # noqa: F401
    ComposedModel, Condition, Contrast, Mixture, Product, Temperature, check_compatible, compose,
)
