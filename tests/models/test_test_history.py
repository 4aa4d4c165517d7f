"""Every use of the test set is kept, with its time, and the report lists them all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from caviar.models.evaluate import evaluate_on_test
from caviar.report import write_report
from caviar.search.job import tune
from caviar.study import Study


def config(tmp_path: Path) -> dict[str, Any]:
    return {
        "study": {"name": "h", "storage": str(tmp_path / "h.db"), "dtype": "float64"},
        "data": {"dataset": "digits", "train_size": 200, "test_size": 60},
        "space": {"lr": {"scale": "log", "low": 1e-3, "high": 3e-2}, "hidden_units": 8},
        "search": {"trials": 2},
    }


@pytest.fixture
def study(tmp_path: Path) -> Study:
    cfg = config(tmp_path)
    cfg["space"]["epochs"] = 2
    return tune(cfg, progress=False, report=False)


def test_a_forced_second_use_keeps_the_first(study: Study, tmp_path: Path) -> None:
    first = evaluate_on_test(study)
    second = evaluate_on_test(study, mode="as-trained", force=True)
    attrs = study.attrs
    assert attrs["test_uses"] == [first, second]
    assert attrs["test"] == second  # the latest, as before (caviar show reads it)
    assert [u["uses"] for u in attrs["test_uses"]] == [1, 2]
    assert all({"when", "mode", "trial", "accuracy", "loss"} <= set(u) for u in [first, second])
    page = write_report(study, tmp_path / "r").read_text(encoding="utf-8")
    assert "Test set (used 2 times)" in page and "used once" not in page
    assert first["when"] in page and "as-trained" in page and "retrain" in page


def test_a_study_from_before_the_history_keeps_its_old_record(study: Study) -> None:
    old = {"trial": 0, "mode": "retrain", "accuracy": 0.5, "loss": 1.0, "uses": 1}
    old["when"] = "2024-06-01T08:00:00+00:00"
    study.set_attrs({"test": old})  # what evaluate_on_test stored before the history
    again = evaluate_on_test(study, force=True)
    assert study.attrs["test_uses"] == [old, again] and again["uses"] == 2
