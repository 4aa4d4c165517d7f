"""Trial records every layer shares: states, learning-curve points and the frozen view storages
return. The ground floor of the house: it imports nothing from caviar, so the engine, storages,
samplers and the study all build on it without importing one another."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class TrialState(StrEnum):
    """Life of a trial: queued -> running -> one of the finished states (or back to queued)."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"
    DIVERGED = "diverged"

    @property
    def is_finished(self) -> bool:
        return self not in (TrialState.QUEUED, TrialState.RUNNING)


class Direction(StrEnum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` beats value ``b``."""
        return a > b if self is Direction.MAXIMIZE else a < b

    def sort_key(self, value: float) -> float:
        """A key that sorts the best value first."""
        return -value if self is Direction.MAXIMIZE else value


METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


@dataclass(frozen=True)
class EpochRecord:
    """One point of a learning curve, measured after ``epoch`` epochs (1-based) in eval mode.

    Losses are the data loss (softmax cross-entropy), without the weight-decay term, so that
    members with different weight decay compare. NaN marks a value that could not be computed.
    """

    epoch: int
    train_loss: float = math.nan
    train_accuracy: float = math.nan
    val_loss: float = math.nan
    val_accuracy: float = math.nan

    def metric(self, name: str) -> float:
        if name not in METRICS:
            raise KeyError(f"unknown metric {name!r}; known: {list(METRICS)}")
        return float(getattr(self, name))


@dataclass(frozen=True)
class Trial:
    """A trial to train: its number, configuration (``params`` and their ``unit`` coordinates)
    and seed. What :meth:`Study.ask` hands out, and what a study hands a storage to create."""

    number: int
    params: Mapping[str, Any]
    unit: tuple[float, ...]
    seed: int
    attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FrozenTrial:
    """A trial as stored: configuration, state, objective value, attributes and learning curve."""

    number: int
    state: TrialState
    params: Mapping[str, Any]
    unit: tuple[float, ...]
    seed: int
    value: float | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)
    curve: tuple[EpochRecord, ...] = ()
    owner: str | None = None
    heartbeat: float | None = None
    created: float | None = None
    started: float | None = None
    finished: float | None = None
    attempt: int = 0
