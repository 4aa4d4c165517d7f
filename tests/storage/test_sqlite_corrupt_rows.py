"""A row changed outside caviar (bad JSON, an unknown state, text in a number column) is a clear
StorageError naming the study, the trial and the column, and other studies stay readable."""

import re
import sqlite3
from pathlib import Path

import pytest

from caviar import EpochRecord, SearchSpace, SQLiteStorage, Study, Uniform
from caviar.core.records import Trial
from caviar.storage import CorruptRowError, InMemoryStorage, StorageError

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


# -- a study whose rows were deleted or cleared by hand (contract point 8) ---------------------


@pytest.fixture
def five(tmp_path: Path) -> Path:
    """Study 'a' of five complete trials (0..4, values 0.1..0.5) and study 'b' of two."""
    path = tmp_path / "s.db"
    for name, n in (("a", 5), ("b", 2)):
        study = Study.create(name, SPACE, storage=path)
        for i, trial in enumerate(study.ask(n)):
            study.report(trial, EpochRecord(1, val_accuracy=0.5))
            study.tell(trial, (i + 1) / 10)
        study.close()
    return path


OF_A = "study_id = (SELECT study_id FROM studies WHERE name = 'a')"
DAMAGE = {
    "a row deleted": (
        f"DELETE FROM trials WHERE number = 2 AND {OF_A}",
        "trial 2 is missing: trial numbers must run 0..4 without gaps",
    ),
    "the first row deleted": (
        f"DELETE FROM trials WHERE number = 0 AND {OF_A}",
        "trial 0 is missing: trial numbers must run 0..4 without gaps",
    ),
    "a number moved past the end": (
        f"UPDATE trials SET number = 9 WHERE number = 3 AND {OF_A}",
        "trial 3 is missing: trial numbers must run 0..9 without gaps",
    ),
    "a negative number": (
        f"UPDATE trials SET number = -1 WHERE number = 4 AND {OF_A}",
        "trial number -1 is not allowed: trial numbers must run 0..N-1",
    ),
    "a value cleared": (
        f"UPDATE trials SET value = NULL WHERE number = 3 AND {OF_A}",
        "trial 3 is complete but its value is NULL: a complete trial must hold a finite value",
    ),
    "an infinite value": (
        f"UPDATE trials SET value = 9e999 WHERE number = 1 AND {OF_A}",
        "trial 1 is complete but its value is inf: a complete trial must hold a finite value",
    ),
}


@pytest.mark.parametrize("read_only", [False, True], ids=["writable", "read-only"])
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_study_with_a_trial_missing_or_valueless_is_refused_when_opened(
    five: Path, damage: str, read_only: bool
) -> None:
    """`tune` reported 40 trials and finished with 39 rows: such a study is refused at once,
    naming the file, the study, the trial and the rule, and the file is left as it was."""
    sql, problem = DAMAGE[damage]
    corrupt(five, sql)
    before = five.read_bytes()
    storage = SQLiteStorage(five, read_only=read_only)
    message = (
        f"{five}: study 'a': {problem}; the file was edited by hand or damaged: restore it from "
        f"a copy, or use another study name"
    )
    with pytest.raises(CorruptRowError, match="^" + re.escape(message) + "$"):
        Study.load("a", storage)
    assert [t.value for t in Study.load("b", storage).trials()] == [0.1, 0.2]
    storage.close()
    assert five.read_bytes() == before


def test_resuming_a_damaged_study_is_refused_and_adds_no_trial(five: Path) -> None:
    corrupt(five, f"DELETE FROM trials WHERE number = 2 AND {OF_A}")
    with pytest.raises(CorruptRowError, match="trial 2 is missing"):
        Study.create("a", SPACE, storage=five, load_if_exists=True)
    with sqlite3.connect(five) as db:
        numbers = db.execute(f"SELECT number FROM trials WHERE {OF_A} ORDER BY number")
        assert [n for (n,) in numbers] == [0, 1, 3, 4]


def test_the_other_numbers_and_values_a_study_may_hold_are_accepted(five: Path) -> None:
    """Trials not complete may have no value; an empty study has no numbers at all."""
    study = Study.load("a", SQLiteStorage(five))
    (trial,) = study.ask()
    study.tell(trial, None, state="failed")
    Study.create("empty", SPACE, storage=five)
    assert [t.value for t in Study.load("a", five).trials()][-1] is None
    assert Study.load("empty", five).trials() == []
    study.close()


def test_an_in_memory_study_is_checked_the_same_way() -> None:
    """The contract's default check: a gap left through the storage itself."""
    storage = InMemoryStorage()
    study = Study.create("m", SPACE, storage=storage)
    trials = study.ask(3)
    storage.create_trials("m", [Trial(7, {"x": 0.5}, (0.5,), 1)], owner=None)
    for trial in trials:
        study.tell(trial, 0.5)
    message = "study 'm': trial 3 is missing: trial numbers must run 0..7 without gaps"
    with pytest.raises(CorruptRowError, match="^" + re.escape(message)):
        Study.load("m", storage)
