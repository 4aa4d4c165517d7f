"""A full disk is a StorageError that says so, that nothing stored was lost and how to go on;
the write that failed is rolled back whole, and the store works again once there is room."""

import re
import sqlite3
from collections import namedtuple
from pathlib import Path

import pytest

from caviar import EpochRecord, SearchSpace, Study, TrialState, Uniform
from caviar.storage import DiskFullError, StorageError, sqlite_errors
from caviar.storage.sqlite_connections import Connections

SPACE = SearchSpace({"x": Uniform(0.0, 1.0)})


class Disk:
    """Wraps the store's connections: once ``full``, every COMMIT fails as SQLite's does."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, error: str) -> None:
        self.full, self.error = False, error
        real = Connections.db
        disk = self

        class Connection:
            def __init__(self, db: sqlite3.Connection) -> None:
                self.db = db

            def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
                if sql == "COMMIT" and disk.full:
                    raise sqlite3.OperationalError(disk.error)
                return self.db.execute(sql, *args)

            def __getattr__(self, name: str) -> object:
                return getattr(self.db, name)

        monkeypatch.setattr(Connections, "db", lambda connections: Connection(real(connections)))


def test_sqlites_own_full_error_says_the_disk_is_full_and_nothing_was_lost(tmp_path):
    """A real SQLITE_FULL: the file may not grow beyond its pages (``max_page_count``)."""
    path = tmp_path / "s.db"
    study = Study.create("s", SPACE, storage=path)
    kept = study.ask(1)[0]
    study.tell(kept, 0.25)
    db = study.storage._db()
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.execute(f"PRAGMA max_page_count = {pages}")
    (trial,) = study.ask()
    with pytest.raises(DiskFullError) as caught:
        study.tell(trial, 0.5, attrs={"big": "x" * 100_000})
    message = str(caught.value)
    assert message.startswith(f"the disk holding {path} is full: this change was not stored")
    assert "nothing stored before it was lost" in message
    assert message.endswith("free some space and run the same command again to continue")
    assert isinstance(caught.value, StorageError)
    db.execute("PRAGMA max_page_count = 1000000")  # room again: the store carries on
    assert [t.state for t in study.trials()] == [TrialState.COMPLETE, TrialState.RUNNING]
    assert study.tell(trial, 0.5).state is TrialState.COMPLETE
    assert study.trials()[0].value == 0.25


@pytest.mark.parametrize("where", ["tell", "report", "ask", "create"])
def test_a_write_that_meets_a_full_disk_is_rolled_back_whole(tmp_path, monkeypatch, where):
    path = tmp_path / "s.db"
    disk = Disk(monkeypatch, "database or disk is full")
    study = Study.create("s", SPACE, storage=path)
    (done,) = study.ask()
    study.report(done, EpochRecord(1, val_accuracy=0.5))
    study.tell(done, 0.5)
    (trial,) = study.ask()
    disk.full = True
    with pytest.raises(DiskFullError, match="is full: this change was not stored"):
        if where == "tell":
            study.tell(trial, 0.9)
        elif where == "report":
            study.report_epochs([(trial, EpochRecord(e, val_accuracy=0.1)) for e in (1, 2)])
        elif where == "ask":
            study.ask(3)
        else:
            Study.create("t", SPACE, storage=study.storage)
    disk.full = False
    trials = study.trials()
    assert [(t.number, t.state, t.value) for t in trials] == [
        (0, TrialState.COMPLETE, 0.5),
        (1, TrialState.RUNNING, None),
    ]
    assert [r.val_accuracy for r in trials[0].curve] == [0.5]
    assert trials[1].curve == ()
    assert study.storage.study_names() == ["s"]
    study.report(trial, EpochRecord(1, val_accuracy=0.9))  # the connection is usable again
    assert study.tell(trial, 0.9).value == 0.9


Usage = namedtuple("Usage", "total used free")


@pytest.mark.parametrize(
    ("free", "full"), [(0, True), (100_000, True), (50 * 2**30, False)], ids=["0", "100k", "50G"]
)
def test_an_io_error_on_a_disk_without_space_is_a_full_disk(tmp_path, monkeypatch, free, full):
    """SQLite reports some out-of-space writes as "disk I/O error": the free space decides."""
    study = Study.create("s", SPACE, storage=tmp_path / "s.db")
    seen = []

    def usage(where):
        seen.append(Path(where))
        return Usage(100 * 2**30, 100 * 2**30 - free, free)

    monkeypatch.setattr(sqlite_errors.shutil, "disk_usage", usage)
    disk = Disk(monkeypatch, "disk I/O error")
    disk.full = True
    expected = DiskFullError if full else sqlite3.OperationalError
    with pytest.raises(expected, match="is full" if full else re.escape("disk I/O error")):
        study.ask()
    assert seen == [tmp_path]
