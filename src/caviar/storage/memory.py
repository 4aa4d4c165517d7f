"""InMemoryStorage: the reference backend, a few dicts behind a lock.

Values pass through JSON on the way in, exactly as in SQLite, so both backends accept and return
the same things and the contract suite tests them alike.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from caviar.core.records import EpochRecord, FrozenTrial, Trial, TrialState
from caviar.storage.base import (
    DuplicateStudyError,
    DuplicateTrialError,
    StaleTrialError,
    Storage,
    StudyRecord,
    UnknownStudyError,
    checked_value,
)


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value, allow_nan=False))


def _detached(trial: FrozenTrial) -> FrozenTrial:
    """A copy the caller may change without changing the store (as with SQLite)."""
    return replace(trial, params=copy.deepcopy(trial.params), attrs=copy.deepcopy(trial.attrs))


class InMemoryStorage(Storage):
    """Studies in this process's memory; gone when it ends. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._studies: dict[str, StudyRecord] = {}
        self._trials: dict[str, dict[int, FrozenTrial]] = {}
        self._curves: dict[str, dict[int, dict[int, EpochRecord]]] = {}

    # -- studies -----------------------------------------------------------------------------
    def create_study(self, record: StudyRecord) -> None:
        with self._lock:
            if record.name in self._studies:
                raise DuplicateStudyError(f"study {record.name!r} exists already")
            self._studies[record.name] = replace(
                record,
                space=_json(record.space),
                sampler=_json(record.sampler),
                attrs=_json(record.attrs),
                created=time.time(),
            )
            self._trials[record.name] = {}
            self._curves[record.name] = {}

    def load_study(self, name: str) -> StudyRecord:
        with self._lock:
            return copy.deepcopy(self._study(name))

    def _study(self, name: str) -> StudyRecord:
        try:
            return self._studies[name]
        except KeyError:
            raise UnknownStudyError(f"no study named {name!r}") from None

    def study_names(self) -> list[str]:
        with self._lock:
            return sorted(self._studies)

    def set_study_attrs(self, name: str, attrs: Mapping[str, Any]) -> None:
        with self._lock:
            record = self._study(name)
            self._studies[name] = replace(record, attrs={**record.attrs, **_json(dict(attrs))})

    # -- trials ------------------------------------------------------------------------------
    def create_trials(
        self, study: str, trials: Sequence[Trial], *, owner: str | None
    ) -> list[FrozenTrial]:
        with self._lock:
            self._study(study)
            table = self._trials[study]
            numbers = [t.number for t in trials]
            if len(set(numbers)) != len(numbers) or any(n in table for n in numbers):
                raise DuplicateTrialError(f"trial numbers {numbers} are taken in {study!r}")
            now = time.time()
            created = []
            for t in trials:
                frozen = FrozenTrial(
                    number=t.number,
                    state=TrialState.QUEUED if owner is None else TrialState.RUNNING,
                    params=_json(dict(t.params)),
                    unit=tuple(float(u) for u in t.unit),
                    seed=int(t.seed),
                    attrs=_json(dict(t.attrs)),
                    owner=owner,
                    heartbeat=None if owner is None else now,
                    created=now,
                    started=None if owner is None else now,
                )
                table[t.number] = frozen
                self._curves[study][t.number] = {}
                created.append(frozen)
            return [_detached(t) for t in created]

    def _running(self, study: str, number: int, owner: str) -> FrozenTrial:
        self._study(study)
        trial = self._trials[study].get(number)
        if trial is None or trial.state is not TrialState.RUNNING or trial.owner != owner:
            state = "missing" if trial is None else f"{trial.state.value} (owner {trial.owner})"
            raise StaleTrialError(
                f"trial {number} of {study!r} is not running under {owner}: {state}", [number]
            )
        return trial

    def claim_queued(self, study: str, owner: str, limit: int) -> list[FrozenTrial]:
        with self._lock:
            self._study(study)
            table = self._trials[study]
            queued = sorted(n for n, t in table.items() if t.state is TrialState.QUEUED)[:limit]
            now = time.time()
            for n in queued:
                table[n] = replace(
                    table[n], state=TrialState.RUNNING, owner=owner, heartbeat=now, started=now
                )
            return [_detached(table[n]) for n in queued]

    def requeue(self, study: str, number: int, owner: str) -> None:
        with self._lock:
            trial = self._running(study, number, owner)
            self._trials[study][number] = replace(
                trial,
                state=TrialState.QUEUED,
                owner=None,
                heartbeat=None,
                started=None,
                attempt=trial.attempt + 1,
            )
            self._curves[study][number] = {}

    def heartbeat(self, study: str, numbers: Iterable[int], owner: str) -> None:
        with self._lock:
            self._study(study)
            table, now = self._trials[study], time.time()
            for n in numbers:
                t = table.get(n)
                if t is not None and t.state is TrialState.RUNNING and t.owner == owner:
                    table[n] = replace(t, heartbeat=now)

    def add_epochs(
        self, study: str, rows: Sequence[tuple[int, EpochRecord]], *, owner: str
    ) -> None:
        with self._lock:
            for number in {n for n, _ in rows}:
                self._running(study, number, owner)
            for number, record in rows:
                self._curves[study][number][record.epoch] = record

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
        if not state.is_finished:
            raise ValueError(f"finish_trial needs a finished state, got {state.value!r}")
        with self._lock:
            trial = self._running(study, number, owner)
            finished = replace(
                trial,
                state=state,
                value=checked_value(value),
                attrs={**trial.attrs, **_json(dict(attrs or {}))},
                finished=time.time(),
            )
            self._trials[study][number] = finished
            return _detached(self._with_curve(study, finished))

    def set_trial_attrs(self, study: str, number: int, attrs: Mapping[str, Any]) -> None:
        with self._lock:
            self._study(study)
            trial = self._trials[study].get(number)
            if trial is None:
                raise KeyError(f"no trial {number} in study {study!r}")
            self._trials[study][number] = replace(
                trial, attrs={**trial.attrs, **_json(dict(attrs))}
            )

    def _with_curve(self, study: str, trial: FrozenTrial) -> FrozenTrial:
        curve = self._curves[study][trial.number]
        return replace(trial, curve=tuple(curve[e] for e in sorted(curve)))

    def get_trials(
        self,
        study: str,
        *,
        states: Iterable[TrialState] | None = None,
        numbers: Iterable[int] | None = None,
        curves: bool = True,
    ) -> list[FrozenTrial]:
        with self._lock:
            self._study(study)
            wanted = None if states is None else set(states)
            chosen = None if numbers is None else set(numbers)
            trials = [
                t
                for n, t in sorted(self._trials[study].items())
                if (wanted is None or t.state in wanted) and (chosen is None or n in chosen)
            ]
            return [_detached(self._with_curve(study, t) if curves else t) for t in trials]
