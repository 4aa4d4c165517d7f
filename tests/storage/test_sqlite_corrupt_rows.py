"""A row changed outside caviar (bad JSON, an unknown state, text in a number column) is a clear
StorageError naming the study, the trial and the column, and other studies stay readable."""

import re
import sqlite3
from pathlib import Path

import pytest

from caviar import EpochRecord, SearchSpace, SQLiteStorage, Study, Uniform
from caviar.storage import CorruptRowError, StorageError

SPACE = SearchSpace({"x": Uniform(0.0, 1.0)})


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """Two studies, 'a' and 'b', of two complete trials each, with curves."""
    path = tmp_path / "s.db"
    for name in ("a", "b"):
        study = Study.create(name, SPACE, storage=path)
        for trial in study.ask(2):
            study.report(trial, EpochRecord(1, val_accuracy=0.5))
            study.tell(trial, 0.5)
        study.close()
    return path


def corrupt(path: Path, sql: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute(sql)


TRIAL_1_OF_A = "WHERE number = 1 AND study_id = (SELECT study_id FROM studies WHERE name = 'a')"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            f"UPDATE trials SET params = '{{\"x\": 0.5' {TRIAL_1_OF_A}",
            "study 'a', trial 1: column 'params' holds '{\"x\": 0.5', which is not JSON",
        ),
        (
            f"UPDATE trials SET attrs = '[1, 2]' {TRIAL_1_OF_A}",
            "study 'a', trial 1: column 'attrs' holds '[1, 2]', which is not a JSON object",
        ),
        (
            f"UPDATE trials SET unit = '[\"half\"]' {TRIAL_1_OF_A}",
            "study 'a', trial 1: column 'unit' holds '[\"half\"]', which is not a JSON list of "
            "numbers",
        ),
        (
            f"UPDATE trials SET state = 'runing' {TRIAL_1_OF_A}",
            "study 'a', trial 1: column 'state' holds 'runing', which is not a trial state "
            "(queued, running, complete, pruned, failed, diverged)",
        ),
        (
            f"UPDATE trials SET value = 'high' {TRIAL_1_OF_A}",
            "study 'a', trial 1: column 'value' holds 'high', which is not a number",
        ),
        (
            f"UPDATE trials SET seed = 'x' {TRIAL_1_OF_A}",
            "study 'a', trial 1: column 'seed' holds 'x', which is not an integer",
        ),
        (
            "UPDATE epochs SET val_accuracy = 'n/a' WHERE trial_id = (SELECT trial_id FROM trials "
            f"{TRIAL_1_OF_A})",
            "study 'a', trial 1: column 'val_accuracy' of epoch 1 holds 'n/a', which is not a "
            "number",
        ),
    ],
    ids=["bad json", "attrs not an object", "unit not numbers", "state", "value", "seed", "epoch"],
)
def test_a_corrupt_trial_row_names_study_trial_and_column(
    path: Path, sql: str, message: str
) -> None:
    corrupt(path, sql)
    storage = SQLiteStorage(path)
    with pytest.raises(CorruptRowError, match="^" + re.escape(message)) as caught:
        Study.load("a", storage).trials()
    assert isinstance(caught.value, StorageError)
    assert "changed outside caviar" in str(caught.value)
    other = Study.load("b", storage)  # the other study reads as before
    assert [t.value for t in other.trials()] == [0.5, 0.5]
    assert storage.study_names() == ["a", "b"]


def test_a_corrupt_study_row_names_the_study_and_column(path: Path) -> None:
    corrupt(path, "UPDATE studies SET space = 'nope' WHERE name = 'a'")
    storage = SQLiteStorage(path, read_only=True)
    with pytest.raises(
        CorruptRowError, match="^" + re.escape("study 'a': column 'space' holds 'nope'")
    ):
        Study.load("a", storage)
    assert Study.load("b", storage).best_trial is not None


def test_a_long_bad_value_is_shortened_in_the_message(path: Path) -> None:
    corrupt(path, f"UPDATE trials SET params = '{'{' * 500}' {TRIAL_1_OF_A}")
    with pytest.raises(CorruptRowError) as caught:
        Study.load("a", SQLiteStorage(path)).trials()
    assert len(str(caught.value)) < 300


def test_telling_a_trial_whose_attrs_are_corrupt_changes_nothing(path: Path) -> None:
    study = Study.load("a", SQLiteStorage(path))
    (trial,) = study.ask()
    corrupt(path, "UPDATE trials SET attrs = '{' WHERE number = 2")
    with pytest.raises(
        CorruptRowError, match=re.escape("study 'a', trial 2: column 'attrs' holds '{'")
    ):
        study.tell(trial, 0.7)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT state FROM trials WHERE number = 2").fetchall() == [("running",)]
