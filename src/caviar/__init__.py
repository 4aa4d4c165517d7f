"""caviar: tune deep nets the way the textbooks teach it, many models at once."""

__version__ = "0.1.0"

from typing import Any

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
from caviar.study import EpochRecord, FrozenTrial, Study, Trial, TrialState

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
    "evaluate_on_test",
    "load_model",
    "tune",
]


def __getattr__(name: str) -> Any:
    """``caviar.tune``, ``caviar.load_model`` and ``caviar.evaluate_on_test``, imported on first
    use: they bring in torch, which ``import caviar`` alone does not need."""
    if name == "tune":
        from caviar.tuning import tune

        return tune
    if name == "load_model":
        from caviar.export import load_model

        return load_model
    if name == "evaluate_on_test":
        from caviar.evaluate import evaluate_on_test

        return evaluate_on_test
    raise AttributeError(f"module 'caviar' has no attribute {name!r}")
