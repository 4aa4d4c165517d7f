"""The report's tables of facts: overview rows and the test-set history, from hand-made attrs."""

from __future__ import annotations

from caviar.core.records import FrozenTrial, TrialState
from caviar.report.facts import overview_rows, uses_of_the_test_set

FIRST = {
    "when": "2025-01-01T10:00:00+00:00",
    "mode": "retrain",
    "trial": 3,
    "accuracy": 0.95,
    "loss": 0.2,
    "how": "retrained",
    "uses": 1,
}
SECOND = {**FIRST, "when": "2025-01-02T10:00:00+00:00", "mode": "as-trained", "uses": 2}


def test_no_test_set_use() -> None:
    history = uses_of_the_test_set({})
    assert history.uses == () and history.count == 0


def test_every_test_set_use_is_listed() -> None:
    history = uses_of_the_test_set({"test": SECOND, "test_uses": [FIRST, SECOND]})
    assert [(u.when, u.mode, u.trial) for u in history.uses] == [
        ("2025-01-01T10:00:00+00:00", "retrain", 3),
        ("2025-01-02T10:00:00+00:00", "as-trained", 3),
    ]
    assert history.count == 2 and history.heading == "Test set (used 2 times)"
    assert history.note == ""


def test_a_study_from_before_the_history_still_shows_its_one_record() -> None:
    history = uses_of_the_test_set({"test": FIRST})
    assert [(u.when, u.accuracy, u.loss) for u in history.uses] == [
        ("2025-01-01T10:00:00+00:00", 0.95, 0.2)
    ]
    assert history.heading == "Test set (used once)"
    # used twice, but only the latest use was kept then: say so rather than hide it
    history = uses_of_the_test_set({"test": SECOND})
    assert len(history.uses) == 1 and history.heading == "Test set (used 2 times)"
    assert "only the latest" in history.note


def trial(number: int, state: TrialState) -> FrozenTrial:
    return FrozenTrial(number, state, {}, (), number, None, started=0.0, finished=2.5)


def test_overview_of_a_caviar_tune_study() -> None:
    attrs = {
        "data": {
            "source": "digits",
            "n_train": 240,
            "n_validation": 60,
            "n_test": 120,
            "split_hash": "0123456789abcdef0123",
        },
        "versions": {"caviar": "1"},
    }
    rows = dict(overview_rows([trial(0, TrialState.COMPLETE)], attrs, {"name": "random"}))
    assert rows["train / validation / test"] == "240 / 60 / 120"
    assert rows["data"] == "digits" and rows["validation split hash"] == "0123456789abcdef"
    assert rows["trials"] == 1 and rows["  complete"] == 1 and rows["wall time (s)"] == 2.5
    assert rows["sampler"] == '{"name": "random"}'


def test_overview_of_a_python_api_study_says_what_it_lacks() -> None:
    rows = dict(overview_rows([trial(0, TrialState.COMPLETE)], {"versions": {}}, {}))
    assert "train / validation / test" not in rows and "validation split hash" not in rows
    assert rows["data"] == "not recorded: this study was made with the Python API, not caviar tune"
