"""The test set: used once, after the search, and every result reproducible from its seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from caviar.models.evaluate import TestSetUsed, evaluate_on_test
from caviar.nn import Population
from caviar.search.job import tune


def config(tmp_path: Path) -> dict:
    return {
        "study": {"name": "e", "storage": str(tmp_path / "e.db"), "dtype": "float64"},
        "data": {"dataset": "digits", "train_size": 300, "test_size": 120},
        "space": {
            "lr": {"scale": "log", "low": 1e-3, "high": 3e-2},
            "hidden_units": 16,
            "epochs": 3,
            "batch_size": 32,
            "batch_norm": True,
            "dropout": 0.1,
        },
        "search": {"trials": 3},
    }


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_as_trained_evaluates_the_kept_searched_model_without_retraining(
    tmp_path: Path, dtype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path)
    cfg["study"]["dtype"] = dtype
    study = tune(cfg, progress=False, report=False)

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("as-trained must not train again")

    monkeypatch.setattr(Population, "fit", no_training)
    record = evaluate_on_test(study, mode="as-trained")
    best = study.best_trial
    assert record["trial"] == best.number and record["n_test"] == 120
    assert "kept final state" in record["how"]
    assert record["validation_accuracy_reproduced"] == best.value  # exactly, in every dtype
    assert 0.0 <= record["accuracy"] <= 1.0 and record["uses"] == 1
    assert study.attrs["test"] == record


def test_as_trained_without_a_kept_state_trains_again_and_says_so(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cfg["search"]["keep_models"] = 0
    study = tune(cfg, progress=False, report=False)
    record = evaluate_on_test(study, mode="as-trained")
    assert "trained again exactly as in the search (no kept state" in record["how"]
    # every member's result is a function of its seed: the retrained model scores the same
    assert record["validation_accuracy_reproduced"] == study.best_trial.value


def test_a_second_use_is_refused_then_counted_when_forced(tmp_path: Path) -> None:
    study = tune(config(tmp_path), progress=False, report=False)
    first = evaluate_on_test(study)
    assert first["mode"] == "retrain" and "training + validation (300 examples)" in first["how"]
    with pytest.raises(TestSetUsed, match=r"was used on .*accuracy .*--force"):
        evaluate_on_test(study)
    again = evaluate_on_test(study, force=True)
    assert again["uses"] == 2 and again["accuracy"] == first["accuracy"]  # deterministic


def test_bad_mode(tmp_path: Path) -> None:
    study = tune(config(tmp_path), progress=False, report=False)
    with pytest.raises(ValueError, match=r"mode: must be one of \['retrain', 'as-trained'\]"):
        evaluate_on_test(study, mode="peek")
