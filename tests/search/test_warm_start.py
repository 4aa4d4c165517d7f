"""Warm start (issue 24): a study re-tuned on changed data begins with the old study's best
configurations, trained again, records where each proposal came from, and hands the old trials
to a sampler that learns from them; a continued run queues nothing again. Expected values come
from the old study itself, read apart."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

import caviar
from caviar.cli.main import main
from caviar.core.errors import InvalidValue
from caviar.report.data import warm_start_rows
from caviar.search.config import config_from_mapping
from caviar.study import Study

BASE: dict[str, Any] = {
    "study": {"seed": 0, "threads": 1},
    "data": {"dataset": "digits", "train_size": 400},
    "space": {
        "lr": {"scale": "log", "low": 1e-3, "high": 1e-1},
        "hidden_units": {"scale": "int", "low": 8, "high": 32},
        "batch_norm": {"choice": [False, True]},
        "epochs": 2,
        "batch_size": 50,
    },
    "search": {"trials": 8, "population": 4, "sampler": "tpe"},
}


def config(storage: Path, name: str, **search: Any) -> dict[str, Any]:
    c = copy.deepcopy(BASE)
    c["study"].update(name=name, storage=str(storage))
    c["search"].update(search)
    return c


@pytest.fixture(scope="module")
def old(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 8-trial study 'old' on the first 400 digits."""
    storage = tmp_path_factory.mktemp("warm") / "s.db"
    caviar.tune(config(storage, "old"), progress=False, report=False).close()
    return storage


def copy_of(old: Path, tmp_path: Path) -> Path:
    path = tmp_path / "s.db"
    path.write_bytes(old.read_bytes())
    return path


@pytest.mark.slow
def test_the_old_best_configurations_go_first_and_say_where_they_came_from(
    old: Path, tmp_path: Path
) -> None:
    storage = copy_of(old, tmp_path)
    source = Study.load("old", storage)
    best = source.leaderboard(3)  # the old study's own ranking
    changed = config(storage, "new", warm_start="old", warm_start_top=3)
    changed["data"]["train_size"] = 600  # the data changed: re-tune
    study = caviar.tune(changed, progress=False, report=False)
    trials = study.trials(curves=False)
    for new, was in zip(trials[:3], best, strict=True):
        assert {n: new.params[n] for n in ("lr", "hidden_units", "batch_norm")} == {
            n: was.params[n] for n in ("lr", "hidden_units", "batch_norm")
        }
        assert new.attrs["proposed_by"] == "warm start"
        assert new.attrs["warm_start"] == {"study": "old", "trial": was.number, "value": was.value}
        assert new.state.is_finished
    assert {t.attrs["proposed_by"] for t in trials[3:]} <= {"tpe", "random"}
    recorded = study.attrs["warm_start"]
    assert recorded["queued"] == [t.number for t in best]
    finished = [t for t in source.trials(curves=False) if t.state.is_finished]
    assert [p["trial"] for p in recorded["prior"]] == [t.number for t in finished]
    assert recorded["outside"] == 0
    # the report's table: old against new
    name, rows = warm_start_rows(trials)
    assert name == "old"
    assert [(r.old_trial, r.old_value, r.new_trial) for r in rows] == [
        (t.number, t.value, k) for k, t in enumerate(best)
    ]
    study.close()
    source.close()


@pytest.mark.slow
def test_show_sets_each_old_value_against_the_new(
    old: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = copy_of(old, tmp_path)
    caviar.tune(config(storage, "new", warm_start="old", warm_start_top=2), progress=False).close()
    capsys.readouterr()
    assert main(["show", "new", "--storage", str(storage)]) == 0
    out = capsys.readouterr().out
    study = Study.load("new", storage)
    lines = [
        f"    its trial {t.attrs['warm_start']['trial']} (val acc "
        f"{t.attrs['warm_start']['value']:.4f}) is trial {t.number} here: {t.state.value}, "
        f"val acc {'-' if t.value is None else format(t.value, '.4f')}"
        for t in study.trials(curves=False)[:2]
    ]
    assert "  warm start from study 'old': its best configurations, trained again here" in out
    for line in lines:
        assert line + "\n" in out
    study.close()


@pytest.mark.slow
def test_the_old_trials_count_for_tpe_as_finished_before_the_studys_own(
    old: Path, tmp_path: Path
) -> None:
    """With 8 old trials and n_startup_trials 10, the model takes over after 2 of the new
    study's own trials finish (without the warm start, after 10)."""
    storage = copy_of(old, tmp_path)
    study = caviar.tune(
        config(storage, "new", warm_start="old", warm_start_top=1, population=1),
        progress=False,
        report=False,
    )
    trials = study.trials(curves=False)
    assert [t.attrs["proposed_by"] for t in trials] == ["warm start", "random", *["tpe"] * 6]
    model = study.sampler._model
    marked = [t.user_attrs.get("warm_start") for t in model.study.get_trials(deepcopy=False)]
    assert marked[:8] == [t.number for t in Study.load("old", storage).trials(curves=False)]
    assert all(m is None for m in marked[8:])
    study.close()


@pytest.mark.slow
def test_a_continued_study_queues_nothing_again_and_needs_the_old_one_no_more(
    old: Path, tmp_path: Path
) -> None:
    storage = copy_of(old, tmp_path)
    first = config(storage, "new", warm_start="old", warm_start_top=2, trials=4)
    caviar.tune(first, progress=False, report=False).close()
    again = config(storage, "new", warm_start="old", warm_start_top=2, trials=8)
    study = caviar.tune(again, progress=False, report=False)
    trials = study.trials(curves=False)
    assert len(trials) == 8
    assert [t.attrs["proposed_by"] == "warm start" for t in trials].count(True) == 2
    study.close()


@pytest.mark.slow
def test_old_trials_outside_the_new_space_are_left_out_and_counted(
    old: Path, tmp_path: Path
) -> None:
    storage = copy_of(old, tmp_path)
    narrow = config(storage, "narrow", warm_start="old")
    narrow["space"]["hidden_units"] = {"scale": "int", "low": 8, "high": 16}
    study = caviar.tune(narrow, progress=False, report=False)
    inside = [
        t
        for t in Study.load("old", storage).trials(curves=False)
        if t.state.is_finished and t.params["hidden_units"] <= 16
    ]
    recorded = study.attrs["warm_start"]
    assert recorded["outside"] == 8 - len(inside) > 0
    assert [p["trial"] for p in recorded["prior"]] == [t.number for t in inside]
    assert all(t.params["hidden_units"] <= 16 for t in study.trials(curves=False))
    study.close()


REFUSED = {
    "no such study": (
        {"warm_start": "missing"},
        "search.warm_start: no study 'missing' in ",
    ),
    "its own name": ({"warm_start": "new"}, "search.warm_start: must name another study"),
    "a grid": (
        {"warm_start": "old", "sampler": "grid", "trials": None},
        "search.warm_start: a grid's trials are its points",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize(("search", "start"), REFUSED.values(), ids=REFUSED)
def test_a_warm_start_that_cannot_be_is_refused_in_one_line_writing_nothing(
    search: dict[str, Any],
    start: str,
    old: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    storage = copy_of(old, tmp_path)
    c = config(storage, "new", **search)
    c["search"] = {k: v for k, v in c["search"].items() if v is not None}
    path = tmp_path / "new.toml"
    path.write_text(to_toml(c))
    assert main(["tune", str(path), "--quiet", "--no-report"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"caviar: error: {start}") and "\n" not in err
    assert Study.load("old", storage).storage.study_names() == ["old"]  # nothing created


@pytest.mark.slow
def test_a_study_that_already_has_trials_is_not_warm_started(old: Path, tmp_path: Path) -> None:
    storage = copy_of(old, tmp_path)
    caviar.tune(config(storage, "new", trials=2), progress=False, report=False).close()
    with pytest.raises(InvalidValue, match="study 'new' already has 2 trials; a warm start"):
        caviar.tune(config(storage, "new", trials=4, warm_start="old"), progress=False)


def test_warm_start_top_without_a_warm_start_is_refused() -> None:
    with pytest.raises(
        InvalidValue,
        match="^"
        + re.escape("search.warm_start_top: only read when warm_start is given, but ")
        + re.escape("search.warm_start is None"),
    ):
        config_from_mapping(config(Path("x.db"), "new", warm_start_top=3))


def to_toml(c: dict[str, Any]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    return "".join(
        f"[{section}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in table.items())
        for section, table in c.items()
    )
