"""Studies: ask/tell over a search space, trial records and their states."""

from caviar.core.records import Direction, EpochRecord, FrozenTrial, Trial, TrialState
from caviar.study.owners import HeldTrials, TrialsTakenOver
from caviar.study.study import RoundSummary, Study

__all__ = [
    "Direction",
    "EpochRecord",
    "FrozenTrial",
    "HeldTrials",
    "RoundSummary",
    "Study",
    "Trial",
    "TrialState",
    "TrialsTakenOver",
]
