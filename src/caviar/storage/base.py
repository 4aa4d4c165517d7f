"""The storage contract: what every backend guarantees, tested by one suite against all of them.

Contract
--------
1. Studies are identified by name. ``create_study`` fails with :class:`DuplicateStudyError` when
   the name is taken; the other calls fail with :class:`UnknownStudyError` for a missing name.
2. Trial numbers are unique per study. ``create_trials`` is all-or-nothing: if any number is
   taken it creates none and raises :class:`DuplicateTrialError`, so a caller that lost a race
   re-reads the history and proposes again.
3. Only the owner of a running trial can change it: ``add_epochs``, ``finish_trial`` and
   ``requeue`` take the owner and raise :class:`StaleTrialError` (changing nothing) when the trial
   is not running under that owner. A finished trial never changes state again, so no completed
   trial is ever lost or recorded twice.
4. ``claim_queued`` moves queued trials to running under the caller, lowest numbers first; two
   callers never claim the same trial.
5. ``requeue`` puts a running trial back in the queue with the same number, configuration and
   seed, drops its partial learning curve and counts an extra attempt.
6. Every call is atomic: after a crash at any moment the store holds either all of a call's
   writes or none of them.
7. ``get_trials`` returns trials sorted by number; learning curves sorted by epoch.
8. A study's trial numbers run 0..N-1 without gaps (each ``create_trials`` takes the numbers
   after the last), and a complete trial holds a finite value. ``check_study`` raises
   :class:`CorruptRowError` when a stored study breaks this (a row deleted or a value cleared
   outside caviar): a study opened so is refused, not quietly run short of a trial.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from caviar.core.records import EpochRecord, FrozenTrial, Trial, TrialState


class StorageError(Exception):
    """Base class of the storage errors below."""


class DuplicateStudyError(StorageError):
    pass


class UnknownStudyError(StorageError, KeyError):
    pass


class DuplicateTrialError(StorageError):
    pass


class StaleTrialError(StorageError):
    """The trial is not running under this owner (finished, requeued, or owned by another).

    ``numbers`` are the trials concerned, when the backend knows them."""

    def __init__(self, message: str, numbers: Iterable[int] = ()) -> None:
        super().__init__(message)
        self.numbers = tuple(numbers)


class CorruptRowError(StorageError):
    """A stored row holds what caviar never writes (changed outside caviar): the message names
    the study, the trial and the column."""


class DiskFullError(StorageError):
    """A write found no room on the disk; it was rolled back whole, and nothing stored before it
    was lost."""


@dataclass(frozen=True)
class StudyRecord:
    """A study's fixed definition plus its free-form attributes."""

    name: str
    direction: str
    space: Mapping[str, Any]
    sampler: Mapping[str, Any]
    seed: int
    attrs: Mapping[str, Any] = field(default_factory=dict)
    created: float | None = None


def numbering_problem(numbers: Sequence[Any]) -> str | None:
    """What is wrong with a study's trial numbers, sorted, or None when they run 0..N-1."""
    last = numbers[-1] if numbers else -1
    for expected, number in enumerate(numbers):
        if number != expected:
            if isinstance(number, int) and number > expected:
                return f"trial {expected} is missing: trial numbers must run 0..{last} without gaps"
            return f"trial number {number!r} is not allowed: trial numbers must run 0..N-1"
    return None


def complete_without_value(number: int, value: float | None) -> str:
    """What is wrong with a complete trial of no (or no finite) value."""
    shown = "NULL" if value is None else repr(value)
    return (
        f"trial {number} is complete but its value is {shown}: a complete trial must hold a "
        f"finite value"
    )


def damaged_study(where: str, study: str, problem: str) -> CorruptRowError:
    """The error for a study whose rows break contract point 8."""
    return CorruptRowError(
        f"{where}study {study!r}: {problem}; the file was edited by hand or damaged: restore "
        f"it from a copy, or use another study name"
    )


def checked_value(value: float | None) -> float | None:
    """An objective value as stored: None, or a finite float."""
    if value is None:
        return None
    try:
        number = float(value) if not isinstance(value, bool | str) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise ValueError(f"a trial's value must be a finite number or None, got {value!r}")
    return number


class Storage(ABC):
    """Where studies and their trials live. See the module docstring for the contract."""

    # -- studies -----------------------------------------------------------------------------
    @abstractmethod
    def create_study(self, record: StudyRecord) -> None: ...

    @abstractmethod
    def load_study(self, name: str) -> StudyRecord: ...

    @abstractmethod
    def study_names(self) -> list[str]: ...

    @abstractmethod
    def set_study_attrs(self, name: str, attrs: Mapping[str, Any]) -> None:
        """Merge ``attrs`` into the study's attributes (JSON values)."""

    # -- trials ------------------------------------------------------------------------------
    @abstractmethod
    def create_trials(
        self, study: str, trials: Sequence[Trial], *, owner: str | None
    ) -> list[FrozenTrial]:
        """Create trials, running under ``owner``, or queued when ``owner`` is None."""

    @abstractmethod
    def claim_queued(self, study: str, owner: str, limit: int) -> list[FrozenTrial]:
        """Move up to ``limit`` queued trials to running under ``owner``, lowest number first."""

    @abstractmethod
    def requeue(self, study: str, number: int, owner: str) -> None:
        """Put a trial running under ``owner`` back in the queue (see contract, point 5)."""

    @abstractmethod
    def heartbeat(self, study: str, numbers: Iterable[int], owner: str) -> None:
        """Stamp the current time on the given trials that run under ``owner``."""

    @abstractmethod
    def add_epochs(
        self, study: str, rows: Sequence[tuple[int, EpochRecord]], *, owner: str
    ) -> None:
        """Record learning-curve points ``(trial number, record)`` in one transaction.

        A point for an epoch already recorded replaces it.
        """

    @abstractmethod
    def finish_trial(
        self,
        study: str,
        number: int,
        state: TrialState,
        value: float | None,
        *,
        owner: str,
        attrs: Mapping[str, Any] | None = None,
    ) -> FrozenTrial:
        """Move a running trial to a finished state with its objective value."""

    @abstractmethod
    def set_trial_attrs(self, study: str, number: int, attrs: Mapping[str, Any]) -> None:
        """Merge ``attrs`` into a trial's attributes (allowed in any state)."""

    @abstractmethod
    def get_trials(
        self,
        study: str,
        *,
        states: Iterable[TrialState] | None = None,
        numbers: Iterable[int] | None = None,
        curves: bool = True,
    ) -> list[FrozenTrial]:
        """Trials sorted by number (those in ``states`` and ``numbers`` when given), with their
        learning curves unless ``curves`` is False."""

    def check_study(self, name: str) -> None:
        """A :class:`CorruptRowError` if the study breaks contract point 8 (numbers 0..N-1, a
        value for each complete trial). Backends may answer it without reading every row."""
        trials = self.get_trials(name, curves=False)
        problem = numbering_problem([t.number for t in trials])
        if problem is None:
            valueless = [
                t
                for t in trials
                if t.state is TrialState.COMPLETE
                and (t.value is None or not math.isfinite(t.value))
            ]
            if valueless:
                problem = complete_without_value(valueless[0].number, valueless[0].value)
        if problem is not None:
            raise damaged_study("", name, problem)

    def close(self) -> None:  # noqa: B027 -- optional for backends without resources
        """Release files and connections."""
