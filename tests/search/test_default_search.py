"""Caviar's default search: the tpe sampler with successive halving (``halving = 'auto'``).

The pair won benchmarks/quality.py (docs/benchmarks.md); the textbook's samplers stay one setting
away and train every trial to its end. 'auto' is stored as the schedule it decided, so a study
keeps its schedule whatever later versions default to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from caviar.cli.main import main
from caviar.search.config import config_from_mapping
from caviar.search.halving import Halving, resolve
from caviar.search.job import tune
from caviar.study import Study, TrialState

ON = {"min_epochs": 1, "eta": 3}


def settings(search: dict[str, Any], epochs: Any = 5) -> dict[str, Any]:
    return {"space": {"epochs": epochs}, "search": {"trials": 4, **search}}


def test_left_out_the_search_is_tpe_with_halving_and_stores_the_schedule() -> None:
    config = config_from_mapping(settings({}))
    assert config.search.sampler == "tpe"
    assert config.halving() == Halving(min_epochs=1, eta=3)
    assert config.to_dict()["search"]["halving"] == ON  # never 'auto' in a stored config


@pytest.mark.parametrize(
    ("search", "epochs", "expected"),
    [
        ({}, 2, ON),  # the first rung, epoch 1, comes before the last epoch
        ({}, 1, None),  # a one-epoch trial has nothing to judge: no halving, and no refusal
        ({}, {"scale": "int", "low": 1, "high": 3}, ON),  # the longest trial reaches the rung
        ({"halving": "auto"}, 5, ON),  # said explicitly, the same as left out
        ({"halving": " auto "}, 5, ON),
        ({"sampler": "random"}, 5, None),  # the textbook's samplers: every trial to its end
        ({"sampler": "coarse_to_fine", "rounds": 2}, 5, None),
        ({"sampler": "grid", "trials": None}, 5, None),
        ({"halving": False}, 5, None),
        ({"sampler": "random", "halving": True}, 5, ON),  # asked for, it acts with any sampler
    ],
    ids=[
        "tpe, 2 epochs",
        "tpe, 1 epoch",
        "tpe, 1 to 3 epochs",
        "auto said",
        "auto with spaces",
        "random",
        "coarse to fine",
        "grid",
        "false",
        "random, true",
    ],
)
def test_auto_halves_only_tpe_trials_that_reach_the_first_rung(
    search: dict[str, Any], epochs: Any, expected: dict[str, int] | None
) -> None:
    config = config_from_mapping(settings(search, epochs))
    assert config.search.halving == expected


def test_asked_for_with_one_epoch_halving_is_still_refused() -> None:
    with pytest.raises(ValueError, match=r"^search\.halving: its first rung, at epoch 1, is never"):
        config_from_mapping(settings({"halving": True}, 1))


def test_resolve_reads_tables_and_words_as_the_config_does() -> None:
    assert resolve({"eta": 4}, "tpe", 10) == Halving(min_epochs=1, eta=4)
    assert resolve(None, "tpe", 10) is None
    assert resolve("auto", "tpe", 1) is None
    with pytest.raises(ValueError, match=r"^search\.halving: must be 'auto', true, false or"):
        resolve("sometimes", "tpe", 10)


def test_a_study_stored_with_the_old_default_reads_back_as_it_ran() -> None:
    """Before tpe was the default, every key was stored: random search, no halving."""
    old = config_from_mapping(
        settings({"sampler": "random", "halving": None}), stored=True
    ).to_dict()
    again = config_from_mapping(old, stored=True)
    assert again.search.sampler == "random" and again.halving() is None


def tiny(tmp_path: Path, name: str, **search: Any) -> dict[str, Any]:
    return {
        "study": {"name": name, "storage": str(tmp_path / f"{name}.db"), "seed": 3, "threads": 1},
        "data": {"dataset": "digits", "train_size": 200, "test_size": 50},
        "space": {
            "lr": {"scale": "log", "low": 1e-3, "high": 3e-1},
            "hidden_units": {"scale": "int", "low": 4, "high": 12},
            "epochs": 4,
            "batch_size": 50,
        },
        "search": {"trials": 12, "population": 4, **search},
    }


def ends(study: Study) -> list[tuple[TrialState, int, float | None]]:
    return [(t.state, len(t.curve), t.value) for t in study.trials()]


@pytest.mark.slow
def test_the_default_runs_as_tpe_with_halving_said_explicitly(tmp_path: Path) -> None:
    default = tune(tiny(tmp_path, "default"), progress=False, report=False)
    said = tune(
        tiny(tmp_path, "said", sampler="tpe", halving={"min_epochs": 1, "eta": 3}),
        progress=False,
        report=False,
    )
    try:
        assert ends(default) == ends(said)
        states = [state for state, _, _ in ends(default)]
        assert TrialState.PRUNED in states and TrialState.COMPLETE in states
        # a pruned trial stopped at a rung (epoch 1 or 3), never at its last epoch
        assert {n for s, n, _ in ends(default) if s is TrialState.PRUNED} <= {1, 3}
        assert default.sampler.name == "tpe"
        assert default.attrs["config"]["search"]["halving"] == ON
    finally:
        default.close()
        said.close()


@pytest.mark.slow  # the command line's first import of torch
def test_no_halving_with_a_halving_flag_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["tune", "--no-halving", "--halving-eta", "2", "--storage", str(tmp_path / "s.db")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == "caviar: error: --no-halving: cannot be given with --halving-eta; choose one"
    assert not (tmp_path / "s.db").exists()
