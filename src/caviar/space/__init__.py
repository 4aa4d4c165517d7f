"""Search spaces: hyperparameter dimensions on their proper scales, and the space holding them."""

from caviar.space.dimensions import (
    Choice,
    Dimension,
    Fixed,
    IntLogUniform,
    IntUniform,
    LogUniform,
    OneMinusLog,
    Uniform,
    dimension_from_config,
)
from caviar.space.space import SearchSpace

__all__ = [
    "Choice",
    "Dimension",
    "Fixed",
    "IntLogUniform",
    "IntUniform",
    "LogUniform",
    "OneMinusLog",
    "SearchSpace",
    "Uniform",
    "dimension_from_config",
]
