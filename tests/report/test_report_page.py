"""The written report: one offline page holding the study's JSON, for studies made by the Python
API (the page in a real browser: test_report_browser.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from caviar.core.records import EpochRecord, TrialState
from caviar.report import write_report
from caviar.report.page import page_html, study_data
from caviar.samplers import CoarseToFineSampler
from caviar.space import Choice, LogUniform, OneMinusLog
from caviar.study import Study

#: what the page holds its study's data in
DATA = re.compile(r'<script type="application/json" id="study-data">(.*?)</script>', re.S)


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


def refuse(name: str) -> Any:
    raise AssertionError(f"the page's JSON holds {name}: not strict JSON")


def held_data(page: str) -> dict[str, Any]:
    """The study's JSON as the page holds it, read strictly (no NaN or Infinity)."""
    (found,) = DATA.findall(page)
    data: dict[str, Any] = json.loads(found, parse_constant=refuse)
    return data


def page_of(study: Study) -> str:
    """The page without the (large, slow to compute) importance and with a stand-in plotly.js."""
    trials, board = study.trials(), study.leaderboard(curves=True)
    return page_html(study_data(study, trials, board, None), "/* plotly.js */")


def test_the_page_holds_every_trial_once_as_strict_json() -> None:
    page = page_of(api_study())
    data = held_data(page)
    assert [t["number"] for t in data["trials"]] == list(range(12))
    assert sorted(data["trial_table"]["numbers"]) == list(range(12))
    assert page.count('id="study-data"') == 1
    # every trial's hover text names it and its searched values, as caviar prints them
    seven = data["trials"][7]
    assert seven["hover"].startswith("<b>trial 7</b> (complete)")
    assert f"lr = {seven['params']['lr']:.4g}" in seven["hover"] and "act = " in seven["hover"]


def test_the_page_works_offline_on_a_phone_and_shows_figures_first() -> None:
    page = page_of(api_study())
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert not re.search(r"<script[^>]*\bsrc=", page)  # every script is inline
    assert not re.search(r"<link[^>]*https?://", page)
    assert "/* plotly.js */" in page  # inlined, not fetched
    assert page.index('id="figures"') < page.index('id="tables"')
    figures = held_data(page)["figures"]
    assert all(figures[k] for k in ("best_so_far", "scatter", "parallel", "curves"))


def test_nothing_in_the_data_can_end_its_script_element() -> None:
    study = api_study("a")
    study.set_attrs({"test": {"when": "</script><script>alert(1)</script>", "uses": 1}})
    page = page_of(study)
    assert "alert(1)" in page and "</script><script>alert" not in page
    assert held_data(page)["sections"][2]["rows"][0][0].startswith("</script>")


def test_the_curves_say_where_training_and_validation_are_measured() -> None:
    note = held_data(page_of(api_study()))["figures"]["curves"]["note"]
    assert "training (dashed) from the epoch's own training pass, in train mode" in note
    assert "mean over the epoch's mini-batches" in note
    assert "Validation (solid) is measured in eval mode" in note
    study = api_study("full")
    study.set_attrs({"config": {"search": {"train_metrics": "full"}}})
    note = held_data(page_of(study))["figures"]["curves"]["note"]
    assert "training (dashed) from a pass over the training set in eval mode" in note


def test_a_trial_far_below_the_rest_is_on_the_best_so_far_axis() -> None:
    study = Study.create("low", {"lr": LogUniform(1e-4, 1e-1)})
    for value in (0.90, 0.93, 0.28, 0.95):
        study.tell(study.ask(1)[0], value)
    study.tell(study.ask(1)[0], state=TrialState.DIVERGED)
    data = held_data(page_of(study))
    figure = data["figures"]["best_so_far"]
    low, high = figure["range"]
    assert figure["values"] == [0.90, 0.93, 0.28, 0.95, None]  # a diverged trial has no value
    assert low < 0.28 and high > 0.95
    assert data["trials"][4]["value"] is None and data["trials"][4]["state"] == "diverged"
    assert "1 trial diverged or failed: no score to draw" in figure["note"]


@pytest.mark.slow
def test_report_of_a_python_api_study(tmp_path: Path) -> None:
    page = write_report(api_study(), tmp_path).read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html"]  # no PNG unless asked
    data = held_data(page)
    sections = {s["id"]: s for s in data["sections"]}
    overview = dict(map(tuple, sections["overview"]["rows"]))
    assert (
        overview["data"] == "not recorded: this study was made with the Python API, not caviar tune"
    )
    assert sections["overview"]["header"] == ["", ""]  # drawn without a header row
    # the rounds table shows a choice's kept options, not booleans of unit coordinates
    rounds = sections["rounds"]["rows"]
    assert ["0", "act", "all (relu, tanh)"] in [row[:3] for row in rounds]
    assert not any(c in ("True", "False") for row in rounds for c in row)
    assert data["figures"]["importance"]["names"][0] == "lr"  # 12 trials: enough to rank
    assert sections["test"]["note"].startswith("The test set has not been used")
    assert "caviar test" not in sections["test"]["note"]  # such a study records no data for it


@pytest.mark.slow
def test_report_with_png_writes_the_figures_beside_the_page(tmp_path: Path) -> None:
    page = write_report(api_study(), tmp_path, png=True).read_text(encoding="utf-8")
    pngs = held_data(page)["pngs"]
    assert [p["file"] for p in pngs] == [
        "best.png",
        "scatter.png",
        "importance.png",
        "curves.png",
        "rounds.png",
    ]
    assert all(p["alt"] and (tmp_path / p["file"]).stat().st_size > 1000 for p in pngs)


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


def test_report_of_a_study_with_only_the_old_test_record() -> None:
    study = api_study()
    old = {"when": "2024-06-01T08:00:00+00:00", "mode": "retrain", "trial": 1, "uses": 1}
    study.set_attrs({"test": old | {"accuracy": 0.8, "loss": 0.5, "n_test": 100}})
    (test,) = (s for s in held_data(page_of(study))["sections"] if s["id"] == "test")
    assert test["title"] == "Test set (used once)"
    assert test["rows"] == [["2024-06-01T08:00:00+00:00", "retrain", "1", "0.8", "0.5", "100", ""]]
