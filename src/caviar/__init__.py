"""caviar: tune deep nets the way the textbooks teach it, many models at once."""

# ruff: noqa: I001 -- caviar.study first: the samplers read the trial records it defines.
__version__ = "0.1.0"

from caviar.study import EpochRecord, FrozenTrial, Study, Trial, TrialState
from caviar.samplers import CoarseToFineSampler, GridSampler, RandomSampler, Sampler
from caviar.space import (
    Choice,
    Fixed,
    IntLogUniform,
    IntUniform,
    LogUniform,
    OneMinusLog,
    SearchSpace,
    Uniform,
)
from caviar.storage import InMemoryStorage, SQLiteStorage

__all__ = [
    "Choice",
    "CoarseToFineSampler",
    "EpochRecord",
    "Fixed",
    "FrozenTrial",
    "GridSampler",
    "InMemoryStorage",
    "IntLogUniform",
    "IntUniform",
    "LogUniform",
    "OneMinusLog",
    "RandomSampler",
    "SQLiteStorage",
    "Sampler",
    "SearchSpace",
    "Study",
    "Trial",
    "TrialState",
    "Uniform",
    "__version__",
]
