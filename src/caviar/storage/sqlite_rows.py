"""Stored rows back into records, checked: a row changed outside caviar (bad JSON, an unknown
state, text in a number column) is a :class:`CorruptRowError` that names the study, the trial and
the column, never a traceback from deep inside ``json`` or an enum."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from caviar.core.records import METRICS, EpochRecord, FrozenTrial, TrialState
from caviar.storage.base import CorruptRowError, StudyRecord

#: the trial columns read, in this order
TRIAL_COLUMNS = (
    "trial_id, number, state, params, unit, seed, value, attrs, owner, heartbeat, created, "
    "started, finished, attempt"
)
#: the study columns read, in this order
STUDY_COLUMNS = "name, direction, space, sampler, seed, attrs, created"

_STATES = ", ".join(s.value for s in TrialState)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:50] + "..." + text[-7:]


class Where:
    """The row being read: ``study 'a', trial 3``; it words the error for a bad column."""

    def __init__(self, study: str, number: Any = None) -> None:
        self._study, self._trial = study, number  # worded only when a column is bad

    @property
    def label(self) -> str:
        if self._trial is None:
            return f"study {self._study!r}"
        return f"study {self._study!r}, trial {self._trial}"

    def bad(
        self, column: str, value: Any, expected: str, detail: str = "", *, of: str = ""
    ) -> CorruptRowError:
        return CorruptRowError(
            f"{self.label}: column {column!r}{of} holds {_shown(value)}, which is not {expected}"
            f"{detail} (was the file changed outside caviar? mend or delete that row)"
        )

    def json(self, column: str, text: Any, kind: type = dict) -> Any:
        """A JSON column that must decode to ``kind`` (an object unless told)."""
        try:
            value = json.loads(text)
        except (TypeError, ValueError):
            raise self.bad(column, text, "JSON") from None
        if kind is dict and not isinstance(value, dict):
            raise self.bad(column, text, "a JSON object")
        if kind is list and not (
            isinstance(value, list)
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        ):
            raise self.bad(column, text, "a JSON list of numbers")
        return value

    def integer(self, column: str, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise self.bad(column, value, "an integer")

    def number(self, column: str, value: Any, *, of: str = "") -> float | None:
        """A REAL column: None or a number (SQLite keeps text put in a REAL column as text)."""
        if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
            return value
        raise self.bad(column, value, "a number", of=of)

    def state(self, value: Any) -> TrialState:
        try:
            return TrialState(value)
        except ValueError:
            raise self.bad("state", value, "a trial state", f" ({_STATES})") from None


def study_record(row: Sequence[Any]) -> StudyRecord:
    where = Where(row[0])
    return StudyRecord(
        name=row[0],
        direction=row[1],
        space=where.json("space", row[2]),
        sampler=where.json("sampler", row[3]),
        seed=where.integer("seed", row[4]),
        attrs=where.json("attrs", row[5]),
        created=row[6],
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def epoch_record(study: str, number: int, row: Sequence[Any]) -> EpochRecord:
    """An ``epochs`` row without its trial id: ``epoch, *METRICS``. Curves are read by the
    thousand, so a sound row costs a type test per column; a bad one is worded on the slow path."""
    epoch, *values = row
    if (
        _is_number(epoch)
        and isinstance(epoch, int)
        and all(v is None or _is_number(v) for v in values)
    ):
        return EpochRecord(epoch, *(math.nan if v is None else float(v) for v in values))
    where = Where(study, number)
    epoch = where.integer("epoch", epoch)
    metrics = [
        where.number(name, value, of=f" of epoch {epoch}")
        for name, value in zip(METRICS, values, strict=True)
    ]
    return EpochRecord(epoch, *(math.nan if m is None else float(m) for m in metrics))


def frozen_trial(study: str, row: Sequence[Any], curve: Sequence[EpochRecord]) -> FrozenTrial:
    """A ``TRIAL_COLUMNS`` row with its learning curve."""
    where = Where(study, row[1])
    return FrozenTrial(
        number=where.integer("number", row[1]),
        state=where.state(row[2]),
        params=where.json("params", row[3]),
        unit=tuple(where.json("unit", row[4], list)),
        seed=where.integer("seed", row[5]),
        value=where.number("value", row[6]),
        attrs=where.json("attrs", row[7]),
        curve=tuple(curve),
        owner=row[8],
        heartbeat=where.number("heartbeat", row[9]),
        created=row[10],
        started=row[11],
        finished=row[12],
        attempt=row[13],
    )
