"""One trainer per panda run: a lock row in the study file.

A trainer holds its run while it trains and serves the page (:meth:`RunLock.take`): a row in
``panda_trainers`` naming the run, the trainer's host and process, since when it holds the run,
its page's address (without the token) once it serves, and a heartbeat that a background thread
refreshes every :data:`HEARTBEAT` seconds. A second trainer is refused in one line naming the
holder (:class:`RunHeld`), before it serves a page or trains an epoch.

A row is taken over, and the taker says so, when its holder is gone:

- on this host, its process no longer exists (killed, crashed: it never released the row);
- on any host, its heartbeat is older than :data:`STALE` seconds (the process hangs, or its
  machine went away; a reused process id is caught here too).

Taking, refreshing and releasing are each one write transaction (``BEGIN IMMEDIATE``), so two
trainers starting at once cannot both win. A holder whose row was taken over notices at its next
heartbeat (:attr:`RunLock.lost`) and stops training.

The controls read the row (:func:`holder`) to say whether a trainer will apply a command.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from caviar.storage.base import StorageError
from caviar.storage.sqlite_connections import Connections

#: seconds between a holder's heartbeats, and the age at which a silent holder counts as gone
HEARTBEAT = 5.0
STALE = 30.0

_TABLE = """
CREATE TABLE IF NOT EXISTS panda_trainers (
    run       TEXT PRIMARY KEY,
    host      TEXT NOT NULL,
    pid       INTEGER NOT NULL,
    token     TEXT NOT NULL,
    since     REAL NOT NULL,
    heartbeat REAL NOT NULL,
    address   TEXT
)"""
_COLUMNS = "run, host, pid, token, since, heartbeat, address"


class RunHeld(StorageError):
    """A trainer already holds the run: the one line says who and what to do."""


@dataclass(frozen=True)
class Holder:
    """The trainer holding a run, as its lock row says."""

    run: str
    host: str
    pid: int
    token: str  # tells two holders in one process apart
    since: float
    heartbeat: float
    address: str | None  # the page, without its token (None until it serves)

    def gone(self, now: float, *, stale: float) -> str | None:
        """Why this holder no longer holds its run, or None while it does."""
        if self.host == socket.gethostname() and not _process_exists(self.pid):
            return f"its process {self.pid} on this host is gone"
        if now - self.heartbeat > stale:
            return (
                f"its last heartbeat was {now - self.heartbeat:.0f} s ago (stale after {stale:g})"
            )
        return None

    def describe(self) -> str:
        """``host h, pid 123, since 2026-12-07 17:20:01, page http://127.0.0.1:8000/``."""
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        page = f", page {self.address}" if self.address else ""
        return f"host {self.host}, pid {self.pid}, since {since}{page}"


def holder(
    path: str | os.PathLike[str], run: str, *, stale: float | None = None, timeout: float = 60.0
) -> Holder | None:
    """The live trainer holding ``run`` in the study file ``path``, or None (no row, or its
    holder is gone: see :meth:`Holder.gone`); read without writing."""
    stale = STALE if stale is None else stale
    connections = Connections(Path(path), timeout=timeout, read_only=True)
    try:
        with connections.read() as db:
            found = _row(db, run)
    finally:
        connections.close()
    return found if found is not None and found.gone(time.time(), stale=stale) is None else None


class RunLock:
    """This process's hold on a run (see the module docstring): :meth:`take` it, then
    :meth:`release` it (or use it as a context manager)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        run: str,
        *,
        heartbeat: float | None = None,
        stale: float | None = None,
        timeout: float = 60.0,
    ) -> None:
        """``heartbeat`` and ``stale`` in seconds (default :data:`HEARTBEAT`, :data:`STALE`)."""
        self.path, self.run = Path(path), run
        self.interval = HEARTBEAT if heartbeat is None else heartbeat
        self.stale = STALE if stale is None else stale
        self.token = secrets.token_hex(8)
        #: the holder this lock replaced and why it was gone (None: the run was free)
        self.took_over: tuple[Holder, str] | None = None
        #: set when another trainer took the run over (this one then stops)
        self.lost = threading.Event()
        self._connections = Connections(self.path, timeout=timeout, read_only=False)
        self._stop = threading.Event()
        self._beats: threading.Thread | None = None

    def take(self) -> RunLock:
        """Hold the run, or raise :class:`RunHeld` naming the live holder."""
        now = time.time()
        with self._write() as db:
            db.execute(_TABLE)
            found = _row(db, self.run)
            if found is not None:
                reason = found.gone(now, stale=self.stale)
                if reason is None:
                    raise RunHeld(
                        f"panda run {self.run!r} in {self.path} is held by a trainer "
                        f"({found.describe()}): one trainer per run; stop it first "
                        f"(caviar panda stop --run {self.run}), or train another run (--name)"
                    )
                self.took_over = (found, reason)
            db.execute(
                f"INSERT OR REPLACE INTO panda_trainers ({_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (self.run, socket.gethostname(), os.getpid(), self.token, now, now),
            )
        self._beats = threading.Thread(
            target=self._beat, name=f"caviar-panda-lock-{self.run}", daemon=True
        )
        self._beats.start()
        return self

    def set_address(self, address: str) -> None:
        """Record the page's address (shown to a second trainer)."""
        self._refresh(address=address)

    def release(self) -> None:
        """Stop the heartbeat and free the run (a row taken over meanwhile is left alone)."""
        self._stop.set()
        if self._beats is not None:
            self._beats.join()
        with contextlib.suppress(StorageError, sqlite3.Error), self._write() as db:
            db.execute(
                "DELETE FROM panda_trainers WHERE run = ? AND token = ?", (self.run, self.token)
            )
        self._connections.close()

    def __enter__(self) -> RunLock:
        return self.take()

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- inside ------------------------------------------------------------------------------
    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self._connections.write(f"the trainer of panda run {self.run!r}")

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(StorageError, sqlite3.Error):  # a busy file: the next beat
                self._refresh()
            if self.lost.is_set():
                return

    def _refresh(self, *, address: str | None = None) -> None:
        with self._write() as db:
            changed = db.execute(
                "UPDATE panda_trainers SET heartbeat = ?, address = coalesce(?, address) "
                "WHERE run = ? AND token = ?",
                (time.time(), address, self.run, self.token),
            ).rowcount
        if not changed:
            self.lost.set()


def _row(db: sqlite3.Connection, run: str) -> Holder | None:
    table = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'panda_trainers'"
    ).fetchone()
    if table is None:
        return None
    row = db.execute(f"SELECT {_COLUMNS} FROM panda_trainers WHERE run = ?", (run,)).fetchone()
    return None if row is None else Holder(*row)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
