"""The test set: used once, after the search, and every result reproducible from its seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from caviar.evaluate import TestSetUsed, evaluate_on_test
from caviar.tune import tune


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


def test_as_trained_rebuilds_the_searched_model_exactly(tmp_path: Path) -> None:
    study = tune(config(tmp_path), progress=False, report=False)
    record = evaluate_on_test(study, mode="as-trained")
    best = study.best_trial
    assert record["trial"] == best.number and record["n_test"] == 120
    assert record["validation_accuracy_reproduced"] == best.value
    assert 0.0 <= record["accuracy"] <= 1.0 and record["uses"] == 1
    assert study.attrs["test"] == record


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
