"""Files a hostile user (or a full disk) damages: each case ends in one line naming the file and
what is wrong or allowed, with status 2, and leaves what is stored as it was (issue 27's cases of
files written and read).

Every case starts from one study tuned once for the module with the issue's base config (the
digits, ``lr`` log in [1e-3, 1e-1], 2 epochs, 4 trials, a pool of 4, 1 thread), copied into the
test's own folder. What is stored is read independently of caviar: the study file's rows with
plain SQLite, every other file's bytes, and the folder's listing."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import caviar
from caviar.cli.main import main
from caviar.core.errors import InvalidValue

pytestmark = pytest.mark.slow  # every case reads the module's tuned study

CONFIG = """\
[study]
name = "base"
storage = "s.db"
threads = 1

[data]
dataset = "digits"

[space]
lr = { scale = "log", low = 1e-3, high = 1e-1 }
epochs = 2

[search]
sampler = "random"  # every trial to its end: four kept models
trials = 4
population = 4
"""

KEPT = Path("caviar-models", "base")


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with base.toml, the study file s.db and the four kept models, as `caviar tune`
    left them."""
    folder = tmp_path_factory.mktemp("tuned")
    (folder / "base.toml").write_text(CONFIG)
    with contextlib.chdir(folder):
        assert main(["tune", "base.toml", "--quiet"]) == 0
    shutil.rmtree(folder / "caviar-reports")
    assert sorted(os.listdir(folder / KEPT)) == [f"trial-{n}.pt" for n in range(4)]
    return folder


@pytest.fixture
def study(tuned: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tuned folder, copied; the working folder (paths in messages are relative to it)."""
    folder = tmp_path / "study"
    shutil.copytree(tuned, folder)
    monkeypatch.chdir(folder)
    return folder


def rows(db: Path) -> list[str]:
    """Every row of the study file, as SQL (its content, whatever its pages)."""
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return list(connection.iterdump())


def stored(folder: Path) -> tuple[list[str], dict[str, str], list[str]]:
    """What is stored: the study's rows, every other file's digest, the folder's listing."""
    files = {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "s.db"
    }
    return rows(folder / "s.db"), files, sorted(os.listdir(folder))


def best_trial(db: Path) -> int:
    """The best complete trial, read with plain SQLite (highest value, then lowest number)."""
    with contextlib.closing(sqlite3.connect(db)) as connection:
        (number,) = connection.execute(
            "SELECT number FROM trials WHERE state = 'complete' ORDER BY value DESC, number LIMIT 1"
        ).fetchone()
    return int(number)


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one line a refused command prints, after checking its status is 2."""
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# -- 1. a disk that fills while a kept model is written ----------------------------------------

LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))
from caviar.cli.main import main
sys.exit(main(["tune", "base.toml", "--quiet"]))
"""


def trial_rows(db: Path) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return connection.execute(
            "SELECT number, state, params, seed, value FROM trials ORDER BY number"
        ).fetchall()


def test_a_disk_that_fills_while_a_model_is_kept_leaves_no_truncated_file(
    tuned: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A kept model of 217 kB on a disk with room for 150 kB per file (`ulimit -f`, which fails a
    write as a full disk does, without root): `tune` ended in a RuntimeError from torch.save and
    left 150 kB of trial-N.pt. Now: one line naming the file, no file at all, and the study,
    resumed, ends as the uninterrupted one."""
    (tmp_path / "base.toml").write_text(CONFIG)
    source = str(Path(caviar.__file__).parents[1])  # this caviar, wherever the test runs
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", LIMITED], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    kept = tmp_path / KEPT
    assert os.listdir(kept) == []  # neither a truncated model nor a temporary file
    numbers = [
        n for n in range(4) if line.startswith(f"caviar: error: cannot write {KEPT}/trial-{n}.pt:")
    ]
    assert len(numbers) == 1, line
    assert line == (
        f"caviar: error: cannot write {KEPT}/trial-{numbers[0]}.pt: File too large; nothing was "
        f"left there (the file is larger than the file system or `ulimit -f` allows: raise the "
        f"limit, or write elsewhere)"
    )
    states = {n: s for n, s, *_ in trial_rows(tmp_path / "s.db")}
    assert states[numbers[0]] == "complete"  # told before its model was written
    with contextlib.chdir(tmp_path):
        assert main(["tune", "base.toml", "--quiet"]) == 0
    capsys.readouterr()
    assert trial_rows(tmp_path / "s.db") == trial_rows(tuned / "s.db")
    assert not [p for p in kept.iterdir() if not p.name.startswith("trial-")]


# -- 2. export into a folder it cannot write to ------------------------------------------------


def failing_in(folder: Path, code: int) -> Callable[..., int]:
    """``os.open``, refusing with ``code`` (as the operating system does) to create a file in
    ``folder``."""
    real = os.open

    def refuse(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if Path(path).parent.resolve() == folder.resolve() and flags & os.O_CREAT:
            raise OSError(code, os.strerror(code), str(path))
        return real(path, flags, *args, **kwargs)

    return refuse


def test_export_on_a_read_only_file_system_names_the_file_and_leaves_nothing(
    study: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`caviar export` in a read-only folder ended in `RuntimeError: [enforce fail at
    inline_container.cc:747] ... Read-only file system`."""
    before = stored(study)
    best = best_trial(study / "s.db")
    monkeypatch.setattr(os, "open", failing_in(study / KEPT, errno.EROFS))
    line = refused(capsys, "export", "base", "--storage", "s.db")
    assert line == (
        f"caviar: error: cannot write {KEPT}/trial-{best}.pt2: Read-only file system; nothing "
        f"was left there (the file system is read-only: write to another folder)"
    )
    line = refused(capsys, "export", "base", "--ensemble", "2", "--storage", "s.db")
    assert line == (
        f"caviar: error: cannot write {KEPT}/ensemble-2.pt2: Read-only file system; nothing was "
        f"left there (the file system is read-only: write to another folder)"
    )
    monkeypatch.undo()
    assert stored(study) == before


@contextlib.contextmanager
def unwritable(folder: Path) -> Iterator[Callable[[Callable[[], str]], str]]:
    """A runner of ``call()`` for which ``folder`` cannot be written: chmod'ed for an ordinary
    user; as root (whom chmod does not stop), in a forked child that drops to the user
    ``nobody``, with what the call printed on stderr and its status coming back."""
    folder.chmod(0o555)

    def run(call: Callable[[], str]) -> str:
        if os.geteuid() != 0:
            return call()
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: only code imported already runs here
            os.close(reader)
            try:
                os.setgid(65534)
                os.setuid(65534)
                answer = call()
            except BaseException as e:  # reported to the parent
                answer = f"error: {type(e).__name__}: {e}"
            os.write(writer, answer.encode())
            os._exit(0)
        os.close(writer)
        os.waitpid(pid, 0)
        with os.fdopen(reader) as answer_file:
            return answer_file.read()

    try:
        yield run
    finally:
        folder.chmod(0o755)


def test_export_into_a_folder_the_user_cannot_write_names_the_file_and_leaves_nothing(
    tuned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The operating system's own refusal: a folder the user may read but not write."""
    shared = Path(tempfile.mkdtemp(prefix="caviar-export-"))
    try:
        shared.chmod(0o755)  # reachable by `nobody` (pytest's folders are private to root)
        folder = shared / "study"
        shutil.copytree(tuned, folder)
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        best = best_trial(folder / "s.db")
        db = str(folder / "s.db")
        assert main(["export", "base", "--storage", db, "-o", str(shared / "warm.pt2")]) == 0
        capsys.readouterr()  # the first export imported all it needs before the fork
        (shared / "warm.pt2").unlink()
        before = stored(folder)

        def export() -> str:
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                code = main(["export", "base", "--storage", db])
            return f"status {code}: {err.getvalue()}"

        with unwritable(folder / KEPT) as run:
            answer = run(export)
        assert answer == (
            f"status 2: caviar: error: cannot write {folder / KEPT}/trial-{best}.pt2: Permission "
            f"denied; nothing was left there (choose a folder you can write to)\n"
        )
        assert stored(folder) == before
    finally:
        shutil.rmtree(shared)


# -- 3. export -o a folder ---------------------------------------------------------------------


def outputs(program: Path, x: torch.Tensor) -> torch.Tensor:
    return torch.export.load(program).module()(x)


def test_export_to_a_folder_writes_the_default_name_inside_it_as_cp_does(
    study: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`-o DIR` with DIR a folder ended in `RuntimeError ... Is a directory`. A user who types a
    folder means "put it in there", as with `cp` and `mv`: the default name goes inside it, and
    the command says where. A name ending in `/` is a folder too, made if missing."""
    before = stored(study)
    best = best_trial(study / "s.db")
    (study / "out").mkdir()
    x = torch.rand(5, 64)
    expected = caviar.load_model("base", storage="s.db")(x)
    for out, written in [
        ("out", Path("out", f"trial-{best}.pt2")),
        ("new/", Path("new", f"trial-{best}.pt2")),
    ]:
        assert main(["export", "base", "--storage", "s.db", "-o", out]) == 0
        first = capsys.readouterr().out.splitlines()[0]
        assert first == f"exported trial-{best} of study 'base' to {written}"
        torch.testing.assert_close(outputs(study / written, x), expected)
    assert main(["export", "base", "--ensemble", "2", "--storage", "s.db", "-o", "out"]) == 0
    assert f"of study 'base' to {Path('out', 'ensemble-2.pt2')}" in capsys.readouterr().out
    ensemble = caviar.load_model("base", storage="s.db", ensemble=2)(x)
    torch.testing.assert_close(outputs(study / "out" / "ensemble-2.pt2", x), ensemble)
    assert sorted(os.listdir(study / "out")) == ["ensemble-2.pt2", f"trial-{best}.pt2"]
    after = stored(study)
    assert after[0] == before[0]
    assert {k: v for k, v in after[1].items() if not k.startswith(("out/", "new/"))} == before[1]


# -- 4. a damaged kept model -------------------------------------------------------------------


def damage(path: Path, kind: str) -> str:
    """Damage the kept model at ``path``; the reason the error gives."""
    whole = path.read_bytes()
    if kind == "garbage":
        path.write_text("garbage\n")
        return "not a PyTorch file"
    if kind == "truncated":
        path.write_bytes(whole[: len(whole) * 2 // 3])
        return "a PyTorch file cut short or overwritten"
    path.write_bytes(b"")
    return "it is empty"


def damaged_message(path: Path, why: str) -> str:
    return (
        f"caviar: error: model file: {str(path)!r} is not a caviar model file, or it is damaged "
        f"({why}); remove it (a study then goes on without that kept model), or put back the "
        f"file caviar saved"
    )


READERS = {
    "test as-trained": ["test", "base", "--mode", "as-trained"],
    "test ensemble": ["test", "base", "--ensemble", "4"],
    "export": ["export", "base"],
    "export ensemble": ["export", "base", "--ensemble", "4"],
}


@pytest.mark.parametrize("reader", list(READERS))
def test_every_reader_of_a_garbage_kept_model_names_it_in_one_line(
    study: Path, reader: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`caviar test --mode as-trained` on a garbage trial-N.pt ended in `_pickle.UnpicklingError:
    Weights only load failed...`; every reader now says the same line, and records nothing."""
    path = KEPT / f"trial-{best_trial(study / 's.db')}.pt"
    why = damage(path, "garbage")
    before = stored(study)
    line = refused(capsys, *READERS[reader], "--storage", "s.db")
    assert line == damaged_message(path, why)
    assert stored(study) == before  # no use of the test set recorded, no file written


@pytest.mark.parametrize("kind", ["truncated", "empty"])
def test_a_truncated_or_empty_kept_model_is_named_in_one_line(
    study: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = KEPT / f"trial-{best_trial(study / 's.db')}.pt"
    why = damage(path, kind)
    before = stored(study)
    line = refused(capsys, "test", "base", "--mode", "as-trained", "--storage", "s.db")
    assert line == damaged_message(path, why)
    with pytest.raises(InvalidValue) as caught:  # the Python API says the same
        caviar.load_model("base", storage="s.db")
    assert f"caviar: error: {caught.value}" == damaged_message(path, why)
    assert stored(study) == before


def test_removing_the_damaged_model_lets_test_go_on_by_training_the_trial_again(
    study: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the message advises works: without the file, `test --mode as-trained` trains the
    trial again exactly as in the search, and says so."""
    best = best_trial(study / "s.db")
    path = KEPT / f"trial-{best}.pt"
    damage(path, "garbage")
    path.unlink()
    assert main(["test", "base", "--mode", "as-trained", "--storage", "s.db"]) == 0
    out = capsys.readouterr().out
    assert f"trial {best} trained again exactly as in the search (no kept state" in out


# -- 5. read-only commands leave the folder as they found it ------------------------------------

LOOKERS = {
    "show": ["show", "base", "--storage", "s.db"],
    "studies": ["studies", "--storage", "s.db"],
    "report": ["report", "base", "--storage", "s.db", "--out", "../report"],
}


@pytest.mark.parametrize("command", list(LOOKERS))
def test_a_command_that_only_reads_leaves_no_wal_or_shm_file(
    study: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`show`, `studies` and `report` left s.db-wal and s.db-shm beside the study file."""
    before = stored(study), (study / "s.db").read_bytes()
    assert "s.db-wal" not in before[0][2]
    assert main(LOOKERS[command]) == 0, capsys.readouterr().err
    assert (stored(study), (study / "s.db").read_bytes()) == before


def test_show_beside_a_running_tune_reads_it_and_disturbs_nothing(
    study: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A `caviar tune` holding the file open with a trial running: `show` reads the running
    trial, removes none of the writer's files, and the writer goes on."""
    writer = caviar.Study.load("base", "s.db")
    (running,) = writer.ask()
    assert main(["show", "base", "--storage", "s.db"]) == 0
    assert "5 trials (1 running, 4 complete)" in capsys.readouterr().out
    assert {"s.db-wal", "s.db-shm"} <= set(os.listdir(study))
    writer.tell(running, 0.5)
    writer.close()
    assert sorted(os.listdir(study)) == ["base.toml", "caviar-models", "s.db"]
    assert [r[0] for r in trial_rows(study / "s.db")] == [0, 1, 2, 3, 4]


# -- 6. a study file edited by hand ------------------------------------------------------------

EDITS = {
    "a trial row deleted": (
        "DELETE FROM epochs WHERE trial_id = (SELECT trial_id FROM trials WHERE number = 1); "
        "DELETE FROM trials WHERE number = 1",
        "trial 1 is missing: trial numbers must run 0..3 without gaps",
    ),
    "a complete trial's value cleared": (
        "UPDATE trials SET value = NULL WHERE number = 2",
        "trial 2 is complete but its value is NULL: a complete trial must hold a finite value",
    ),
}
OPENERS = {
    "tune": ["tune", "base.toml", "--trials", "6", "--quiet"],
    "show": ["show", "base", "--storage", "s.db"],
    "test": ["test", "base", "--storage", "s.db"],
    "export": ["export", "base", "--storage", "s.db"],
    "report": ["report", "base", "--storage", "s.db"],
}


@pytest.mark.parametrize("command", list(OPENERS))
@pytest.mark.parametrize("edit", list(EDITS))
def test_a_study_file_edited_by_hand_is_refused_by_every_command(
    study: Path, edit: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A study with a trial row deleted was resumed: `tune` reported 40 trials and finished
    with 39 rows. Every command that opens the study now refuses it, naming the file, the
    trial and the rule, and changes nothing."""
    sql, problem = EDITS[edit]
    with contextlib.closing(sqlite3.connect(study / "s.db")) as connection:
        connection.executescript(sql)
    before = stored(study)
    line = refused(capsys, *OPENERS[command])
    assert line == (
        f"caviar: error: s.db: study 'base': {problem}; the file was edited by hand or damaged: "
        f"restore it from a copy, or use another study name"
    )
    assert stored(study) == before
