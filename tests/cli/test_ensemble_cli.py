"""`caviar test --ensemble K` and `caviar export --ensemble K` on a tiny real study.

The oracle: each kept member loaded on its own, its softmax over the test set taken with
``torch.softmax``, the K of them averaged, scored by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from caviar.cli.main import main
from caviar.models.evaluate import ensemble_table
from caviar.models.model import CaviarModel
from caviar.report import write_report
from caviar.search.config import config_from_mapping
from caviar.search.job import prepare_data, tune
from caviar.search.kept import kept_state_path, read_state
from caviar.storage import SQLiteStorage
from caviar.study import Study


@pytest.fixture(scope="module")
def study_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("ensemble") / "e.db"
    config: dict[str, Any] = {
        "study": {"name": "e", "storage": str(db), "seed": 0},
        "data": {"dataset": "digits", "train_size": 300},
        "space": {"lr": {"scale": "log", "low": 3e-3, "high": 1e-1}, "hidden_units": 16},
        # random search, every trial to its end: the ensemble picks from four complete trials
        "search": {"sampler": "random", "trials": 4, "keep_models": 3},
    }
    config["space"].update(epochs=3, batch_size=32)
    tune(config, progress=False, report=False).close()
    return db


def opened(db: Path) -> Study:
    return Study.load("e", SQLiteStorage(db))


def members_mean_softmax(db: Path, trials: list[int], x: torch.Tensor) -> torch.Tensor:
    """The oracle: each kept member on its own, softmax, then the mean [B, C]."""
    with torch.no_grad():
        probs = [
            torch.softmax(CaviarModel(read_state(kept_state_path(db, "e", n)))(x), dim=1)
            for n in trials
        ]
    return torch.stack(probs).mean(dim=0)


@pytest.mark.slow
def test_caviar_test_ensemble_scores_and_records_the_mean(study_db, tmp_path, capsys) -> None:
    study = opened(study_db)
    board = study.leaderboard()
    top = [t.number for t in board[:3]]
    data = prepare_data(config_from_mapping(study.attrs["config"]))
    study.close()

    assert main(["test", "e", "--storage", str(study_db), "--ensemble", "3"]) == 0
    printed = capsys.readouterr().out.splitlines()
    study = opened(study_db)
    uses = study.attrs["test_uses"]
    (record,) = uses
    assert study.attrs["test"] == record
    assert record["mode"] == "ensemble" and record["ensemble"] == 3 and record["trial"] == top
    assert record["uses"] == 1 and record["n_test"] == len(data.dataset.y_test)

    # the test score is the members' own softmax outputs, averaged and scored by hand
    x_test = torch.as_tensor(data.dataset.x_test)
    y_test = torch.as_tensor(data.dataset.y_test)
    p = members_mean_softmax(study_db, top, x_test)
    assert record["accuracy"] == (p.argmax(dim=1) == y_test).double().mean().item()
    expected_loss = -p[torch.arange(len(y_test)), y_test].log().mean().item()
    assert record["loss"] == pytest.approx(expected_loss, rel=1e-5)
    # validation: the ensemble's own, and each member's, which is what the search found
    x_val, y_val = torch.as_tensor(data.split.x_val), torch.as_tensor(data.split.y_val)
    p_val = members_mean_softmax(study_db, top, x_val)
    assert record["validation_accuracy"] == (p_val.argmax(dim=1) == y_val).double().mean().item()
    assert [m["trial"] for m in record["members"]] == top
    for member, trial in zip(record["members"], board[:3], strict=True):
        assert member["validation_accuracy"] == trial.value
        assert member["validation_accuracy_in_search"] == trial.value

    # each member's own test accuracy, in the same use: the model alone, scored by hand
    alone = [
        (members_mean_softmax(study_db, [n], x_test).argmax(dim=1) == y_test).double().mean().item()
        for n in top
    ]
    assert [m["test_accuracy"] for m in record["members"]] == pytest.approx(alone, abs=1e-12)

    # the table: one row per member (val acc, test acc), then the ensemble's, then whether
    # it beat its best member
    assert printed[0].split() == ["trial", "val", "acc", "test", "acc"]
    for line, trial, accuracy in zip(printed[1:4], board[:3], alone, strict=True):
        assert line.split() == [str(trial.number), f"{trial.value:.4f}", f"{accuracy:.4f}"]
    assert printed[4].split() == [
        "ensemble",
        "of",
        "3",
        f"{record['validation_accuracy']:.4f}",
        f"{record['accuracy']:.4f}",
    ]
    best = max(alone)
    verdict = (
        "beat"
        if record["accuracy"] > best
        else "tied"
        if record["accuracy"] == best
        else "did not beat"
    )
    assert printed[5] == (
        f"the ensemble {verdict} its best member on the test set (trial "
        f"{top[alone.index(best)]}, {best:.4f}): {record['accuracy'] - best:+.4f}"
    )
    assert printed[6].startswith(f"test accuracy {record['accuracy']:.4f} (loss ")

    # the report lists the use as it lists any other
    page = write_report(study, tmp_path / "r").read_text(encoding="utf-8")
    assert "Test set (used once)" in page and "ensemble" in page and str(top) in page
    study.close()

    # used once: a second use needs --force; asking for more than were kept is refused
    assert main(["test", "e", "--storage", str(study_db), "--ensemble", "2"]) == 2
    assert "was used on" in capsys.readouterr().err
    assert main(["test", "e", "--storage", str(study_db), "--ensemble", "4", "--force"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"caviar: error: --ensemble: must be <= the 3 models study 'e' kept (trials {top}; "
        f"search.keep_models = 3), got 4"
    )
    assert len(opened(study_db).attrs["test_uses"]) == 1  # a refused use is no use

    assert main(["test", "e", "--storage", str(study_db), "--ensemble", "1", "--force"]) == 0
    capsys.readouterr()
    study = opened(study_db)
    first, second = study.attrs["test_uses"]
    assert first == record and second["trial"] == top[:1] and second["uses"] == 2
    study.close()


def test_a_use_recorded_before_members_were_scored_shows_a_dash() -> None:
    record = {
        "ensemble": 2,
        "validation_accuracy": 0.5,
        "accuracy": 0.75,
        "members": [
            {"trial": 3, "validation_accuracy": 0.5},
            {"trial": 1, "validation_accuracy": 0.25},
        ],
    }
    lines = ensemble_table(record)
    assert [line.split()[-1] for line in lines[1:3]] == ["-", "-"] and len(lines) == 4
    record["members"][0]["test_accuracy"] = 0.8
    assert ensemble_table(record)[-1] == (
        "the ensemble did not beat its best member on the test set (trial 3, 0.8000): -0.0500"
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["test", "e", "--ensemble", "0"], "argument --ensemble: must be an integer >= 1, got 0"),
        (
            ["test", "e", "--ensemble", "2", "--mode", "retrain"],
            "argument --mode: not allowed with argument --ensemble",
        ),
        (
            ["export", "e", "--ensemble", "2", "--trial", "1"],
            "argument --trial: not allowed with argument --ensemble",
        ),
    ],
    ids=["zero", "with --mode", "with --trial"],
)
def test_bad_ensemble_flags_are_named(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_caviar_export_ensemble_writes_the_averaged_model(study_db, tmp_path, capsys) -> None:
    study = opened(study_db)
    top = [t.number for t in study.leaderboard(2)]
    data = prepare_data(config_from_mapping(study.attrs["config"]))
    study.close()
    out = tmp_path / "ensemble.pt2"
    assert main(["export", "e", "--storage", str(study_db), "--ensemble", "2", "-o", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"exported the ensemble of trials {top} of study 'e' to {out}"
    assert "-> log-probabilities [batch, 10]" in printed[1]
    x = torch.as_tensor(data.split.x_val)
    with torch.no_grad():
        log_p = torch.export.load(out).module()(x)
    torch.testing.assert_close(
        log_p.exp(), members_mean_softmax(study_db, top, x), rtol=0, atol=1e-6
    )

    assert main(["export", "e", "--storage", str(study_db), "--ensemble", "3"]) == 0
    assert (study_db.parent / "caviar-models" / "e" / "ensemble-3.pt2").is_file()
    assert main(["export", "e", "--storage", str(study_db), "--ensemble", "9"]) == 2
    assert "caviar: error: --ensemble: must be <= the 3 models study 'e' kept" in (
        capsys.readouterr().err
    )
