"""Old import path, kept for users' code: the composition algebra lives in ``ebmlab.models.compose``,
its JSON recipe in ``ebmlab.models.spec``."""
from ebmlab.models.compose import (  # noqa: F401
    ComposedModel, Condition, Contrast, Mixture, Product, Temperature, check_compatible, class_view, compose,
)
from ebmlab.models.spec import SPEC_FORMAT, class_spec, from_spec, to_spec  # noqa: F401
