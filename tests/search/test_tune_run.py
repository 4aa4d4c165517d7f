"""`caviar.tune` end to end on the embedded digits: a study, its curves, resume, honesty."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import torch

from caviar.core.records import Trial
from caviar.search.job import tune
from caviar.study import Study, TrialState


def tiny(tmp_path: Path, name: str = "t", **search: Any) -> dict[str, Any]:
    return {
        "study": {"name": name, "storage": str(tmp_path / "s.db"), "seed": 0},
        "data": {"dataset": "digits", "train_size": 300, "test_size": 100},
        "space": {
            "lr": {"scale": "log", "low": 1e-3, "high": 1e-1},
            "hidden_units": {"scale": "int", "low": 8, "high": 24},
            "epochs": 3,
            "batch_size": 32,
        },
        # random search, every trial to its end: these trials' ends are worked out by hand
        # (caviar's default, tpe with halving: tests/search/test_default_search.py)
        "search": {"sampler": "random", "trials": 6, **search},
    }


def values(study: Study) -> dict[int, float | None]:
    return {t.number: t.value for t in study.trials(curves=False)}


@pytest.mark.slow
def test_a_study_records_every_trial_its_curve_and_where_it_ran(tmp_path: Path) -> None:
    study = tune(tiny(tmp_path), progress=False)
    trials = study.trials()
    assert [t.number for t in trials] == list(range(6))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    for t in trials:
        assert [r.epoch for r in t.curve] == [1, 2, 3]
        assert t.value == t.curve[-1].val_accuracy  # the book's ranking: last epoch
        assert 0.0 <= t.value <= 1.0
        assert t.attrs["device"] == "cpu" and t.attrs["dtype"] == "float32"
        assert 8 <= t.params["hidden_units"] <= 24 and t.params["epochs"] == 3
    attrs = study.attrs
    assert attrs["data"]["n_train"] == 240 and attrs["data"]["n_validation"] == 60
    assert len(attrs["data"]["split_hash"]) == 64
    assert {"caviar", "torch", "numpy", "python"} <= set(attrs["versions"])
    assert "test" not in attrs  # the search never touches the test set
    report = tmp_path / "caviar-reports" / "t" / "index.html"
    assert report.exists() and '"number":5' in report.read_text(encoding="utf-8")
    assert not (report.parent / "curves.png").exists()  # PNGs only with `caviar report --png`


def test_the_same_config_gives_the_same_results(tmp_path: Path) -> None:
    a = tune(tiny(tmp_path / "a"), progress=False, report=False)
    b = tune(tiny(tmp_path / "b"), progress=False, report=False)
    assert values(a) == values(b)
    assert [t.params for t in a.trials()] == [t.params for t in b.trials()]


def test_running_again_with_a_larger_budget_continues_the_study(tmp_path: Path) -> None:
    first = values(tune(tiny(tmp_path, trials=4), progress=False, report=False))
    # the budget is part of the definition only through the sampler: random search continues
    study = tune(tiny(tmp_path, trials=6), progress=False, report=False)
    now = values(study)
    assert len(now) == 6 and {n: now[n] for n in first} == first
    straight = values(tune(tiny(tmp_path / "straight"), progress=False, report=False))
    assert now == straight  # continuing gives what one run gives


def test_trials_of_a_dead_run_are_requeued_and_finished(tmp_path: Path) -> None:
    config = tiny(tmp_path)
    study = tune(
        {**config, "search": {**config["search"], "trials": 2}}, progress=False, report=False
    )
    dead = f"{socket.gethostname()}:999999999:dead"
    space = study.space
    params = space.from_unit((0.5, 0.5))
    study.storage.create_trials(
        "t",
        [
            Trial(2, params, space.to_unit(params), 7),
            Trial(3, params, space.to_unit(params), 8),
        ],
        owner=dead,
    )
    study = tune(config, progress=False, report=False)
    trials = study.trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    assert trials[2].attempt == 1 and trials[3].attempt == 1


def test_a_changed_definition_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    tune(tiny(tmp_path), progress=False, report=False)
    changed = tiny(tmp_path)
    changed["space"]["lr"] = {"scale": "log", "low": 1e-4, "high": 1e-1}
    with pytest.raises(
        ValueError, match=r"study 't': exists .* another definition: space\.lr\.low: stored 0\.001"
    ):
        tune(changed, progress=False, report=False)
    other_data = tiny(tmp_path)
    other_data["data"]["train_size"] = 400
    with pytest.raises(ValueError, match=r"^data: study 't' was run on other examples"):
        tune(other_data, progress=False, report=False)


def test_diverging_trials_are_recorded_not_fatal(tmp_path: Path) -> None:
    config = tiny(tmp_path)
    config["space"]["lr"] = {"choice": [0.05, 1e6]}
    config["space"]["optimizer"] = "sgd"
    study = tune(config, progress=False, report=False)
    states = {t.params["lr"]: t.state for t in study.trials(curves=False)}
    assert states[1e6] is TrialState.DIVERGED and states[0.05] is TrialState.COMPLETE
    diverged = [t for t in study.trials(curves=False) if t.state is TrialState.DIVERGED]
    assert all(t.value is None and t.attrs["diverged_epoch"] >= 1 for t in diverged)
    assert study.best_trial is not None and study.best_trial.params["lr"] == 0.05


@pytest.mark.slow
def test_coarse_to_fine_rounds_are_recorded(tmp_path: Path) -> None:
    config = tiny(tmp_path, sampler="coarse_to_fine", trials=8, rounds=2, keep=2)
    study = tune(config, progress=False)
    rounds = study.rounds()
    assert [r.index for r in rounds] == [0, 1]
    assert rounds[0].box == ((0.0, 1.0), (0.0, 1.0))
    (lo, hi), _ = rounds[1].box
    assert hi - lo < 1.0
    page = (tmp_path / "caviar-reports" / "t" / "index.html").read_text(encoding="utf-8")
    assert '"title":"Coarse to fine"' in page  # the rounds' boxes


def test_objective_best_takes_the_best_epoch(tmp_path: Path) -> None:
    study = tune(tiny(tmp_path, objective="best"), progress=False, report=False)
    for t in study.trials():
        assert t.value == max(r.val_accuracy for r in t.curve)


def test_a_transient_failure_requeues_the_population_instead_of_failing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    calls = {"n": 0}
    original = Study.report_epochs

    def flaky(self: Study, rows: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise sqlite3.OperationalError("database is locked")
        original(self, rows)

    monkeypatch.setattr(Study, "report_epochs", flaky)
    with pytest.raises(sqlite3.OperationalError):
        tune(tiny(tmp_path), progress=False, report=False)
    monkeypatch.setattr(Study, "report_epochs", original)
    study = tune(tiny(tmp_path), progress=False, report=False)
    trials = study.trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    assert all(t.attempt == 1 for t in trials)  # every trial was requeued once, none failed
    straight = values(tune(tiny(tmp_path / "straight"), progress=False, report=False))
    assert values(study) == straight


def test_members_are_told_as_soon_as_they_finish(tmp_path: Path) -> None:
    config = tiny(tmp_path)
    config["space"]["epochs"] = {"choice": [1, 3]}
    study = tune(config, progress=False, report=False)
    trials = study.trials()
    short = [t for t in trials if t.params["epochs"] == 1]
    long = [t for t in trials if t.params["epochs"] == 3]
    assert short and long
    assert all(len(t.curve) == 1 for t in short) and all(len(t.curve) == 3 for t in long)
    assert max(t.finished for t in short) < min(t.finished for t in long)


def test_running_out_of_memory_mid_epoch_requeues_the_group_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The device runs out of memory in a trained group's second epoch: its trials go back
    to the queue with a note and train again from their seeds, in smaller groups; every trial
    completes with the values of a run that never ran out."""
    from caviar.nn.group import Group

    original = Group.train_step
    seen = {"n": 0}

    def train_step(self: Group, *args: Any) -> Any:
        if self.n_members >= 3 and self.steps_t.max() >= 10:  # mid-epoch 2, after a first
            seen["n"] += 1
            if seen["n"] == 1:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return original(self, *args)

    monkeypatch.setattr(Group, "train_step", train_step)
    study = tune(tiny(tmp_path, population=6), progress=True, report=False)
    monkeypatch.undo()
    assert seen["n"] >= 1
    trials = study.trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    assert all(len(t.curve) == 3 for t in trials)
    err = capsys.readouterr().err
    assert "the device ran out of memory in a group of 6 members mid-epoch" in err
    assert "go back to the queue, to train again" in err
    straight = values(tune(tiny(tmp_path / "straight", population=6), progress=False, report=False))
    assert values(study) == straight
