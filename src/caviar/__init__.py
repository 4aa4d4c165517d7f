"""caviar: tune deep nets the way the textbooks teach it, many models at once."""

from __future__ import annotations

import importlib

from caviar.core.version import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (the command starts fast)
if TYPE_CHECKING:
    from typing import Any

    from caviar.core.records import EpochRecord, FrozenTrial, TrialState
    from caviar.models.evaluate import evaluate_on_test
    from caviar.models.load import load_model
    from caviar.samplers import (
        CoarseToFineSampler,
        GridSampler,
        RandomSampler,
        Sampler,
        TPESampler,
    )
    from caviar.search.job import tune
    from caviar.search.objective import ObjectiveTrial, TrialPruned
    from caviar.search.optimize import optimize
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
    from caviar.study import Study, Trial

#: where each public name lives: imported on first use, so that ``import caviar`` (and the
#: command line's start, where Ctrl-C must stay harmless) loads neither numpy nor torch
_HOMES = {
    **dict.fromkeys(
        ["CoarseToFineSampler", "GridSampler", "RandomSampler", "Sampler", "TPESampler"],
        "caviar.samplers",
    ),
    **dict.fromkeys(
        [
            "Choice",
            "Fixed",
            "IntLogUniform",
            "IntUniform",
            "LogUniform",
            "OneMinusLog",
            "SearchSpace",
            "Uniform",
        ],
        "caviar.space",
    ),
    **dict.fromkeys(["InMemoryStorage", "SQLiteStorage"], "caviar.storage"),
    **dict.fromkeys(["EpochRecord", "FrozenTrial", "Study", "Trial", "TrialState"], "caviar.study"),
    "tune": "caviar.search.job",
    "optimize": "caviar.search.optimize",
    **dict.fromkeys(["ObjectiveTrial", "TrialPruned"], "caviar.search.objective"),
    "load_model": "caviar.models.load",
    "evaluate_on_test": "caviar.models.evaluate",
}

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
    "ObjectiveTrial",
    "OneMinusLog",
    "RandomSampler",
    "SQLiteStorage",
    "Sampler",
    "SearchSpace",
    "Study",
    "TPESampler",
    "Trial",
    "TrialPruned",
    "TrialState",
    "Uniform",
    "__version__",
    "evaluate_on_test",
    "load_model",
    "optimize",
    "tune",
]


def __getattr__(name: str) -> Any:
    """The public names, imported on first use (see ``_HOMES``)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'caviar' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
