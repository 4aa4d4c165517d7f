"""The rows of the panda tree as frozen records: a run, a branch, a command, an epoch and a
snapshot. Every tree store (:mod:`caviar.storage.tree_base`) takes and returns these."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from caviar.core.records import EpochRecord


def json_text(value: Any) -> str:
    """A value as a tree store keeps it: compact JSON, NaN and infinities refused (ValueError)."""
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


@dataclass(frozen=True)
class RunRow:
    """A run: its config and first spec (JSON-ready), where it started, and its state."""

    run_id: int
    name: str
    config: dict[str, Any]
    spec: dict[str, Any]  # the root's spec, seed included
    source: dict[str, Any]  # {"kind": "config"} or {"kind": "trial", "study", "trial", ...}
    status: str
    branch: int  # the branch trained (or last trained)
    budget: int  # bytes of snapshots kept at most
    version: int
    created: float

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> RunRow:
        run_id, name, config, spec, source, status, branch, budget, version, created = row
        return cls(
            run_id,
            name,
            json.loads(config),
            json.loads(spec),
            json.loads(source),
            status,
            branch,
            budget,
            version,
            created,
        )


@dataclass(frozen=True)
class Branch:
    """A branch: the root (no parent), or a rollback to ``parent``'s snapshot at
    ``from_epoch`` in ``mode`` ("exact" or "fresh"); ``spec`` is the one it trains with now."""

    id: int
    parent: int | None
    from_epoch: int | None
    mode: str | None
    spec: dict[str, Any]
    created: float

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Branch:
        branch, parent, from_epoch, mode, spec, created = row
        return cls(branch, parent, from_epoch, mode, json.loads(spec), created)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "parent": self.parent,
            "from_epoch": self.from_epoch,
            "mode": self.mode,
            "created": self.created,
        }


@dataclass(frozen=True)
class Command:
    """``{branch, epoch, key, old -> new}``: a change of ``key`` asked at ``time``; once
    ``applied``, ``epoch`` is the boundary it took effect at and ``old`` the value it replaced
    there. A rollback's ``branch``/``epoch`` are where it returned to, ``old`` the branch
    trained before and ``new`` the new branch."""

    id: int
    branch: int
    epoch: int
    key: str
    old: Any
    new: Any
    time: float
    applied: bool

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Command:
        command_id, branch, epoch, key, old, new, time, applied = row
        return cls(
            command_id, branch, epoch, key, json.loads(old), json.loads(new), time, bool(applied)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "branch": self.branch,
            "epoch": self.epoch,
            "key": self.key,
            "old": self.old,
            "new": self.new,
            "time": self.time,
            "applied": self.applied,
        }


@dataclass(frozen=True)
class StoredEpoch:
    """One point of a branch's curve and when it was stored."""

    record: EpochRecord
    time: float

    def stored(self) -> StoredEpoch:
        """The point as every store keeps it: a value that is not finite (NaN, an infinity)
        becomes NaN, "could not be computed"."""
        r = self.record
        values = (r.train_loss, r.train_accuracy, r.val_loss, r.val_accuracy)
        kept = [v if math.isfinite(v) else math.nan for v in values]
        return StoredEpoch(EpochRecord(r.epoch, *kept), self.time)

    def row(self) -> tuple[Any, ...]:
        """The SQLite row (NULL for a value that is not finite)."""
        r = self.record
        return (
            r.epoch,
            _finite(r.train_loss),
            _finite(r.train_accuracy),
            _finite(r.val_loss),
            _finite(r.val_accuracy),
            self.time,
        )

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> StoredEpoch:
        """The point of a SQLite row (NULL reads back as NaN)."""
        epoch, *values, time = row
        floats = [math.nan if v is None else float(v) for v in values]
        return cls(EpochRecord(int(epoch), *floats), float(time))

    def to_json(self) -> dict[str, Any]:
        """The point as the page reads it (NaN, a value that could not be computed, is null)."""
        r = self.record
        return {
            "epoch": r.epoch,
            "train_loss": _finite(r.train_loss),
            "train_accuracy": _finite(r.train_accuracy),
            "val_loss": _finite(r.val_loss),
            "val_accuracy": _finite(r.val_accuracy),
            "time": self.time,
        }


@dataclass(frozen=True)
class Snapshot:
    """A model's whole state after ``epoch``, as the bytes the trainer encoded (a store never
    looks inside them), and the spec it trains with (JSON-ready)."""

    epoch: int
    spec: dict[str, Any]
    data: bytes

    @property
    def size(self) -> int:
        """Bytes it takes of the run's disk budget."""
        return len(self.data)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
