"""InMemoryTreeStore: the reference tree store, a few dicts per run behind a lock.

Values pass through JSON on the way in, exactly as in SQLite, and what goes out is a copy, so
both backends accept and return the same things and the contract suite tests them alike.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from caviar.storage.tree_base import (
    AppliedCommand,
    NewCommand,
    TreeStore,
    no_run,
    no_snapshot,
    run_exists,
)
from caviar.storage.tree_retention import StoredSnapshot, beyond_budget
from caviar.storage.tree_rows import Branch, Command, RunRow, Snapshot, StoredEpoch, json_text


def _json(value: Any) -> Any:
    """``value`` as it reads back from the store."""
    return json.loads(json_text(value))


@dataclass
class _Run:
    """One run's tree: its row and, keyed by id or ``(branch, epoch)``, everything it holds."""

    row: RunRow
    branches: dict[int, Branch] = field(default_factory=dict)
    commands: dict[int, Command] = field(default_factory=dict)
    epochs: dict[tuple[int, int], StoredEpoch] = field(default_factory=dict)
    snapshots: dict[tuple[int, int], tuple[Snapshot, float]] = field(default_factory=dict)
    dropped: list[dict[str, Any]] = field(default_factory=list)


class InMemoryTreeStore(TreeStore):
    """Panda runs in this process's memory; gone when it ends. Thread-safe."""

    where = "memory"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._runs: dict[int, _Run] = {}  # by run id, in the order they were created
        self._last_command = 0  # command ids are unique in the store, as in SQLite

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._lock:
            yield

    def _run(self, run_id: int) -> _Run:
        return self._runs[run_id]

    def _changed(self, run: _Run) -> None:
        run.row = replace(run.row, version=run.row.version + 1)

    # -- runs --------------------------------------------------------------------------------
    def create_run(
        self,
        name: str,
        *,
        config: dict[str, Any],
        spec: dict[str, Any],
        source: dict[str, Any],
        budget: int,
        first: Snapshot,
    ) -> RunRow:
        now = time.time()
        config, spec, source = _json(config), _json(spec), _json(source)
        first = replace(first, spec=_json(first.spec))
        with self._lock:
            if name in self.run_names():
                raise run_exists(name, self.where)
            row = RunRow(
                len(self._runs) + 1, name, config, spec, source, "running", 0, budget, 1, now
            )
            root = Branch(0, None, None, None, spec, now)
            snapshots = {(0, first.epoch): (first, now)}
            self._runs[row.run_id] = _Run(row, branches={0: root}, snapshots=snapshots)
            return copy.deepcopy(row)

    def run(self, name: str) -> RunRow:
        with self._lock:
            for run in self._runs.values():
                if run.row.name == name:
                    return copy.deepcopy(run.row)
            raise no_run(name, self.where, self.run_names())

    def run_names(self) -> list[str]:
        with self._lock:
            return [run.row.name for run in self._runs.values()]

    def version(self, run_id: int) -> int:
        with self._lock:
            return self._run(run_id).row.version

    # -- branches and commands ---------------------------------------------------------------
    def branches(self, run_id: int) -> list[Branch]:
        with self._lock:
            branches = self._run(run_id).branches
            return [copy.deepcopy(branches[b]) for b in sorted(branches)]

    def add_branch(
        self, run_id: int, *, parent: int, from_epoch: int, mode: str, current: int
    ) -> int:
        now = time.time()
        with self._lock:
            run = self._run(run_id)
            if (parent, from_epoch) not in run.snapshots:
                raise no_snapshot(parent, from_epoch)
            source, _ = run.snapshots[parent, from_epoch]
            new = max(run.branches) + 1
            run.branches[new] = Branch(new, parent, from_epoch, mode, source.spec, now)
            self._add_command(
                run, Command(0, parent, from_epoch, "rollback", current, new, now, False)
            )
            self._changed(run)
            return new

    def _add_command(self, run: _Run, command: Command) -> int:
        self._last_command += 1
        run.commands[self._last_command] = replace(command, id=self._last_command)
        return self._last_command

    def add_commands(self, run_id: int, rows: list[NewCommand]) -> list[int]:
        now = time.time()
        given = [
            Command(0, branch, epoch, key, _json(old), _json(new), now, False)
            for branch, epoch, key, old, new in rows
        ]  # JSON first: a value it cannot hold writes nothing
        with self._lock:
            run = self._run(run_id)
            ids = [self._add_command(run, command) for command in given]
            self._changed(run)
            return ids

    def commands(self, run_id: int, *, pending: bool = False) -> list[Command]:
        with self._lock:
            commands = self._run(run_id).commands
            return [
                copy.deepcopy(commands[i])
                for i in sorted(commands)
                if not (pending and commands[i].applied)
            ]

    def boundary(
        self,
        run_id: int,
        applied: list[AppliedCommand],
        *,
        status: str,
        branch: int,
        spec: dict[str, Any],
    ) -> None:
        changes = [(command_id, epoch, _json(old)) for command_id, epoch, old in applied]
        spec = _json(spec)
        with self._lock:
            run = self._run(run_id)
            for command_id, epoch, old in changes:
                if command_id in run.commands:
                    command = run.commands[command_id]
                    run.commands[command_id] = replace(command, applied=True, epoch=epoch, old=old)
            run.row = replace(run.row, status=status, branch=branch)
            if branch in run.branches:
                run.branches[branch] = replace(run.branches[branch], spec=spec)
            self._changed(run)

    # -- epochs and snapshots ----------------------------------------------------------------
    def add_epoch(self, run_id: int, branch: int, point: StoredEpoch, snapshot: Snapshot) -> None:
        kept = replace(snapshot, spec=_json(snapshot.spec))
        with self._lock:
            run = self._run(run_id)
            run.epochs[branch, point.record.epoch] = point.stored()
            run.snapshots[branch, snapshot.epoch] = (kept, point.time)
            self._drop_beyond_budget(run)
            self._changed(run)

    def _drop_beyond_budget(self, run: _Run) -> None:
        stored = [
            StoredSnapshot(branch, epoch, snapshot.size, at)
            for (branch, epoch), (snapshot, at) in run.snapshots.items()
        ]
        grown_from = [
            (b.parent, b.from_epoch)
            for b in run.branches.values()
            if b.parent is not None and b.from_epoch is not None
        ]
        now = time.time()
        for s in beyond_budget(stored, run.row.budget, grown_from):
            del run.snapshots[s.branch, s.epoch]
            run.dropped.append({"branch": s.branch, "epoch": s.epoch, "bytes": s.size, "time": now})

    def last_epoch(self, run_id: int, branch: int) -> int | None:
        with self._lock:
            epochs = [e for b, e in self._run(run_id).epochs if b == branch]
            return max(epochs, default=None)

    def curves(self, run_id: int) -> dict[int, list[StoredEpoch]]:
        out: dict[int, list[StoredEpoch]] = {}
        with self._lock:
            epochs = self._run(run_id).epochs
            for branch, epoch in sorted(epochs):
                out.setdefault(branch, []).append(epochs[branch, epoch])
        return out

    def first_snapshot(self, run_id: int) -> int:
        with self._lock:
            return min(e for b, e in self._run(run_id).snapshots if b == 0)

    def snapshot_epochs(self, run_id: int) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        with self._lock:
            for branch, epoch in sorted(self._run(run_id).snapshots):
                out.setdefault(branch, []).append(epoch)
        return out

    def snapshot(self, run_id: int, branch: int, epoch: int) -> bytes:
        with self._lock:
            snapshots = self._run(run_id).snapshots
            if (branch, epoch) not in snapshots:
                raise no_snapshot(branch, epoch)
            return snapshots[branch, epoch][0].data

    def dropped(self, run_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._run(run_id).dropped)
