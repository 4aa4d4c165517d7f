"""Opening a study file read-only (``show``, ``studies``, ``report``) writes nothing: no WAL
switch, no schema, no migration; a file that is not a caviar store is refused unchanged; and a
study in a folder the user cannot write to can still be read."""

import hashlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from caviar import SearchSpace, SQLiteStorage, Study, TrialState, Uniform
from caviar.storage import StorageError

SPACE = SearchSpace({"x": Uniform(0.0, 1.0)})


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_study(path: Path, completed: int = 2) -> None:
    study = Study.create("s", SPACE, storage=path)
    for trial in study.ask(completed):
        study.tell(trial, trial.params["x"])
    study.close()


def test_a_read_only_store_reads_a_study_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    make_study(path)
    before = digest(path)
    storage = SQLiteStorage(path, read_only=True)
    study = Study.load("s", storage)
    assert storage.study_names() == ["s"]
    assert [t.state for t in study.trials()] == [TrialState.COMPLETE] * 2
    assert study.best_trial is not None
    storage.close()
    assert digest(path) == before


def test_a_read_only_store_refuses_to_write(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    make_study(path)
    storage = SQLiteStorage(path, read_only=True)
    with pytest.raises(StorageError, match=r"s\.db is open read-only: cannot change study 's'"):
        storage.set_study_attrs("s", {"a": 1})
    with pytest.raises(StorageError, match="is open read-only"):
        Study.load("s", storage).ask()


def test_a_file_in_rollback_journal_mode_stays_in_it(tmp_path: Path) -> None:
    """A caviar file someone switched back to a rollback journal: reading it switches nothing."""
    path = tmp_path / "s.db"
    make_study(path)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=DELETE")
    before = digest(path)
    SQLiteStorage(path, read_only=True).study_names()
    assert digest(path) == before
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)


def foreign_wal_file(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE songs (title TEXT)")
    db.execute("INSERT INTO songs VALUES ('la mer')")
    db.commit()
    db.close()


def foreign_file(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE songs (title TEXT)")
    sqlite3.connect(path).close()


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda p: p.write_bytes(b""), "it is empty"),
        (lambda p: p.write_text("just some words " * 40), "it is not an SQLite database"),
        (foreign_file, "it has no caviar tables"),
        (foreign_wal_file, "it has no caviar tables"),
    ],
    ids=["empty", "text", "foreign sqlite", "foreign sqlite in WAL mode"],
)
def test_a_file_that_is_no_caviar_store_is_refused_and_left_unchanged(
    tmp_path: Path, make: Callable[[Path], None], why: str
) -> None:
    path = tmp_path / "other.db"
    make(path)
    before = sorted(os.listdir(tmp_path)), digest(path)
    with pytest.raises(StorageError, match=rf"other\.db is not a caviar study file \({why}\)"):
        SQLiteStorage(path, read_only=True)
    assert (sorted(os.listdir(tmp_path)), digest(path)) == before  # no -wal or -shm left


def test_a_missing_file_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"no study file at '.*nothing\.db'"):
        SQLiteStorage(tmp_path / "nothing.db", read_only=True)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("make", [foreign_file, foreign_wal_file], ids=["rollback", "wal"])
def test_a_writable_open_refuses_a_foreign_sqlite_file_without_touching_it(
    tmp_path: Path, make: Callable[[Path], None]
) -> None:
    path = tmp_path / "other.db"
    make(path)
    before = digest(path)
    with pytest.raises(
        StorageError, match=r"cannot use .*other\.db.* as a study file: .* no caviar tables"
    ):
        SQLiteStorage(path)
    assert digest(path) == before


@pytest.mark.slow
def test_a_newer_schema_is_refused_read_only_too(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    make_study(path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_version SET version = 2")
    with pytest.raises(StorageError, match="has schema version 2; this caviar reads up to 1"):
        SQLiteStorage(path, read_only=True)


# -- a folder the user cannot write to ---------------------------------------------------------


def as_a_user_who_cannot_write(folder: Path, read: Callable[[], object]) -> object:
    """``read()`` with ``folder`` not writable for the caller: chmod'ed for an ordinary user;
    as root (whom chmod does not stop) in a forked child that drops to the user ``nobody``."""
    folder.chmod(0o555)
    try:
        if os.geteuid() != 0:
            return read()
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: only code already imported runs here
            os.close(reader)
            try:
                os.setgid(65534)
                os.setuid(65534)
                try:
                    (folder / "probe").touch()
                    answer = "the folder is writable for nobody"
                except PermissionError:
                    answer = repr(read())
            except BaseException as e:  # reported to the parent
                answer = f"error: {type(e).__name__}: {e}"
            os.write(writer, answer.encode())
            os._exit(0)
        os.close(writer)
        os.waitpid(pid, 0)
        with os.fdopen(reader) as answer_file:
            return answer_file.read()
    finally:
        folder.chmod(0o755)


@pytest.fixture
def shared_folder():
    """A folder the user ``nobody`` can reach (pytest's own folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="caviar-ro-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def read_best(path: Path) -> Callable[[], object]:
    def read() -> object:
        storage = SQLiteStorage(path, read_only=True)
        try:
            study = Study.load("s", storage)
            return [t.number for t in study.trials([TrialState.COMPLETE])]
        finally:
            storage.close()

    return read


def test_a_closed_study_in_a_read_only_folder_can_be_read(shared_folder: Path) -> None:
    """SQLite cannot make the -shm file there, so the store opens the file as immutable."""
    path = shared_folder / "s.db"
    make_study(path, completed=3)
    path.chmod(0o644)
    before = sorted(os.listdir(shared_folder)), digest(path)
    expected = [0, 1, 2] if os.geteuid() != 0 else repr([0, 1, 2])
    assert as_a_user_who_cannot_write(shared_folder, read_best(path)) == expected
    assert (sorted(os.listdir(shared_folder)), digest(path)) == before


def test_a_crashed_writers_log_in_a_read_only_folder_is_read(shared_folder: Path) -> None:
    """A writer killed with its -wal and -shm files left: the last trials live only in the -wal,
    and SQLite reads them through the existing -shm."""
    path = shared_folder / "s.db"
    make_study(path, completed=1)
    code = (
        "import os, sys\n"
        "from caviar import Study\n"
        "study = Study.load('s', sys.argv[1])\n"
        "study.storage._db().execute('PRAGMA wal_autocheckpoint=0')\n"
        "for t in study.ask(2):\n"
        "    study.tell(t, 0.5)\n"
        "os._exit(0)\n"  # no checkpoint, no clean close
    )
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    assert Path(f"{path}-wal").stat().st_size > 0
    for f in shared_folder.iterdir():
        f.chmod(0o644)
    expected = [0, 1, 2] if os.geteuid() != 0 else repr([0, 1, 2])
    assert as_a_user_who_cannot_write(shared_folder, read_best(path)) == expected


# -- a reader leaves the folder as it found it -------------------------------------------------


def beside(path: Path) -> list[str]:
    return sorted(os.listdir(path.parent))


def trial_numbers(path: Path) -> list[int]:
    """The numbers of the trials in the file, read with plain SQLite."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT number FROM trials ORDER BY number").fetchall()
    return [n for (n,) in rows]


def test_a_reader_leaves_no_wal_or_shm_file_beside_a_closed_study(tmp_path: Path) -> None:
    """`show`, `studies` and `report` left s.db-wal and s.db-shm behind: a WAL file read with
    mode=ro gets both, and a read-only connection cannot remove them."""
    path = tmp_path / "s.db"
    make_study(path, completed=3)
    before = beside(path), digest(path)
    assert before[0] == ["s.db"]
    storage = SQLiteStorage(path, read_only=True)
    study = Study.load("s", storage)
    assert [t.number for t in study.trials()] == [0, 1, 2]
    assert study.best_trial is not None
    with pytest.raises(StorageError, match="is open read-only"):
        study.set_attrs({"a": 1})
    storage.close()
    assert (beside(path), digest(path)) == before


def test_a_reader_beside_a_running_writer_reads_its_changes_and_leaves_its_files(
    tmp_path: Path,
) -> None:
    """A `caviar tune` writing while `caviar show` reads: the reader sees every committed trial,
    its close removes nothing the writer uses, and the writer goes on as before."""
    path = tmp_path / "s.db"
    make_study(path, completed=2)
    writer = Study.load("s", path)
    (running,) = writer.ask()  # committed, in the writer's -wal
    assert beside(path) == ["s.db", "s.db-shm", "s.db-wal"]
    storage = SQLiteStorage(path, read_only=True)
    reader = Study.load("s", storage)
    assert [(t.number, t.state) for t in reader.trials()] == [
        (0, TrialState.COMPLETE),
        (1, TrialState.COMPLETE),
        (2, TrialState.RUNNING),
    ]
    writer.tell(running, 0.25)  # while the reader is open
    assert [t.value for t in reader.trials()][2] == 0.25
    storage.close()
    assert beside(path) == ["s.db", "s.db-shm", "s.db-wal"]
    (last,) = writer.ask()
    writer.tell(last, 0.75)
    writer.close()
    assert beside(path) == ["s.db"]
    assert trial_numbers(path) == [0, 1, 2, 3]


def test_a_writer_that_starts_and_ends_while_a_reader_is_open_loses_nothing(
    tmp_path: Path,
) -> None:
    """The reader opened a closed study, so it is the last to close: its close copies the
    writer's changes into the file, as the writer's own close would have, and tidies up."""
    path = tmp_path / "s.db"
    make_study(path, completed=1)
    storage = SQLiteStorage(path, read_only=True)
    reader = Study.load("s", storage)
    assert len(reader.trials()) == 1
    writer = Study.load("s", path)
    for trial in writer.ask(2):
        writer.tell(trial, 0.5)
    writer.close()
    assert len(reader.trials()) == 3
    storage.close()
    assert beside(path) == ["s.db"]
    assert trial_numbers(path) == [0, 1, 2]


@pytest.mark.slow
def test_a_crashed_writers_files_stay_as_they_were(tmp_path: Path) -> None:
    """A -wal file already there holds changes not yet in the file: the reader reads them and
    leaves the -wal as it found it, for the next writer to recover."""
    path = tmp_path / "s.db"
    make_study(path, completed=1)
    code = (
        "import os, sys\n"
        "from caviar import Study\n"
        "study = Study.load('s', sys.argv[1])\n"
        "study.storage._db().execute('PRAGMA wal_autocheckpoint=0')\n"
        "for t in study.ask(2):\n"
        "    study.tell(t, 0.5)\n"
        "os._exit(0)\n"
    )
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    wal = Path(f"{path}-wal")
    before = beside(path), digest(path), digest(wal)
    storage = SQLiteStorage(path, read_only=True)
    assert [t.number for t in Study.load("s", storage).trials()] == [0, 1, 2]
    storage.close()
    assert (beside(path), digest(path), digest(wal)) == before
