"""Studies: ask/tell over a search space, trial records and their states."""

from caviar.study.study import RoundSummary, Study, Trial
from caviar.records import Direction, EpochRecord, FrozenTrial, NewTrial, TrialState

__all__ = [
    "Direction",
    "EpochRecord",
    "FrozenTrial",
    "NewTrial",
    "RoundSummary",
    "Study",
    "Trial",
    "TrialState",
]
