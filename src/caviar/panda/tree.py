"""The panda tree, persisted: runs, branches, commands, epochs and snapshots in the study file.

The tables live beside caviar's studies in the same SQLite file (default ``caviar.db``), so a
restarted process, the page and ``caviar show`` see the whole history. Two processes share it
as the study store does: WAL journal, every write one ``BEGIN IMMEDIATE`` transaction (the
trainer writes epochs and snapshots, ``caviar panda set`` writes commands), and every write
bumps the run's ``version``, so a reader in any process sees that something changed.

Snapshots are whole :class:`~caviar.nn.MemberState` bytes (``torch.save`` of tensors and plain
values, read back with ``weights_only=True``: nothing else is ever unpickled). Retention keeps
them under the run's disk budget: the oldest go first, except a branch's latest, the root's first
and every epoch a branch grew from; each one dropped is recorded (:meth:`PandaTree.dropped`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from caviar.core.errors import InvalidValue
from caviar.nn.state import MemberState
from caviar.panda.schema import PANDA_SCHEMA, drop_beyond_budget
from caviar.storage import SQLiteStorage
from caviar.storage.sqlite_connections import Connections
from caviar.storage.tree_rows import Branch, Command, RunRow, StoredEpoch

_RUN_COLUMNS = "run_id, name, config, spec, source, status, branch, budget, version, created"


def dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


def _prepare(db: sqlite3.Connection) -> None:
    """A new writable connection (the study store switched the file to WAL already)."""
    db.execute("PRAGMA synchronous=NORMAL")


class PandaTree:
    """The panda tables of one study file (created with caviar's own tables if missing).

    One connection per thread and per process. With ``read_only``, nothing is written, and a
    file without panda tables simply has no runs."""

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float = 60.0, read_only: bool = False
    ) -> None:
        self.path, self.timeout, self.read_only = Path(path), timeout, read_only
        self._connections = Connections(
            self.path,
            timeout=timeout,
            read_only=read_only,
            prepare=_prepare,
        )
        if read_only:
            SQLiteStorage(self.path, read_only=True).close()  # a caviar study file, or an error
            return
        SQLiteStorage(self.path, timeout=timeout).close()  # caviar's tables, and WAL
        with self._write() as db:
            for statement in PANDA_SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    # -- connections -------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        return self._connections.db()

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self._connections.write(f"the panda runs of {self.path}")

    def read(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A read transaction: its SELECTs see one snapshot of the file (a read inside a read
        shares it)."""
        return self._connections.read()

    def close(self) -> None:
        self._connections.close()

    def _has_tables(self, db: sqlite3.Connection) -> bool:
        row = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'panda_runs'"
        ).fetchone()
        return row is not None

    # -- runs --------------------------------------------------------------------------------
    def create_run(
        self,
        name: str,
        *,
        config: dict[str, Any],
        spec: dict[str, Any],
        source: dict[str, Any],
        budget: int,
        first: MemberState,
    ) -> RunRow:
        """A new run with its root branch 0 and the root's first snapshot (``first``)."""
        now = time.time()
        with self._write() as db:
            cursor = db.execute(
                f"INSERT INTO panda_runs ({_RUN_COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, 0, ?, 1, ?)",
                (name, dumps(config), dumps(spec), dumps(source), "running", budget, now),
            )
            run_id = int(cursor.lastrowid or 0)
            db.execute(
                "INSERT INTO panda_branches VALUES (?, 0, NULL, NULL, NULL, ?, ?)",
                (run_id, dumps(spec), now),
            )
            self._put_snapshot(db, run_id, 0, first, now)
        return self.run(name)

    def run(self, name: str) -> RunRow:
        """The run called ``name``; an InvalidValue naming the runs there are if none."""
        with self.read() as db:
            row = None
            if self._has_tables(db):
                row = db.execute(
                    f"SELECT {_RUN_COLUMNS} FROM panda_runs WHERE name = ?", (name,)
                ).fetchone()
            if row is None:
                names = self.run_names()
                raise InvalidValue("panda", f"no run {name!r} in {self.path}; runs: {names}")
        return RunRow.from_row(row)

    def run_names(self) -> list[str]:
        with self.read() as db:
            if not self._has_tables(db):
                return []
            return [r[0] for r in db.execute("SELECT name FROM panda_runs ORDER BY run_id")]

    def version(self, run_id: int) -> int:
        with self.read() as db:
            row = db.execute("SELECT version FROM panda_runs WHERE run_id = ?", (run_id,))
            return int(row.fetchone()[0])

    def last_epoch(self, run_id: int, branch: int) -> int | None:
        """The last epoch stored on ``branch`` (None before its first)."""
        with self.read() as db:
            (epoch,) = db.execute(
                "SELECT max(epoch) FROM panda_epochs WHERE run_id = ? AND branch = ?",
                (run_id, branch),
            ).fetchone()
        return None if epoch is None else int(epoch)

    def first_snapshot(self, run_id: int) -> int:
        """The epoch of the root's first snapshot, where the run started (0 from scratch)."""
        with self.read() as db:
            (epoch,) = db.execute(
                "SELECT min(epoch) FROM panda_snapshots WHERE run_id = ? AND branch = 0",
                (run_id,),
            ).fetchone()
        return int(epoch)

    # -- branches and commands ---------------------------------------------------------------
    def branches(self, run_id: int) -> list[Branch]:
        with self.read() as db:
            rows = db.execute(
                "SELECT branch, parent, from_epoch, mode, spec, created FROM panda_branches "
                "WHERE run_id = ? ORDER BY branch",
                (run_id,),
            ).fetchall()
        return [Branch.from_row(r) for r in rows]

    def add_commands(self, run_id: int, rows: list[tuple[int, int, str, Any, Any]]) -> list[int]:
        """Record commands ``(branch, epoch, key, old, new)`` in one transaction; their ids."""
        now, ids = time.time(), []
        with self._write() as db:
            for branch, epoch, key, old, new in rows:
                cursor = db.execute(
                    "INSERT INTO panda_commands (run_id, branch, epoch, key, old, new, time) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (run_id, branch, epoch, key, dumps(old), dumps(new), now),
                )
                ids.append(int(cursor.lastrowid or 0))
            _bump(db, run_id)
        return ids

    def add_branch(
        self, run_id: int, *, parent: int, from_epoch: int, mode: str, current: int
    ) -> int:
        """A new branch from ``parent``'s snapshot at ``from_epoch`` and the rollback command
        that asks the trainer to switch to it (from ``current``); the new branch's id."""
        now = time.time()
        with self._write() as db:
            row = db.execute(
                "SELECT spec FROM panda_snapshots WHERE run_id = ? AND branch = ? AND epoch = ?",
                (run_id, parent, from_epoch),
            ).fetchone()
            if row is None:
                raise InvalidValue("rollback", f"branch {parent} has no snapshot at {from_epoch}")
            (last,) = db.execute(
                "SELECT max(branch) FROM panda_branches WHERE run_id = ?", (run_id,)
            ).fetchone()
            new = int(last) + 1
            db.execute(
                "INSERT INTO panda_branches VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, new, parent, from_epoch, mode, row[0], now),
            )
            db.execute(
                "INSERT INTO panda_commands (run_id, branch, epoch, key, old, new, time) "
                "VALUES (?, ?, ?, 'rollback', ?, ?, ?)",
                (run_id, parent, from_epoch, dumps(current), dumps(new), now),
            )
            _bump(db, run_id)
        return new

    def commands(self, run_id: int, *, pending: bool = False) -> list[Command]:
        """Every command in the order it was given (only unapplied ones with ``pending``)."""
        where = "run_id = ?" + (" AND applied = 0" if pending else "")
        with self.read() as db:
            rows = db.execute(
                "SELECT command_id, branch, epoch, key, old, new, time, applied "
                f"FROM panda_commands WHERE {where} ORDER BY command_id",
                (run_id,),
            ).fetchall()
        return [Command.from_row(r) for r in rows]

    def boundary(
        self,
        run_id: int,
        applied: list[tuple[int, int, Any]],
        *,
        status: str,
        branch: int,
        spec: dict[str, Any],
    ) -> None:
        """What the trainer did at an epoch boundary, in one transaction: commands ``(id,
        epoch, old)`` applied at boundary ``epoch`` (``old``: the value they replaced there),
        the run's status, the branch it trains, and that branch's spec."""
        with self._write() as db:
            for command_id, epoch, old in applied:
                db.execute(
                    "UPDATE panda_commands SET applied = 1, epoch = ?, old = ? "
                    "WHERE command_id = ? AND run_id = ?",
                    (epoch, dumps(old), command_id, run_id),
                )
            db.execute(
                "UPDATE panda_runs SET status = ?, branch = ? WHERE run_id = ?",
                (status, branch, run_id),
            )
            db.execute(
                "UPDATE panda_branches SET spec = ? WHERE run_id = ? AND branch = ?",
                (dumps(spec), run_id, branch),
            )
            _bump(db, run_id)

    # -- epochs and snapshots ----------------------------------------------------------------
    def add_epoch(self, run_id: int, branch: int, point: StoredEpoch, state: MemberState) -> None:
        """An epoch's record and the full state after it, with the snapshots beyond the run's
        budget dropped (see the module docstring), in one transaction."""
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO panda_epochs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, branch, *point.row()),
            )
            self._put_snapshot(db, run_id, branch, state, point.time)
            drop_beyond_budget(db, run_id)
            _bump(db, run_id)

    def _put_snapshot(
        self, db: sqlite3.Connection, run_id: int, branch: int, state: MemberState, now: float
    ) -> None:
        data = state.to_bytes()
        db.execute(
            "INSERT OR REPLACE INTO panda_snapshots VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, branch, state.epoch, dumps(state.spec.to_dict()), len(data), data, now),
        )

    def curves(self, run_id: int) -> dict[int, list[StoredEpoch]]:
        with self.read() as db:
            rows = db.execute(
                "SELECT branch, epoch, train_loss, train_accuracy, val_loss, val_accuracy, time "
                "FROM panda_epochs WHERE run_id = ? ORDER BY branch, epoch",
                (run_id,),
            ).fetchall()
        out: dict[int, list[StoredEpoch]] = {}
        for branch, *rest in rows:
            out.setdefault(branch, []).append(StoredEpoch.from_row(rest))
        return out

    def snapshot_epochs(self, run_id: int) -> dict[int, list[int]]:
        with self.read() as db:
            rows = db.execute(
                "SELECT branch, epoch FROM panda_snapshots WHERE run_id = ? ORDER BY branch, epoch",
                (run_id,),
            ).fetchall()
        out: dict[int, list[int]] = {}
        for branch, epoch in rows:
            out.setdefault(branch, []).append(epoch)
        return out

    def snapshot(self, run_id: int, branch: int, epoch: int) -> MemberState:
        with self.read() as db:
            row = db.execute(
                "SELECT state FROM panda_snapshots WHERE run_id = ? AND branch = ? AND epoch = ?",
                (run_id, branch, epoch),
            ).fetchone()
        if row is None:
            raise InvalidValue("rollback", f"branch {branch} has no snapshot at epoch {epoch}")
        return MemberState.from_bytes(row[0])

    def dropped(self, run_id: int) -> list[dict[str, Any]]:
        """Snapshots retention dropped: ``{"branch", "epoch", "bytes", "time"}``, oldest first."""
        with self.read() as db:
            rows = db.execute(
                "SELECT branch, epoch, size, time FROM panda_dropped WHERE run_id = ? "
                "ORDER BY rowid",
                (run_id,),
            ).fetchall()
        return [{"branch": b, "epoch": e, "bytes": s, "time": t} for b, e, s, t in rows]


def _bump(db: sqlite3.Connection, run_id: int) -> None:
    db.execute("UPDATE panda_runs SET version = version + 1 WHERE run_id = ?", (run_id,))
