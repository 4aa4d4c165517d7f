"""One SQLite file's connections and transactions, shared by the study store and the panda tree.

- One connection per thread and per process: a forked child never reuses its parent's.
- A write is one ``BEGIN IMMEDIATE`` transaction, so processes serialise their writes instead
  of interleaving; if any part fails (a full disk, most often at COMMIT), all of it is rolled
  back. A read is one snapshot; a read inside a read shares it.
- Read-only connections never write (:func:`~caviar.storage.sqlite_file.connect_read_only`),
  and SQLite's errors for a full disk become :class:`~caviar.storage.DiskFullError`
  (:func:`~caviar.storage.sqlite_errors.translated`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from caviar.storage.base import StorageError
from caviar.storage.sqlite_errors import translated
from caviar.storage.sqlite_file import connect_read_only


class Connections:
    """The connections of this process's threads to ``path``; ``prepare`` sets up a new
    writable one (journal mode, pragmas)."""

    def __init__(
        self,
        path: Path,
        *,
        timeout: float,
        read_only: bool,
        prepare: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        self.path, self.timeout, self.read_only = path, timeout, read_only
        self._prepare = prepare
        self._local = threading.local()
        self._open: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def db(self) -> sqlite3.Connection:
        """This thread's connection (a new one in a new thread or a forked process)."""
        if getattr(self._local, "pid", None) != os.getpid():
            if self.read_only:
                fresh = connect_read_only(self.path, self.timeout)
            else:
                fresh = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
                if self._prepare is not None:
                    self._prepare(fresh)
            self._local.db, self._local.pid = fresh, os.getpid()
            with self._lock:
                self._open.append(fresh)
        db: sqlite3.Connection = self._local.db
        return db

    @contextmanager
    def write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One write transaction changing ``what`` (named in the read-only refusal)."""
        if self.read_only:
            raise StorageError(f"{self.path} is open read-only: cannot change {what}")
        with translated(self.path):
            db = self.db()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            finally:
                if db.in_transaction:  # SQLite may have rolled back already
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: its SELECTs see one snapshot of the file."""
        with translated(self.path):
            db = self.db()
            if db.in_transaction:  # inside another read: the same snapshot
                yield db
                return
            db.execute("BEGIN")
            try:
                yield db
            finally:
                if db.in_transaction:
                    db.execute("COMMIT")

    def close(self) -> None:
        """Close every connection this object opened (another thread's may refuse: it stays
        until that thread ends)."""
        with self._lock:
            for db in self._open:
                with contextlib.suppress(sqlite3.ProgrammingError, sqlite3.Error):
                    db.close()
            self._open.clear()
        self._local = threading.local()
