"""SQLiteTreeStore: the panda tree in the study file, beside caviar's studies.

The tables (:mod:`.tree_sqlite_schema`) live in the same SQLite file as the studies (default
``caviar.db``), so a restarted process, the page and ``caviar show`` see the whole history. Two
processes share it as the study store does (:mod:`.sqlite_connections`): WAL journal, every
write one ``BEGIN IMMEDIATE`` transaction (the trainer writes epochs and snapshots, ``caviar
panda set`` writes commands), and every write bumps the run's ``version`` in that transaction.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from caviar.storage.sqlite import SQLiteStorage
from caviar.storage.sqlite_connections import Connections
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
from caviar.storage.tree_sqlite_schema import PANDA_SCHEMA

_RUN_COLUMNS = "run_id, name, config, spec, source, status, branch, budget, version, created"


def _prepare(db: sqlite3.Connection) -> None:
    """A new writable connection (the study store switched the file to WAL already)."""
    db.execute("PRAGMA synchronous=NORMAL")


class SQLiteTreeStore(TreeStore):
    """The panda tables of one study file (created with caviar's own tables if missing).

    One connection per thread and per process. With ``read_only``, nothing is written, and a
    file without panda tables simply has no runs."""

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float = 60.0, read_only: bool = False
    ) -> None:
        self.path, self.timeout, self.read_only = Path(path), timeout, read_only
        self.where = str(self.path)
        self._connections = Connections(
            self.path, timeout=timeout, read_only=read_only, prepare=_prepare
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
    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._connections.write(f"the panda runs of {self.path}")

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._connections.read():
            yield

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
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
        first: Snapshot,
    ) -> RunRow:
        now = time.time()
        with self._write() as db:
            if db.execute("SELECT 1 FROM panda_runs WHERE name = ?", (name,)).fetchone():
                raise run_exists(name, self.where)
            cursor = db.execute(
                f"INSERT INTO panda_runs ({_RUN_COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, 0, ?, 1, ?)",
                (
                    name,
                    json_text(config),
                    json_text(spec),
                    json_text(source),
                    "running",
                    budget,
                    now,
                ),
            )
            run_id = int(cursor.lastrowid or 0)
            db.execute(
                "INSERT INTO panda_branches VALUES (?, 0, NULL, NULL, NULL, ?, ?)",
                (run_id, json_text(spec), now),
            )
            _put_snapshot(db, run_id, 0, first, now)
        return self.run(name)

    def run(self, name: str) -> RunRow:
        with self._read() as db:
            row = None
            if self._has_tables(db):
                row = db.execute(
                    f"SELECT {_RUN_COLUMNS} FROM panda_runs WHERE name = ?", (name,)
                ).fetchone()
            if row is None:
                raise no_run(name, self.where, self.run_names())
        return RunRow.from_row(row)

    def run_names(self) -> list[str]:
        with self._read() as db:
            if not self._has_tables(db):
                return []
            return [r[0] for r in db.execute("SELECT name FROM panda_runs ORDER BY run_id")]

    def version(self, run_id: int) -> int:
        with self._read() as db:
            row = db.execute("SELECT version FROM panda_runs WHERE run_id = ?", (run_id,))
            return int(row.fetchone()[0])

    # -- branches and commands ---------------------------------------------------------------
    def branches(self, run_id: int) -> list[Branch]:
        with self._read() as db:
            rows = db.execute(
                "SELECT branch, parent, from_epoch, mode, spec, created FROM panda_branches "
                "WHERE run_id = ? ORDER BY branch",
                (run_id,),
            ).fetchall()
        return [Branch.from_row(r) for r in rows]

    def add_branch(
        self, run_id: int, *, parent: int, from_epoch: int, mode: str, current: int
    ) -> int:
        now = time.time()
        with self._write() as db:
            row = db.execute(
                "SELECT spec FROM panda_snapshots WHERE run_id = ? AND branch = ? AND epoch = ?",
                (run_id, parent, from_epoch),
            ).fetchone()
            if row is None:
                raise no_snapshot(parent, from_epoch)
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
                (run_id, parent, from_epoch, json_text(current), json_text(new), now),
            )
            _bump(db, run_id)
        return new

    def add_commands(self, run_id: int, rows: list[NewCommand]) -> list[int]:
        now, ids = time.time(), []
        with self._write() as db:
            for branch, epoch, key, old, new in rows:
                cursor = db.execute(
                    "INSERT INTO panda_commands (run_id, branch, epoch, key, old, new, time) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (run_id, branch, epoch, key, json_text(old), json_text(new), now),
                )
                ids.append(int(cursor.lastrowid or 0))
            _bump(db, run_id)
        return ids

    def commands(self, run_id: int, *, pending: bool = False) -> list[Command]:
        where = "run_id = ?" + (" AND applied = 0" if pending else "")
        with self._read() as db:
            rows = db.execute(
                "SELECT command_id, branch, epoch, key, old, new, time, applied "
                f"FROM panda_commands WHERE {where} ORDER BY command_id",
                (run_id,),
            ).fetchall()
        return [Command.from_row(r) for r in rows]

    def boundary(
        self,
        run_id: int,
        applied: list[AppliedCommand],
        *,
        status: str,
        branch: int,
        spec: dict[str, Any],
    ) -> None:
        with self._write() as db:
            for command_id, epoch, old in applied:
                db.execute(
                    "UPDATE panda_commands SET applied = 1, epoch = ?, old = ? "
                    "WHERE command_id = ? AND run_id = ?",
                    (epoch, json_text(old), command_id, run_id),
                )
            db.execute(
                "UPDATE panda_runs SET status = ?, branch = ? WHERE run_id = ?",
                (status, branch, run_id),
            )
            db.execute(
                "UPDATE panda_branches SET spec = ? WHERE run_id = ? AND branch = ?",
                (json_text(spec), run_id, branch),
            )
            _bump(db, run_id)

    # -- epochs and snapshots ----------------------------------------------------------------
    def add_epoch(self, run_id: int, branch: int, point: StoredEpoch, snapshot: Snapshot) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO panda_epochs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, branch, *point.row()),
            )
            _put_snapshot(db, run_id, branch, snapshot, point.time)
            _drop_beyond_budget(db, run_id)
            _bump(db, run_id)

    def last_epoch(self, run_id: int, branch: int) -> int | None:
        with self._read() as db:
            (epoch,) = db.execute(
                "SELECT max(epoch) FROM panda_epochs WHERE run_id = ? AND branch = ?",
                (run_id, branch),
            ).fetchone()
        return None if epoch is None else int(epoch)

    def curves(self, run_id: int) -> dict[int, list[StoredEpoch]]:
        with self._read() as db:
            rows = db.execute(
                "SELECT branch, epoch, train_loss, train_accuracy, val_loss, val_accuracy, time "
                "FROM panda_epochs WHERE run_id = ? ORDER BY branch, epoch",
                (run_id,),
            ).fetchall()
        out: dict[int, list[StoredEpoch]] = {}
        for branch, *rest in rows:
            out.setdefault(branch, []).append(StoredEpoch.from_row(rest))
        return out

    def first_snapshot(self, run_id: int) -> int:
        with self._read() as db:
            (epoch,) = db.execute(
                "SELECT min(epoch) FROM panda_snapshots WHERE run_id = ? AND branch = 0",
                (run_id,),
            ).fetchone()
        return int(epoch)

    def snapshot_epochs(self, run_id: int) -> dict[int, list[int]]:
        with self._read() as db:
            rows = db.execute(
                "SELECT branch, epoch FROM panda_snapshots WHERE run_id = ? ORDER BY branch, epoch",
                (run_id,),
            ).fetchall()
        out: dict[int, list[int]] = {}
        for branch, epoch in rows:
            out.setdefault(branch, []).append(epoch)
        return out

    def snapshot(self, run_id: int, branch: int, epoch: int) -> bytes:
        with self._read() as db:
            row = db.execute(
                "SELECT state FROM panda_snapshots WHERE run_id = ? AND branch = ? AND epoch = ?",
                (run_id, branch, epoch),
            ).fetchone()
        if row is None:
            raise no_snapshot(branch, epoch)
        return bytes(row[0])

    def dropped(self, run_id: int) -> list[dict[str, Any]]:
        with self._read() as db:
            rows = db.execute(
                "SELECT branch, epoch, size, time FROM panda_dropped WHERE run_id = ? "
                "ORDER BY rowid",
                (run_id,),
            ).fetchall()
        return [{"branch": b, "epoch": e, "bytes": s, "time": t} for b, e, s, t in rows]


def _put_snapshot(
    db: sqlite3.Connection, run_id: int, branch: int, snapshot: Snapshot, now: float
) -> None:
    db.execute(
        "INSERT OR REPLACE INTO panda_snapshots VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            run_id,
            branch,
            snapshot.epoch,
            json_text(snapshot.spec),
            snapshot.size,
            snapshot.data,
            now,
        ),
    )


def _drop_beyond_budget(db: sqlite3.Connection, run_id: int) -> None:
    """Drop the run's snapshots beyond its budget (:mod:`.tree_retention`), inside the caller's
    write transaction, and record each one dropped."""
    (budget,) = db.execute("SELECT budget FROM panda_runs WHERE run_id = ?", (run_id,)).fetchone()
    stored = db.execute(
        "SELECT branch, epoch, size, time FROM panda_snapshots WHERE run_id = ?", (run_id,)
    ).fetchall()
    grown_from = db.execute(
        "SELECT parent, from_epoch FROM panda_branches WHERE run_id = ? AND parent IS NOT NULL",
        (run_id,),
    ).fetchall()
    now = time.time()
    for s in beyond_budget([StoredSnapshot(*row) for row in stored], budget, grown_from):
        db.execute(
            "DELETE FROM panda_snapshots WHERE run_id = ? AND branch = ? AND epoch = ?",
            (run_id, s.branch, s.epoch),
        )
        db.execute(
            "INSERT INTO panda_dropped VALUES (?, ?, ?, ?, ?)",
            (run_id, s.branch, s.epoch, s.size, now),
        )


def _bump(db: sqlite3.Connection, run_id: int) -> None:
    db.execute("UPDATE panda_runs SET version = version + 1 WHERE run_id = ?", (run_id,))
