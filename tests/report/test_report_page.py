"""The written report: its HTML tables and sections, for studies made by the Python API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from caviar.core.records import EpochRecord
from caviar.report import render, write_report
from caviar.samplers import CoarseToFineSampler
from caviar.space import Choice, LogUniform, OneMinusLog
from caviar.study import Study


def api_study(name: str = "api") -> Study:
    """A coarse-to-fine study told by hand, as a user of ask/tell would: no data attrs."""
    space = {
        "lr": LogUniform(1e-4, 1e-1),
        "beta1": OneMinusLog(0.8, 0.99),
        "act": Choice(["relu", "tanh"]),
    }
    sampler = CoarseToFineSampler(rounds=2, per_round=6, keep=2, seed=0)
    study = Study.create(name, space, sampler=sampler)
    for _ in range(2):
        for t in study.ask(6):
            score = 1.0 - abs(t.unit[0] - 0.6) / 2
            for epoch in (1, 2, 3):
                study.report(
                    t,
                    EpochRecord(
                        epoch,
                        train_loss=1.0 / epoch,
                        train_accuracy=score * epoch / 3,
                        val_loss=1.2 / epoch,
                        val_accuracy=score * epoch / 3,
                    ),
                )
            study.tell(t, score)
    return study


def test_a_table_with_empty_headers_has_no_header_row() -> None:
    assert "<thead" not in render.table(["", ""], [("trials", 3)])
    assert "<thead><tr><th>a</th><th>b</th></tr></thead>" in render.table(["a", "b"], [(1, 2)])


@pytest.mark.slow
def test_report_of_a_python_api_study(tmp_path: Path) -> None:
    page = write_report(api_study(), tmp_path).read_text(encoding="utf-8")
    assert "? / ? / ?" not in page
    assert "not recorded: this study was made with the Python API, not caviar tune" in page
    assert "<thead><tr><th></th>" not in page  # no empty header rows
    # the rounds table shows a choice's kept options, not booleans of unit coordinates
    assert not re.search(r"<td>(True|False)</td><td>(True|False)</td>", page)
    assert "all (relu, tanh)" in page
    assert "Best validation accuracy so far" in page and (tmp_path / "best.png").is_file()
    for figure in ("scatter.png", "curves.png", "rounds.png"):
        assert (tmp_path / figure).is_file()
    assert "The test set has not been used" in page
    assert "caviar test" not in page  # it would fail: such a study records no data to test on


@pytest.mark.slow
def test_report_lists_every_use_of_the_test_set(tmp_path: Path) -> None:
    study = api_study()
    first = {"when": "2025-01-01T10:00:00+00:00", "mode": "retrain", "trial": 3, "uses": 1}
    first |= {"accuracy": 0.9, "loss": 0.3, "how": "retrained"}
    second = {**first, "when": "2025-02-01T10:00:00+00:00", "mode": "as-trained", "uses": 2}
    study.set_attrs({"test": second, "test_uses": [first, second]})
    page = write_report(study, tmp_path).read_text(encoding="utf-8")
    assert "used once" not in page and "Test set (used 2 times)" in page
    assert "2025-01-01T10:00:00+00:00" in page and "2025-02-01T10:00:00+00:00" in page


@pytest.mark.slow
def test_report_of_a_study_with_only_the_old_test_record(tmp_path: Path) -> None:
    study = api_study()
    old = {"when": "2024-06-01T08:00:00+00:00", "mode": "retrain", "trial": 1, "uses": 1}
    study.set_attrs({"test": old | {"accuracy": 0.8, "loss": 0.5, "n_test": 100}})
    page = write_report(study, tmp_path).read_text(encoding="utf-8")
    assert "Test set (used once)" in page and "2024-06-01T08:00:00+00:00" in page
