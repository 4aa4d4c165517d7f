"""The population engine: fully connected nets, many members at once, each its own config."""

from caviar.nn.device import resolve_device
from caviar.nn.memory import Chunk, InsufficientMemory
from caviar.nn.population import (
    EpochEvent,
    MemberResult,
    Population,
    TrainingData,
    evaluate_states,
)
from caviar.nn.spec import GROUP_KEYS, HYPERPARAMETERS, Hyperparameter, MemberSpec
from caviar.nn.state import MemberState

__all__ = [
    "GROUP_KEYS",
    "HYPERPARAMETERS",
    "Chunk",
    "EpochEvent",
    "Hyperparameter",
    "InsufficientMemory",
    "MemberResult",
    "MemberSpec",
    "MemberState",
    "Population",
    "TrainingData",
    "evaluate_states",
    "resolve_device",
]
