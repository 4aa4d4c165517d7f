"""An immutable read that meets a writer's checkpoint is torn ("file is not a database") and is
read again, instead of ending the command (a tune ending beside a panda trainer once did)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from caviar.storage import sqlite_file


def test_a_torn_immutable_read_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    real = sqlite_file._connect
    torn = [2]  # the first two reads meet a checkpoint

    class Torn:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def execute(self, sql: str) -> Any:
            if torn[0] > 0:
                torn[0] -= 1
                raise sqlite3.DatabaseError("file is not a database")
            return self.db.execute(sql)

        def close(self) -> None:
            self.db.close()

    monkeypatch.setattr(sqlite_file, "_connect", lambda p, q, t: Torn(real(p, q, t)))
    db = sqlite_file._immutable(path, 1.0)
    assert torn == [0]
    db.close()


def test_a_file_that_stays_unreadable_is_still_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)
    monkeypatch.setattr(sqlite_file.time, "sleep", lambda s: None)
    with pytest.raises(sqlite3.DatabaseError):
        sqlite_file._immutable(path, 1.0)
