"""What makes a file a caviar study file: its schema, how it is checked, and how it is opened for
reading without writing a byte.

Reading writes nothing, and leaves the folder as it found it. ``show``, ``studies`` and
``report`` open the file with ``PRAGMA query_only``: no switch to WAL, no schema, no migration,
so a foreign file is refused unchanged. How the connection is opened depends on what is there:

- a WAL file with no ``-wal`` beside it (a cleanly closed study, the usual case): opened for
  reading and writing, but it writes nothing. Reading a WAL file needs a ``-wal`` and ``-shm``
  file, which SQLite creates; only a connection that may write removes them when it is the
  last to close (a ``mode=ro`` one leaves them behind). Its WAL holds no frame of its own, so
  that close copies nothing into the file, unless a writer (a ``caviar tune`` started
  meanwhile) committed and closed first: then it copies the writer's changes, as the writer's
  own close would have. While another connection is open, the last close is not ours, and
  nothing is removed or copied. SQLite's locks arbitrate all of this.
- a ``-wal`` file already there (a running writer, or a crashed one): ``mode=ro``, which reads
  the changes in it through the ``-shm`` index and leaves both as they were.
- a folder or file the user cannot write to: SQLite could not remove (in a folder, not even
  make) the ``-shm`` file there, so the file is read as ``immutable``, which is exact as long
  as no ``-wal`` file holds changes not yet copied into it (a crashed writer's ``-wal`` with
  changes is read ``mode=ro`` where SQLite can, and refused with what to do where it cannot).
- a file in a rollback journal (not WAL): ``mode=ro``, which needs no other file.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from caviar.storage.base import StorageError

SCHEMA_VERSION = 1

SCHEMA = """
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

TABLES = ("epochs", "schema_version", "studies", "trials")

_MAGIC = b"SQLite format 3\x00"
_READONLY, _CANTOPEN = 8, 14  # SQLite's primary result codes


class NotAStudyFile(StorageError):
    """The file is not a caviar study file; ``why`` says what it is instead."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path} is not a caviar study file ({why})")
        self.why = why


def header(path: Path) -> bytes:
    """The file's first 100 bytes: SQLite's header, if it is an SQLite database."""
    with open(path, "rb") as f:
        return f.read(100)


def check_header(path: Path, *, empty_ok: bool) -> bool:
    """Whether the file is in WAL mode; NotAStudyFile if it cannot be an SQLite database."""
    head = header(path)
    if not head and empty_ok:
        return False
    if not head:
        raise NotAStudyFile(path, "it is empty")
    if not head.startswith(_MAGIC):
        raise NotAStudyFile(path, "it is not an SQLite database")
    return len(head) > 18 and head[18] == 2


def is_study_file(db: sqlite3.Connection, path: Path) -> bool:
    """True for caviar's tables, False for none at all (a new file); NotAStudyFile otherwise."""
    found = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not found:
        return False
    missing = sorted(set(TABLES) - found)
    if len(missing) == len(TABLES):
        raise NotAStudyFile(path, "it has no caviar tables")
    if missing:
        raise NotAStudyFile(path, f"it lacks the caviar tables {missing}")
    return True


def check_version(db: sqlite3.Connection, path: Path) -> int | None:
    """The file's schema version (None if unset); a StorageError if this caviar is too old."""
    row = db.execute("SELECT version FROM schema_version").fetchone()
    if row is not None and row[0] > SCHEMA_VERSION:
        raise StorageError(
            f"{path} has schema version {row[0]}; this caviar reads up to {SCHEMA_VERSION}: "
            f"upgrade caviar"
        )
    return None if row is None else int(row[0])


def _connect(path: Path, query: str, timeout: float) -> sqlite3.Connection:
    uri = f"{path.absolute().as_uri()}?{query}"
    db = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
    db.execute("PRAGMA query_only = ON")
    return db


#: an ``immutable`` read that meets a writer's checkpoint (the file rewritten under it) reads a
#: torn page, "file is not a database"; it is read again after a pause, this many times
TORN_READ_TRIES = 5


def _immutable(path: Path, timeout: float) -> sqlite3.Connection:
    """An ``immutable`` connection whose schema reads whole: ``immutable`` promises SQLite the
    file does not change, which holds unless another process checkpoints into it just then (a
    tune ending while a panda trainer writes); that read is torn, and is tried again."""
    for attempt in range(TORN_READ_TRIES):
        db = _connect(path, "immutable=1", timeout)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.DatabaseError:
            db.close()
            if attempt == TORN_READ_TRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def probe_read_only(path: Path, timeout: float) -> None:
    """Check that ``path`` is a caviar study file before any reader could leave a mark.

    A WAL file opened ``mode=ro`` gets ``-wal`` and ``-shm`` files; with no ``-wal`` file,
    every committed change is in the file itself, so the schema is read ``immutable``."""
    wal = check_header(path, empty_ok=False)
    if wal and not Path(f"{path}-wal").exists():
        db = _immutable(path, timeout)
        try:
            if not is_study_file(db, path):
                raise NotAStudyFile(path, "it has no tables")
        finally:
            db.close()


def connect_read_only(path: Path, timeout: float) -> sqlite3.Connection:
    """A connection that cannot write and leaves no file behind (see the module docstring)."""
    if _wal_without_log(path):  # query_only either way; a writable one's last close tidies up
        return _connect(path, "mode=rw", timeout) if _writable(path) else _immutable(path, timeout)
    db = _connect(path, "mode=ro", timeout)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens -wal and -shm
        return db
    except sqlite3.OperationalError as e:
        db.close()
        code = getattr(e, "sqlite_errorcode", 0) & 0xFF
        if code not in (_READONLY, _CANTOPEN):
            raise
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise StorageError(
            f"cannot read {path}: its latest changes are in {wal.name}, which SQLite reads only "
            f"with a -shm file that it cannot create in the read-only folder {path.parent}; "
            f"make the folder writable, or copy the study file with its -wal file elsewhere"
        )
    return _immutable(path, timeout)


def _wal_without_log(path: Path) -> bool:
    """A WAL file with no ``-wal`` file beside it: every committed change is in the file."""
    try:
        return check_header(path, empty_ok=True) and not Path(f"{path}-wal").exists()
    except (OSError, StorageError):
        return False  # mode=ro then says what is wrong


def _writable(path: Path) -> bool:
    """The file and its folder writable, so that SQLite can make and remove its -wal and
    -shm files there."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)
