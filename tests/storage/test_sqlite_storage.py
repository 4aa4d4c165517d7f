"""What only the SQLite backend promises: the file outlives the process, and its schema version."""

import re
import sqlite3

import pytest

from caviar.core.records import EpochRecord, Trial, TrialState
from caviar.storage import (
    InMemoryStorage,
    SQLiteStorage,
    StorageError,
    StudyRecord,
    open_storage,
)


def test_everything_survives_reopening_the_file(tmp_path):
    path = tmp_path / "deep" / "folder" / "s.db"  # folders are created
    first = SQLiteStorage(path)
    first.create_study(StudyRecord("s", "minimize", {"x": 1}, {"name": "random", "seed": 0}, 0))
    first.create_trials("s", [Trial(0, {"x": 1}, (), 7, {"a": [1]})], owner="h:1:o")
    first.add_epochs("s", [(0, EpochRecord(1, val_loss=0.5))], owner="h:1:o")
    first.finish_trial("s", 0, TrialState.COMPLETE, 0.5, owner="h:1:o")
    first.create_trials("s", [Trial(1, {"x": 1}, (), 8)], owner=None)
    first.close()

    again = SQLiteStorage(path)
    assert again.study_names() == ["s"]
    assert again.load_study("s").direction == "minimize"
    done, queued = again.get_trials("s")
    assert (done.state, done.value, done.seed, done.attrs) == (
        TrialState.COMPLETE,
        0.5,
        7,
        {"a": [1]},
    )
    assert [(r.epoch, r.val_loss) for r in done.curve] == [(1, 0.5)]
    assert (queued.number, queued.state) == (1, TrialState.QUEUED)
    again.close()


def test_a_file_from_a_newer_caviar_is_refused(tmp_path):
    path = tmp_path / "s.db"
    SQLiteStorage(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_version SET version = 2")
    with pytest.raises(
        StorageError, match=re.escape("has schema version 2; this caviar reads up to 1")
    ):
        SQLiteStorage(path)


def test_open_storage_turns_what_the_user_gives_into_a_backend(tmp_path):
    assert isinstance(open_storage(None), InMemoryStorage)
    memory = InMemoryStorage()
    assert open_storage(memory) is memory
    by_str = open_storage(str(tmp_path / "a.db"))
    by_path = open_storage(tmp_path / "b.db")
    assert isinstance(by_str, SQLiteStorage) and isinstance(by_path, SQLiteStorage)
    assert (tmp_path / "a.db").exists() and (tmp_path / "b.db").exists()
    with pytest.raises(TypeError, match="storage must be None, a path or a Storage, got 3"):
        open_storage(3)


def test_a_path_that_is_no_study_file_is_a_clear_error(tmp_path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("not a database, just some words " * 20)
    with pytest.raises(StorageError, match=r"cannot use .*notes\.db.* as a study file"):
        SQLiteStorage(text)
    with pytest.raises(StorageError, match=r"cannot use .* as a study file"):
        SQLiteStorage(tmp_path)  # a folder


@pytest.mark.slow
def test_processes_opening_a_new_file_together_all_succeed(tmp_path) -> None:
    import multiprocessing

    context = multiprocessing.get_context("fork")

    def open_it(path: str, start: "multiprocessing.synchronize.Barrier") -> None:
        start.wait()  # all at once: switching a new file to WAL races
        SQLiteStorage(path).study_names()

    for round_ in range(12):
        path = str(tmp_path / f"new{round_}.db")
        start = context.Barrier(6)
        workers = [context.Process(target=open_it, args=(path, start)) for _ in range(6)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(30)
        assert [w.exitcode for w in workers] == [0] * 6
