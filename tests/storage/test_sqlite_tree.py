"""The panda tree in a study file: a file an earlier caviar wrote reads back and takes writes,
a reopened file holds everything, a read-only open writes nothing, and another process's writes
are seen (what the contract suite cannot say about a backend in memory)."""

from __future__ import annotations

import hashlib
import math
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from caviar.core.errors import InvalidValue
from caviar.core.records import EpochRecord
from caviar.storage import SQLiteStorage, SQLiteTreeStore, StorageError
from caviar.storage.tree_rows import Snapshot, StoredEpoch

#: the panda tables as caviar has written them since they were made, one line a table
EARLIER_TABLES = [
    "CREATE TABLE panda_runs (run_id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, config TEXT NOT NULL, spec TEXT NOT NULL, source TEXT NOT NULL, status TEXT NOT NULL, branch INTEGER NOT NULL, budget INTEGER NOT NULL, version INTEGER NOT NULL, created REAL NOT NULL)",  # noqa: E501
    "CREATE TABLE panda_branches (run_id INTEGER NOT NULL REFERENCES panda_runs(run_id), branch INTEGER NOT NULL, parent INTEGER, from_epoch INTEGER, mode TEXT, spec TEXT NOT NULL, created REAL NOT NULL, PRIMARY KEY (run_id, branch))",  # noqa: E501
    "CREATE TABLE panda_commands (command_id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL REFERENCES panda_runs(run_id), branch INTEGER NOT NULL, epoch INTEGER NOT NULL, key TEXT NOT NULL, old TEXT NOT NULL, new TEXT NOT NULL, time REAL NOT NULL, applied INTEGER NOT NULL DEFAULT 0)",  # noqa: E501
    "CREATE INDEX panda_pending ON panda_commands (run_id, applied, command_id)",
    "CREATE TABLE panda_epochs (run_id INTEGER NOT NULL REFERENCES panda_runs(run_id), branch INTEGER NOT NULL, epoch INTEGER NOT NULL, train_loss REAL, train_accuracy REAL, val_loss REAL, val_accuracy REAL, time REAL NOT NULL, PRIMARY KEY (run_id, branch, epoch)) WITHOUT ROWID",  # noqa: E501
    "CREATE TABLE panda_snapshots (run_id INTEGER NOT NULL REFERENCES panda_runs(run_id), branch INTEGER NOT NULL, epoch INTEGER NOT NULL, spec TEXT NOT NULL, size INTEGER NOT NULL, state BLOB NOT NULL, time REAL NOT NULL, PRIMARY KEY (run_id, branch, epoch))",  # noqa: E501
    "CREATE TABLE panda_dropped (run_id INTEGER NOT NULL REFERENCES panda_runs(run_id), branch INTEGER NOT NULL, epoch INTEGER NOT NULL, size INTEGER NOT NULL, time REAL NOT NULL)",  # noqa: E501
]
SPEC = {"lr": 0.001, "seed": 7}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def earlier_file(path: Path) -> None:
    """A study file with one run, written row by row as an earlier caviar wrote it: the root
    trained to epoch 2 (epoch 1 dropped), branch 1 grown from epoch 2, one command applied."""
    SQLiteStorage(path).close()
    with sqlite3.connect(path) as db:
        for statement in EARLIER_TABLES:
            db.execute(statement)
        db.execute(
            "INSERT INTO panda_runs VALUES (1, 'old', '{\"space\":{}}', ?, "
            "'{\"kind\":\"config\"}', 'paused', 1, 4096, 9, 100.0)",
            ('{"lr":0.001,"seed":7}',),
        )
        db.execute(
            "INSERT INTO panda_branches VALUES (1, 0, NULL, NULL, NULL, ?, 100.0)",
            ('{"lr":0.01,"seed":7}',),
        )
        db.execute(
            "INSERT INTO panda_branches VALUES (1, 1, 0, 2, 'fresh', ?, 103.0)",
            ('{"lr":0.02,"seed":7}',),
        )
        db.execute(
            "INSERT INTO panda_commands VALUES (1, 1, 0, 1, 'lr', '0.001', '0.01', 101.0, 1)"
        )
        db.execute("INSERT INTO panda_commands VALUES (2, 1, 0, 2, 'rollback', '0', '1', 103.0, 0)")
        db.execute("INSERT INTO panda_epochs VALUES (1, 0, 1, 2.0, 0.5, NULL, 0.25, 101.0)")
        db.execute("INSERT INTO panda_epochs VALUES (1, 0, 2, 1.0, 0.75, 1.5, 0.5, 102.0)")
        for epoch, at in ((0, 100.0), (2, 102.0)):
            db.execute(
                "INSERT INTO panda_snapshots VALUES (1, 0, ?, ?, 3, ?, ?)",
                (epoch, '{"lr":0.001,"seed":7}', b"ab" + bytes([epoch]), at),
            )
        db.execute("INSERT INTO panda_dropped VALUES (1, 0, 1, 3, 102.5)")


def test_a_file_an_earlier_caviar_wrote_reads_back_and_takes_writes(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    earlier_file(path)
    store = SQLiteTreeStore(path)
    run = store.run("old")
    assert (run.run_id, run.status, run.branch, run.budget, run.version) == (
        1,
        "paused",
        1,
        4096,
        9,
    )
    assert run.config == {"space": {}} and run.source == {"kind": "config"}
    branches = store.branches(1)
    assert [(b.id, b.parent, b.from_epoch, b.mode, b.spec["lr"]) for b in branches] == [
        (0, None, None, None, 0.01),
        (1, 0, 2, "fresh", 0.02),
    ]
    commands = store.commands(1)
    assert [(c.id, c.key, c.old, c.new, c.applied) for c in commands] == [
        (1, "lr", 0.001, 0.01, True),
        (2, "rollback", 0, 1, False),
    ]
    (first, second) = store.curves(1)[0]
    assert (first.record.train_loss, first.record.val_accuracy, first.time) == (2.0, 0.25, 101.0)
    assert math.isnan(first.record.val_loss)  # NULL: could not be computed
    assert second.record == EpochRecord(2, 1.0, 0.75, 1.5, 0.5)
    assert store.snapshot_epochs(1) == {0: [0, 2]} and store.first_snapshot(1) == 0
    assert store.snapshot(1, 0, 2) == b"ab\x02"
    assert store.dropped(1) == [{"branch": 0, "epoch": 1, "bytes": 3, "time": 102.5}]

    store.add_epoch(1, 1, StoredEpoch(EpochRecord(3, 0.5), 104.0), Snapshot(3, SPEC, b"xyz"))
    assert store.version(1) == 10
    store.close()
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT * FROM panda_epochs WHERE branch = 1").fetchall()
        assert rows == [(1, 1, 3, 0.5, None, None, None, 104.0)]
        snap = db.execute("SELECT * FROM panda_snapshots WHERE branch = 1").fetchone()
        assert snap == (1, 1, 3, '{"lr":0.001,"seed":7}', 3, b"xyz", 104.0)


def layout(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every panda table's columns (name, type, not null, default, primary key) and indexes."""
    with sqlite3.connect(path) as db:
        names = [
            r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE name LIKE 'panda%'")
        ]
        out = {n: [tuple(c[1:]) for c in db.execute(f"PRAGMA table_info({n})")] for n in names}
        (without_rowid,) = db.execute(
            "SELECT sql LIKE '%WITHOUT ROWID' FROM sqlite_master WHERE name = 'panda_epochs'"
        ).fetchone()
    return {**out, "epochs without rowid": [(without_rowid,)]}


def test_a_new_file_lays_out_the_panda_tables_as_an_earlier_caviar_did(tmp_path: Path) -> None:
    earlier_file(tmp_path / "old.db")
    SQLiteTreeStore(tmp_path / "new.db").close()
    new, old = layout(tmp_path / "new.db"), layout(tmp_path / "old.db")
    assert sorted(new) == sorted(old) and len(new) == 8  # six tables, an index, WITHOUT ROWID
    assert new == old


def test_everything_survives_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store = SQLiteTreeStore(path)
    run = store.create_run(
        "a", config={"x": 1}, spec=SPEC, source={}, budget=5, first=Snapshot(0, SPEC, b"abc")
    )
    store.add_epoch(run.run_id, 0, StoredEpoch(EpochRecord(1, 0.5), 1.0), Snapshot(1, SPEC, b"de"))
    store.add_branch(run.run_id, parent=0, from_epoch=1, mode="exact", current=0)
    reads = (store.branches, store.commands, store.curves, store.snapshot_epochs, store.dropped)
    before = [read(run.run_id) for read in reads]
    store.close()

    again = SQLiteTreeStore(path)
    reopened = again.run("a")
    assert (reopened.config, reopened.spec, reopened.budget, reopened.version) == (
        {"x": 1},
        SPEC,
        5,
        3,
    )
    assert [
        read(run.run_id)
        for read in (
            again.branches,
            again.commands,
            again.curves,
            again.snapshot_epochs,
            again.dropped,
        )
    ] == before
    assert again.snapshot(run.run_id, 0, 1) == b"de"
    assert again.dropped(run.run_id) == []  # 5 bytes: both fit


def test_a_read_only_store_reads_the_runs_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    earlier_file(path)
    before = digest(path)
    store = SQLiteTreeStore(path, read_only=True)
    assert store.run_names() == ["old"] and store.run("old").version == 9
    with pytest.raises(
        StorageError, match=r"t\.db is open read-only: cannot change the panda runs"
    ):
        store.add_commands(1, [(0, 0, "lr", 0.1, 0.2)])
    store.close()
    assert digest(path) == before


def test_a_read_only_study_file_without_panda_tables_has_no_runs(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    SQLiteStorage(path).close()
    before = digest(path)
    store = SQLiteTreeStore(path, read_only=True)
    assert store.run_names() == []
    with pytest.raises(InvalidValue, match=r"no run 'a' in .*t\.db; runs: \[\]"):
        store.run("a")
    store.close()
    assert digest(path) == before


def test_a_file_that_is_no_study_file_is_refused_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a database, just some words " * 20)
    with pytest.raises(StorageError, match=r"cannot use .*notes\.db.* as a study file"):
        SQLiteTreeStore(path)
    with pytest.raises(StorageError, match=r"notes\.db is not a caviar study file \(it is not an"):
        SQLiteTreeStore(path, read_only=True)
    assert path.read_text() == "not a database, just some words " * 20


def test_another_processs_write_is_seen_after_a_read_ends(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store = SQLiteTreeStore(path)
    run = store.create_run(
        "a", config={}, spec=SPEC, source={}, budget=100, first=Snapshot(0, SPEC, b"abc")
    )
    script = textwrap.dedent(
        f"""
        from caviar.storage import SQLiteTreeStore
        store = SQLiteTreeStore({str(path)!r})
        store.add_commands(store.run("a").run_id, [(0, 0, "lr", 0.001, 0.02)])
        """
    )
    with store.read():
        assert store.version(run.run_id) == 1
        subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
        assert store.version(run.run_id) == 1 and store.commands(run.run_id) == []
    assert store.version(run.run_id) == 2
    ((key, new),) = [(c.key, c.new) for c in store.commands(run.run_id)]
    assert (key, new) == ("lr", 0.02)
