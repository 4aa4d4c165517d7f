"""A study of the user's own module runs as caviar's studies do: the pool refilled, halving, the
budget, resume after a crash, the same decisions from the same seed, the config's
``[study] model``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

import caviar
from caviar.cli.main import main
from caviar.core.errors import InvalidValue
from caviar.core.records import TrialState

pytestmark = pytest.mark.slow

SPACE: dict[str, Any] = {
    "width": {"choice": [4, 6]},
    "lr": {"scale": "log", "low": 1e-3, "high": 1e-1},
    "epochs": 3,
    "batch_size": 32,
}


def build(params: Any) -> nn.Module:
    """A tiny MLP on the 8x8 digits."""
    w = params["width"]
    return nn.Sequential(nn.Linear(64, w), nn.BatchNorm1d(w), nn.ReLU(), nn.Linear(w, 10))


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = load_digits(return_X_y=True)
    return torch.tensor(x[:300] / 16, dtype=torch.float32), torch.tensor(y[:300])


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def run(tmp: Path, data: Any, **settings: Any) -> caviar.Study:
    options: dict[str, Any] = {
        "data": data,
        "storage": tmp / "s.db",
        "progress": False,
        "report": False,
        "seed": 3,
        "threads": 1,
        **settings,
    }
    return caviar.optimize(build, SPACE, **options)


def outcome(study: caviar.Study) -> list[tuple[int, str, int, float | None]]:
    return [
        (t.number, t.state.value, len(t.curve), t.value)
        for t in sorted(study.trials(), key=lambda t: t.number)
    ]


def test_the_pool_is_refilled_until_every_trial_is_told(tmp_path: Path, digits: Any) -> None:
    study = run(tmp_path, digits, trials=7, population=3, sampler="random", halving=False)
    trials = study.trials()
    assert len(trials) == 7
    assert all(t.state is TrialState.COMPLETE and len(t.curve) == 3 for t in trials)
    assert {t.attrs["pool_size"] for t in trials} == {3}
    # each curve's validation accuracy is a fraction of the 60 validation examples
    for t in trials:
        assert all(abs(r.val_accuracy * 60 - round(r.val_accuracy * 60)) < 1e-9 for r in t.curve)
    study.close()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_halving_prunes_at_its_rung_and_the_same_seed_decides_the_same(
    tmp_path: Path, digits: Any, dtype: str
) -> None:
    settings = {"trials": 9, "population": 9, "sampler": "random", "halving": True, "dtype": dtype}
    first = run(tmp_path / "a", digits, **settings)
    second = run(tmp_path / "b", digits, **settings)
    assert outcome(first) == outcome(second)
    trials = first.trials()
    pruned = [t for t in trials if t.state is TrialState.PRUNED]
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    # eta 3 at rung 1 over 9 trials in one pool: the top 3 go on (ties aside), 6 stop there
    assert len(pruned) == 6 and len(complete) == 3
    assert all(len(t.curve) == 1 and t.attrs["rung"] == 1 for t in pruned)
    worst_kept = min(t.curve[0].val_accuracy for t in complete)
    assert all(t.curve[0].val_accuracy <= worst_kept for t in pruned)
    first.close()
    second.close()


def test_a_budget_ends_the_search_with_every_trial_told_or_queued(
    tmp_path: Path, digits: Any
) -> None:
    now = [0.0]

    def clock() -> float:  # each look at the clock is a second later
        now[0] += 1.0
        return now[0]

    study = run(tmp_path, digits, timeout=400, population=4, sampler="random", clock=clock)
    states = {t.state for t in study.trials()}
    assert TrialState.RUNNING not in states
    assert study.trials([TrialState.COMPLETE, TrialState.PRUNED])
    study.close()


def test_a_crashed_search_goes_on_where_it_stopped(tmp_path: Path, digits: Any) -> None:
    whole = run(tmp_path / "whole", digits, trials=6, population=2, sampler="random")
    expected = outcome(whole)
    whole.close()
    calls = [0]

    def interrupting(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        if calls[0] == 40:  # mid-way through the search's mini-batches
            raise KeyboardInterrupt
        return nn.functional.cross_entropy(out, y)

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", digits, trials=6, population=2, sampler="random", loss=interrupting)
    again = run(tmp_path / "cut", digits, trials=6, population=2, sampler="random")
    # a member's results are its own: trained again from its seed, it ends as it would have
    assert outcome(again) == expected
    again.close()


BUILDER = """
from torch import nn

def build(params):
    return nn.Sequential(nn.Linear(64, params["width"]), nn.ReLU(), nn.Linear(params["width"], 10))
"""


@pytest.fixture
def builder_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    (tmp_path / "tinynet.py").write_text(BUILDER)
    monkeypatch.chdir(tmp_path)
    yield
    sys.modules.pop("tinynet", None)


def config(**search: Any) -> dict[str, Any]:
    return {
        "study": {"name": "tiny", "model": "tinynet:build", "storage": "tiny.db"},
        "data": {"dataset": "digits", "train_size": 400, "test_size": 100},
        "space": {"width": {"choice": [4, 8]}, "lr": 0.01, "epochs": 2, "batch_size": 50},
        "search": {"trials": 4, "sampler": "random", **search},
    }


@pytest.mark.usefixtures("builder_module")
def test_a_config_names_the_model_it_tunes() -> None:
    study = caviar.tune(config(), progress=False, report=False)
    trials = study.trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert study.attrs["config"]["study"]["model"] == "tinynet:build"
    assert study.attrs["data"]["n_train"] == 320 and study.attrs["data"]["n_test"] == 100
    assert np.isfinite([t.value for t in trials]).all()
    study.close()


@pytest.mark.usefixtures("builder_module")
@pytest.mark.parametrize(
    ("change", "owner"),
    [
        ({"study": {"model": "tinynet:nothing"}}, "study.model"),
        ({"study": {"model": "nomodule:build"}}, "study.model"),
        ({"study": {"model": "tinynet"}}, "study.model"),
        ({"search": {"warm_start": "old"}}, "search.warm_start"),
        ({"space": {"width": 4, "depth": 2}}, "space.depth"),
        ({"space": {"width": 4, "lr": -1.0}}, "space.lr"),
    ],
)
def test_a_config_with_a_bad_model_says_so_in_one_line(change: dict[str, Any], owner: str) -> None:
    raw = config()
    for section, values in change.items():
        raw[section] = {**raw[section], **values}
    with pytest.raises(InvalidValue) as error:
        caviar.tune(raw, progress=False, report=False)
    assert error.value.owner == owner
    assert "\n" not in str(error.value)


def other_build(params: Any) -> nn.Module:
    """Another model of the same space: a study must not mix it with ``build``'s trials."""
    return nn.Sequential(nn.Linear(64, params["width"]), nn.Tanh(), nn.Linear(params["width"], 10))


def test_a_study_goes_on_only_with_the_model_it_was_run_with(tmp_path: Path, digits: Any) -> None:
    run(tmp_path, digits, trials=2, sampler="random").close()
    with pytest.raises(InvalidValue, match="would mix two models in one leaderboard") as error:
        caviar.optimize(
            other_build,
            SPACE,
            data=digits,
            storage=tmp_path / "s.db",
            seed=3,
            trials=4,
            sampler="random",
            progress=False,
            report=False,
        )
    assert error.value.owner == "study.model"
    assert "test_own_model:build" in str(error.value)


@pytest.mark.usefixtures("builder_module")
def test_a_dry_run_builds_the_model_and_trains_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(
        '[study]\nname = "tiny"\nmodel = "tinynet:build"\nstorage = "tiny.db"\n'
        '[data]\ndataset = "digits"\ntrain_size = 400\ntest_size = 100\n'
        "[space]\nwidth = { choice = [4, 8] }\nlr = 0.01\nepochs = 2\nbatch_size = 50\n"
        '[search]\ntrials = 4\nsampler = "random"\n'
    )
    assert main(["tune", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    # corners 0.5, 0 and 1, then each of the width choice's 2 values
    assert "the model tinynet:build built and run on a mini-batch at 5 points of the space" in out
    assert not (tmp_path / "tiny.db").exists()
    (tmp_path / "tinynet.py").write_text(BUILDER.replace('params["width"], 10)', "3, 10)"))
    sys.modules.pop("tinynet", None)
    assert main(["tune", str(path), "--dry-run"]) == 2
    assert "caviar: error: model: the module the builder tinynet:build makes fails" in (
        capsys.readouterr().err
    )
