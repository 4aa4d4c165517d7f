"""SQLiteStorage: the default backend, one file, safe for several processes and for SIGKILL.

Why it is safe:
- WAL journal: readers never block the writer, and a committed transaction survives the writer
  being killed at any moment (``synchronous=NORMAL`` loses nothing on a process crash; only an
  operating-system crash can roll back the last commits, never corrupt the file).
- Every write is one ``BEGIN IMMEDIATE`` transaction, so two processes serialise their writes
  (waiting up to ``timeout`` seconds for the lock) instead of failing or interleaving.
- Trial numbers are unique per study (a UNIQUE constraint), and state changes are conditional
  updates (``WHERE state = 'running' AND owner = ?``): a lost race changes nothing.
- One connection per thread and per process: a forked child never reuses its parent's.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from caviar.records import METRICS, EpochRecord, FrozenTrial, NewTrial, TrialState
from caviar.storage.base import (
    DuplicateStudyError,
    DuplicateTrialError,
    StaleTrialError,
    Storage,
    StorageError,
    StudyRecord,
    UnknownStudyError,
    checked_value,
)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS studies (
    study_id  INTEGER PRIMARY KEY,
    name      TEXT NOT NULL UNIQUE,
    direction TEXT NOT NULL,
    space     TEXT NOT NULL,
    sampler   TEXT NOT NULL,
    seed      INTEGER NOT NULL,
    attrs     TEXT NOT NULL,
    created   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    trial_id  INTEGER PRIMARY KEY,
    study_id  INTEGER NOT NULL REFERENCES studies(study_id),
    number    INTEGER NOT NULL,
    state     TEXT NOT NULL,
    params    TEXT NOT NULL,
    unit      TEXT NOT NULL,
    seed      INTEGER NOT NULL,
    value     REAL,
    attrs     TEXT NOT NULL,
    owner     TEXT,
    heartbeat REAL,
    created   REAL NOT NULL,
    started   REAL,
    finished  REAL,
    attempt   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (study_id, number)
);
CREATE INDEX IF NOT EXISTS trials_by_state ON trials (study_id, state, number);
CREATE TABLE IF NOT EXISTS epochs (
    trial_id       INTEGER NOT NULL REFERENCES trials(trial_id),
    epoch          INTEGER NOT NULL,
    train_loss     REAL,
    train_accuracy REAL,
    val_loss       REAL,
    val_accuracy   REAL,
    PRIMARY KEY (trial_id, epoch)
) WITHOUT ROWID;
"""

_TRIAL_COLUMNS = (
    "trial_id, number, state, params, unit, seed, value, attrs, owner, heartbeat, created, "
    "started, finished, attempt"
)


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


def _float(x: float | None) -> float:
    return math.nan if x is None else float(x)


class SQLiteStorage(Storage):
    """Studies in an SQLite file (created with its folder if missing)."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._write() as db:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                row = db.execute("SELECT version FROM schema_version").fetchone()
                if row is None:
                    db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
                elif row[0] > SCHEMA_VERSION:
                    raise StorageError(
                        f"{self.path} has schema version {row[0]}; this caviar reads up to "
                        f"{SCHEMA_VERSION}: upgrade caviar"
                    )
        except (sqlite3.Error, OSError) as e:
            raise StorageError(f"cannot use {str(self.path)!r} as a study file: {e}") from None

    def __repr__(self) -> str:
        return f"SQLiteStorage({str(self.path)!r})"

    # -- connections and transactions --------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        if getattr(self._local, "pid", None) != os.getpid():
            fresh = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            self._use_wal(fresh)
            fresh.execute("PRAGMA synchronous=NORMAL")
            fresh.execute("PRAGMA foreign_keys=ON")
            self._local.db, self._local.pid = fresh, os.getpid()
            with self._connections_lock:
                self._connections.append(fresh)
        db: sqlite3.Connection = self._local.db
        return db

    def _use_wal(self, db: sqlite3.Connection) -> None:
        """Switch the file to WAL. The switch does not wait on the busy timeout, so processes
        opening a new file together retry it until ``timeout``."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                (mode,) = db.execute("PRAGMA journal_mode").fetchone()
                if str(mode).lower() != "wal":
                    db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e):
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: the lock is taken up front, so no deadlock can arise."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: several SELECTs see one snapshot."""
        db = self._db()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    def close(self) -> None:
        with self._connections_lock:
            for db in self._connections:
                with contextlib.suppress(sqlite3.ProgrammingError):  # another thread's
                    db.close()
            self._connections.clear()
        self._local = threading.local()

    def _study_id(self, db: sqlite3.Connection, name: str) -> int:
        row = db.execute("SELECT study_id FROM studies WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise UnknownStudyError(f"no study named {name!r} in {self.path}")
        return int(row[0])

    # -- studies -----------------------------------------------------------------------------
    def create_study(self, record: StudyRecord) -> None:
        with self._write() as db:
            try:
                db.execute(
                    "INSERT INTO studies (name, direction, space, sampler, seed, attrs, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.name,
                        record.direction,
                        _dumps(record.space),
                        _dumps(record.sampler),
                        int(record.seed),
                        _dumps(dict(record.attrs)),
                        time.time(),
                    ),
                )
            except sqlite3.IntegrityError:
                raise DuplicateStudyError(
                    f"study {record.name!r} exists already in {self.path}"
                ) from None

    def load_study(self, name: str) -> StudyRecord:
        db = self._db()
        row = db.execute(
            "SELECT name, direction, space, sampler, seed, attrs, created FROM studies "
            "WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            raise UnknownStudyError(f"no study named {name!r} in {self.path}")
        return StudyRecord(
            name=row[0],
            direction=row[1],
            space=json.loads(row[2]),
            sampler=json.loads(row[3]),
            seed=row[4],
            attrs=json.loads(row[5]),
            created=row[6],
        )

    def study_names(self) -> list[str]:
        rows = self._db().execute("SELECT name FROM studies ORDER BY name").fetchall()
        return [r[0] for r in rows]

    def set_study_attrs(self, name: str, attrs: Mapping[str, Any]) -> None:
        with self._write() as db:
            sid = self._study_id(db, name)
            (current,) = db.execute(
                "SELECT attrs FROM studies WHERE study_id = ?", (sid,)
            ).fetchone()
            merged = {**json.loads(current), **dict(attrs)}
            db.execute("UPDATE studies SET attrs = ? WHERE study_id = ?", (_dumps(merged), sid))

    # -- trials ------------------------------------------------------------------------------
    def create_trials(
        self, study: str, trials: Sequence[NewTrial], *, owner: str | None
    ) -> list[FrozenTrial]:
        now = time.time()
        state = TrialState.QUEUED if owner is None else TrialState.RUNNING
        started = None if owner is None else now
        with self._write() as db:
            sid = self._study_id(db, study)
            try:
                db.executemany(
                    "INSERT INTO trials (study_id, number, state, params, unit, seed, attrs, "
                    "owner, heartbeat, created, started) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    [
                        (
                            sid,
                            t.number,
                            state.value,
                            _dumps(dict(t.params)),
                            _dumps([float(u) for u in t.unit]),
                            int(t.seed),
                            _dumps(dict(t.attrs)),
                            owner,
                            started,
                            now,
                            started,
                        )
                        for t in trials
                    ],
                )
            except sqlite3.IntegrityError:
                raise DuplicateTrialError(
                    f"trial numbers {[t.number for t in trials]} are taken in {study!r}"
                ) from None
            numbers = [t.number for t in trials]
            return self._select(
                db, sid, "number IN ({})".format(",".join("?" * len(numbers))), numbers
            )

    def claim_queued(self, study: str, owner: str, limit: int) -> list[FrozenTrial]:
        now = time.time()
        with self._write() as db:
            sid = self._study_id(db, study)
            rows = db.execute(
                "SELECT number FROM trials WHERE study_id = ? AND state = 'queued' "
                "ORDER BY number LIMIT ?",
                (sid, limit),
            ).fetchall()
            numbers = [r[0] for r in rows]
            if not numbers:
                return []
            marks = ",".join("?" * len(numbers))
            db.execute(
                f"UPDATE trials SET state = 'running', owner = ?, heartbeat = ?, started = ? "
                f"WHERE study_id = ? AND number IN ({marks})",
                (owner, now, now, sid, *numbers),
            )
            return self._select(db, sid, f"number IN ({marks})", numbers)

    def _check_running(
        self, db: sqlite3.Connection, sid: int, study: str, numbers: Iterable[int], owner: str
    ) -> dict[int, int]:
        """``number -> trial_id`` for trials running under ``owner``; StaleTrialError otherwise."""
        wanted = sorted(set(numbers))
        marks = ",".join("?" * len(wanted))
        rows = db.execute(
            f"SELECT number, trial_id FROM trials WHERE study_id = ? AND state = 'running' "
            f"AND owner = ? AND number IN ({marks})",
            (sid, owner, *wanted),
        ).fetchall()
        found = dict(rows)
        stale = [n for n in wanted if n not in found]
        if stale:
            raise StaleTrialError(f"trials {stale} of {study!r} are not running under {owner}")
        return found

    def requeue(self, study: str, number: int, owner: str) -> None:
        with self._write() as db:
            sid = self._study_id(db, study)
            trial_id = self._check_running(db, sid, study, [number], owner)[number]
            db.execute("DELETE FROM epochs WHERE trial_id = ?", (trial_id,))
            db.execute(
                "UPDATE trials SET state = 'queued', owner = NULL, heartbeat = NULL, "
                "started = NULL, attempt = attempt + 1 WHERE trial_id = ?",
                (trial_id,),
            )

    def heartbeat(self, study: str, numbers: Iterable[int], owner: str) -> None:
        wanted = list(numbers)
        if not wanted:
            return
        with self._write() as db:
            sid = self._study_id(db, study)
            db.executemany(
                "UPDATE trials SET heartbeat = ? WHERE study_id = ? AND number = ? "
                "AND state = 'running' AND owner = ?",
                [(time.time(), sid, n, owner) for n in wanted],
            )

    def add_epochs(
        self, study: str, rows: Sequence[tuple[int, EpochRecord]], *, owner: str
    ) -> None:
        if not rows:
            return
        with self._write() as db:
            sid = self._study_id(db, study)
            ids = self._check_running(db, sid, study, (n for n, _ in rows), owner)
            db.executemany(
                "INSERT OR REPLACE INTO epochs VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (ids[n], r.epoch, r.train_loss, r.train_accuracy, r.val_loss, r.val_accuracy)
                    for n, r in rows
                ],
            )

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
        value = checked_value(value)
        with self._write() as db:
            sid = self._study_id(db, study)
            trial_id = self._check_running(db, sid, study, [number], owner)[number]
            (current,) = db.execute(
                "SELECT attrs FROM trials WHERE trial_id = ?", (trial_id,)
            ).fetchone()
            merged = {**json.loads(current), **dict(attrs or {})}
            db.execute(
                "UPDATE trials SET state = ?, value = ?, attrs = ?, finished = ? "
                "WHERE trial_id = ?",
                (state.value, value, _dumps(merged), time.time(), trial_id),
            )
            return self._select(db, sid, "trial_id = ?", [trial_id])[0]

    def set_trial_attrs(self, study: str, number: int, attrs: Mapping[str, Any]) -> None:
        with self._write() as db:
            sid = self._study_id(db, study)
            row = db.execute(
                "SELECT trial_id, attrs FROM trials WHERE study_id = ? AND number = ?",
                (sid, number),
            ).fetchone()
            if row is None:
                raise KeyError(f"no trial {number} in study {study!r}")
            merged = {**json.loads(row[1]), **dict(attrs)}
            db.execute("UPDATE trials SET attrs = ? WHERE trial_id = ?", (_dumps(merged), row[0]))

    def get_trials(
        self,
        study: str,
        *,
        states: Iterable[TrialState] | None = None,
        numbers: Iterable[int] | None = None,
        curves: bool = True,
    ) -> list[FrozenTrial]:
        where: list[str] = ["1"]
        args: list[Any] = []
        if states is not None:
            values = [TrialState(s).value for s in states]
            where.append(f"state IN ({','.join('?' * len(values))})")
            args += values
        if numbers is not None:
            chosen = [int(n) for n in numbers]
            where.append(f"number IN ({','.join('?' * len(chosen))})")
            args += chosen
        with self._read() as db:
            sid = self._study_id(db, study)
            return self._select(db, sid, " AND ".join(where), args, curves=curves)

    def _select(
        self,
        db: sqlite3.Connection,
        sid: int,
        where: str,
        args: Sequence[Any],
        *,
        curves: bool = True,
    ) -> list[FrozenTrial]:
        rows = db.execute(
            f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE study_id = ? AND ({where}) ORDER BY number",
            (sid, *args),
        ).fetchall()
        points: dict[int, list[EpochRecord]] = {}
        if curves and rows:
            ids = [r[0] for r in rows]
            for start in range(0, len(ids), 900):  # stay under SQLite's bound-variable limit
                chunk = ids[start : start + 900]
                for trial_id, epoch, *metrics in db.execute(
                    f"SELECT trial_id, epoch, {', '.join(METRICS)} FROM epochs "
                    f"WHERE trial_id IN ({','.join('?' * len(chunk))}) ORDER BY trial_id, epoch",
                    chunk,
                ):
                    points.setdefault(trial_id, []).append(
                        EpochRecord(epoch, *(_float(m) for m in metrics))
                    )
        return [
            FrozenTrial(
                number=r[1],
                state=TrialState(r[2]),
                params=json.loads(r[3]),
                unit=tuple(json.loads(r[4])),
                seed=r[5],
                value=r[6],
                attrs=json.loads(r[7]),
                curve=tuple(points.get(r[0], ())),
                owner=r[8],
                heartbeat=r[9],
                created=r[10],
                started=r[11],
                finished=r[12],
                attempt=r[13],
            )
            for r in rows
        ]
