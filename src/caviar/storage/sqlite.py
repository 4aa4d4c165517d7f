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
- ``read_only=True`` writes nothing at all, not even the switch to WAL (:mod:`.sqlite_file`).
- A full disk is a :class:`DiskFullError` (:mod:`.sqlite_errors`) and a row changed outside caviar
  a :class:`CorruptRowError` naming the study, trial and column (:mod:`.sqlite_rows`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from caviar.core.records import METRICS, EpochRecord, FrozenTrial, Trial, TrialState
from caviar.storage.base import (
    DuplicateStudyError,
    DuplicateTrialError,
    StaleTrialError,
    Storage,
    StorageError,
    StudyRecord,
    UnknownStudyError,
    checked_value,
    complete_without_value,
    damaged_study,
    numbering_problem,
)
from caviar.storage.sqlite_connections import Connections
from caviar.storage.sqlite_errors import translated
from caviar.storage.sqlite_file import (
    SCHEMA,
    SCHEMA_VERSION,
    NotAStudyFile,
    check_header,
    check_version,
    is_study_file,
    probe_read_only,
)
from caviar.storage.sqlite_rows import (
    STUDY_COLUMNS,
    TRIAL_COLUMNS,
    Where,
    epoch_record,
    frozen_trial,
    study_record,
)


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


class SQLiteStorage(Storage):
    """Studies in an SQLite file (created with its folder if missing).

    With ``read_only``, the file must be a caviar study file already, and nothing is ever
    written to it (``caviar show``, ``studies`` and ``report`` open it so)."""

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float = 60.0, read_only: bool = False
    ) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.read_only = read_only
        self._connections = Connections(
            self.path, timeout=timeout, read_only=read_only, prepare=self._prepare
        )
        if read_only:
            self._check_read_only()
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.is_file():
                check_header(self.path, empty_ok=True)
            with translated(self.path):
                self._create_schema()
                self._db()  # the switch to WAL
        except NotAStudyFile as e:
            raise StorageError(f"cannot use {str(self.path)!r} as a study file: {e}") from None
        except (sqlite3.Error, OSError) as e:
            raise StorageError(f"cannot use {str(self.path)!r} as a study file: {e}") from None

    def _create_schema(self) -> None:
        """The schema in a new file; a foreign file is refused with nothing written to it (so
        this runs before the switch to WAL, which would change its header)."""
        db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                if not is_study_file(db, self.path):
                    for statement in SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                if check_version(db, self.path) is None:
                    db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
                db.execute("COMMIT")
            finally:
                if db.in_transaction:
                    db.execute("ROLLBACK")
        finally:
            db.close()

    def _check_read_only(self) -> None:
        if not self.path.is_file():
            raise StorageError(f"no study file at {str(self.path)!r}")
        try:
            probe_read_only(self.path, self.timeout)
            with self._read() as db:
                if not is_study_file(db, self.path):
                    raise NotAStudyFile(self.path, "it has no tables")
                if check_version(db, self.path) is None:
                    raise NotAStudyFile(self.path, "it has no schema version")
        except sqlite3.DatabaseError as e:
            self.close()
            raise NotAStudyFile(self.path, f"SQLite cannot read it: {e}") from None
        except StorageError:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"SQLiteStorage({str(self.path)!r})"

    # -- connections and transactions --------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        return self._connections.db()

    def _prepare(self, db: sqlite3.Connection) -> None:
        """A new writable connection: WAL, and the pragmas every connection needs."""
        self._use_wal(db)
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")

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

    def _write(self, study: str) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """One write transaction (see :class:`.Connections`)."""
        return self._connections.write(f"study {study!r}")

    def _read(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A read transaction: several SELECTs see one snapshot."""
        return self._connections.read()

    def close(self) -> None:
        self._connections.close()

    def _study_id(self, db: sqlite3.Connection, name: str) -> int:
        row = db.execute("SELECT study_id FROM studies WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise UnknownStudyError(f"no study named {name!r} in {self.path}")
        return int(row[0])

    # -- studies -----------------------------------------------------------------------------
    def create_study(self, record: StudyRecord) -> None:
        with self._write(record.name) as db:
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
        with self._read() as db:
            row = db.execute(
                f"SELECT {STUDY_COLUMNS} FROM studies WHERE name = ?", (name,)
            ).fetchone()
        if row is None:
            raise UnknownStudyError(f"no study named {name!r} in {self.path}")
        return study_record(row)

    def study_names(self) -> list[str]:
        with self._read() as db:
            rows = db.execute("SELECT name FROM studies ORDER BY name").fetchall()
        return [r[0] for r in rows]

    def set_study_attrs(self, name: str, attrs: Mapping[str, Any]) -> None:
        with self._write(name) as db:
            sid = self._study_id(db, name)
            (current,) = db.execute(
                "SELECT attrs FROM studies WHERE study_id = ?", (sid,)
            ).fetchone()
            merged = {**Where(name).json("attrs", current), **dict(attrs)}
            db.execute("UPDATE studies SET attrs = ? WHERE study_id = ?", (_dumps(merged), sid))

    # -- trials ------------------------------------------------------------------------------
    def create_trials(
        self, study: str, trials: Sequence[Trial], *, owner: str | None
    ) -> list[FrozenTrial]:
        now = time.time()
        state = TrialState.QUEUED if owner is None else TrialState.RUNNING
        started = None if owner is None else now
        with self._write(study) as db:
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
                db, study, sid, "number IN ({})".format(",".join("?" * len(numbers))), numbers
            )

    def claim_queued(self, study: str, owner: str, limit: int) -> list[FrozenTrial]:
        now = time.time()
        with self._write(study) as db:
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
            return self._select(db, study, sid, f"number IN ({marks})", numbers)

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
            raise StaleTrialError(
                f"trials {stale} of {study!r} are not running under {owner}", stale
            )
        return found

    def requeue(self, study: str, number: int, owner: str) -> None:
        with self._write(study) as db:
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
        with self._write(study) as db:
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
        with self._write(study) as db:
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
        with self._write(study) as db:
            sid = self._study_id(db, study)
            trial_id = self._check_running(db, sid, study, [number], owner)[number]
            (current,) = db.execute(
                "SELECT attrs FROM trials WHERE trial_id = ?", (trial_id,)
            ).fetchone()
            merged = {**Where(study, number).json("attrs", current), **dict(attrs or {})}
            db.execute(
                "UPDATE trials SET state = ?, value = ?, attrs = ?, finished = ? "
                "WHERE trial_id = ?",
                (state.value, value, _dumps(merged), time.time(), trial_id),
            )
        with self._read() as db:  # after the commit: a bad row elsewhere cannot undo the result
            return self._select(db, study, sid, "trial_id = ?", [trial_id])[0]

    def set_trial_attrs(self, study: str, number: int, attrs: Mapping[str, Any]) -> None:
        with self._write(study) as db:
            sid = self._study_id(db, study)
            row = db.execute(
                "SELECT trial_id, attrs FROM trials WHERE study_id = ? AND number = ?",
                (sid, number),
            ).fetchone()
            if row is None:
                raise KeyError(f"no trial {number} in study {study!r}")
            merged = {**Where(study, number).json("attrs", row[1]), **dict(attrs)}
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
            return self._select(db, study, sid, " AND ".join(where), args, curves=curves)

    def check_study(self, name: str) -> None:
        """Contract point 8 in two aggregate queries on the trials' index; the numbers are read
        one by one only in a damaged study, to name the first missing one."""
        with self._read() as db:
            sid = self._study_id(db, name)
            count, first, last = db.execute(
                "SELECT count(*), min(number), max(number) FROM trials WHERE study_id = ?", (sid,)
            ).fetchone()
            problem = None
            if count and (first != 0 or last != count - 1):
                numbers = db.execute(
                    "SELECT number FROM trials WHERE study_id = ? ORDER BY number", (sid,)
                ).fetchall()
                problem = numbering_problem([n for (n,) in numbers])
            if problem is None:
                row = db.execute(
                    "SELECT number, value FROM trials WHERE study_id = ? AND state = 'complete' "
                    "AND (value IS NULL OR abs(value) > 1.7976931348623157e308) "  # NULL, or inf
                    "ORDER BY number LIMIT 1",
                    (sid,),
                ).fetchone()
                problem = None if row is None else complete_without_value(*row)
        if problem is not None:
            raise damaged_study(f"{self.path}: ", name, problem)

    def _select(
        self,
        db: sqlite3.Connection,
        study: str,
        sid: int,
        where: str,
        args: Sequence[Any],
        *,
        curves: bool = True,
    ) -> list[FrozenTrial]:
        rows = db.execute(
            f"SELECT {TRIAL_COLUMNS} FROM trials WHERE study_id = ? AND ({where}) ORDER BY number",
            (sid, *args),
        ).fetchall()
        points: dict[int, list[EpochRecord]] = {}
        if curves and rows:
            numbers = {r[0]: r[1] for r in rows}
            ids = list(numbers)
            for start in range(0, len(ids), 900):  # stay under SQLite's bound-variable limit
                chunk = ids[start : start + 900]
                for trial_id, *point in db.execute(
                    f"SELECT trial_id, epoch, {', '.join(METRICS)} FROM epochs "
                    f"WHERE trial_id IN ({','.join('?' * len(chunk))}) ORDER BY trial_id, epoch",
                    chunk,
                ):
                    record = epoch_record(study, numbers[trial_id], point)
                    points.setdefault(trial_id, []).append(record)
        return [frozen_trial(study, r, points.get(r[0], ())) for r in rows]
