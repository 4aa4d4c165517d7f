"""The population engine: fully connected nets, many members at once, each its own config.

The names below are imported on first use, as ``caviar/__init__.py`` does: a module that needs
only the hyperparameters' rules (:mod:`caviar.nn.spec`, which needs no torch; ``caviar panda
set lr=3e-3`` starts in well under a second) imports them without loading the engine.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

    from caviar.nn.device import resolve_device
    from caviar.nn.memory import InsufficientMemory
    from caviar.nn.pool import MemberEpoch, Pool, RoundResult
    from caviar.nn.population import EpochEvent, MemberResult, Population, evaluate_states
    from caviar.nn.spec import GROUP_KEYS, HYPERPARAMETERS, Hyperparameter, MemberSpec
    from caviar.nn.state import MemberState
    from caviar.nn.training_data import TrainingData

#: where each public name lives
_HOMES = {
    "resolve_device": "caviar.nn.device",
    "InsufficientMemory": "caviar.nn.memory",
    **dict.fromkeys(["MemberEpoch", "Pool", "RoundResult"], "caviar.nn.pool"),
    **dict.fromkeys(
        ["EpochEvent", "MemberResult", "Population", "evaluate_states"], "caviar.nn.population"
    ),
    **dict.fromkeys(
        ["GROUP_KEYS", "HYPERPARAMETERS", "Hyperparameter", "MemberSpec"], "caviar.nn.spec"
    ),
    "MemberState": "caviar.nn.state",
    "TrainingData": "caviar.nn.training_data",
}

__all__ = [
    "GROUP_KEYS",
    "HYPERPARAMETERS",
    "EpochEvent",
    "Hyperparameter",
    "InsufficientMemory",
    "MemberEpoch",
    "MemberResult",
    "MemberSpec",
    "MemberState",
    "Pool",
    "Population",
    "RoundResult",
    "TrainingData",
    "evaluate_states",
    "resolve_device",
]


def __getattr__(name: str) -> Any:
    """The public names, imported on first use (see ``_HOMES``)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'caviar.nn' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
