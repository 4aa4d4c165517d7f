"""The population engine: fully connected nets, many members at once, each its own config."""

from caviar.nn.device import resolve_device
from caviar.nn.memory import InsufficientMemory
from caviar.nn.pool import MemberEpoch, Pool, RoundResult
from caviar.nn.population import EpochEvent, MemberResult, Population, evaluate_states
from caviar.nn.spec import GROUP_KEYS, HYPERPARAMETERS, Hyperparameter, MemberSpec
from caviar.nn.state import MemberState
from caviar.nn.training_data import TrainingData

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
