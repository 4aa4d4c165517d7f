"""Plain-objective studies (caviar.search.objective): how each trial ends, the time budget,
successive halving over reported steps, a study continued after an interruption or a crash, and
the report of such a study. Every expectation is worked out by hand in the test."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from caviar.core.errors import InvalidValue
from caviar.core.records import TrialState
from caviar.search.halving import Halving
from caviar.search.objective import ObjectiveTrial, TrialPruned, run_objective

SPACE = {"x": {"scale": "linear", "low": 0.0, "high": 1.0}}
C, P, D, F = TrialState.COMPLETE, TrialState.PRUNED, TrialState.DIVERGED, TrialState.FAILED


def states(study: Any) -> list[TrialState]:
    return [t.state for t in study.trials(curves=False)]


def run(objective: Any, **kwargs: Any) -> Any:
    kwargs = {"storage": None, "sampler": "random", **kwargs}
    return run_objective(objective, kwargs.pop("space", SPACE), **kwargs)


# -- how a trial ends ----------------------------------------------------------------------------


def by_number(results: dict[int, Any]) -> Any:
    """An objective returning (or raising) ``results[trial.number]``."""

    def objective(trial: ObjectiveTrial) -> Any:
        result = results[trial.number]
        if isinstance(result, BaseException):
            raise result
        return result

    return objective


def test_each_return_ends_its_trial_as_documented() -> None:
    results = {
        0: 0.25,
        1: 3,  # an int is a number
        2: math.nan,
        3: -math.inf,
        4: None,
        5: "0.5",
        6: TrialPruned(),
        7: ValueError("bad batch"),
    }
    study = run(by_number(results), trials=8, catch=(ValueError,))
    assert states(study) == [C, C, D, D, F, F, P, F]
    trials = study.trials(curves=False)
    assert [t.value for t in trials[:2]] == [0.25, 3.0]
    assert trials[2].attrs["diverged"] == "the objective returned nan"
    assert trials[3].attrs["diverged"] == "the objective returned -inf"
    assert trials[4].attrs["error"] == (
        "the objective returned None (NoneType); it must return a real number (an int or a "
        "float; NaN or inf: diverged)"
    )
    assert trials[5].attrs["error"].startswith("the objective returned '0.5' (str);")
    assert trials[7].attrs["error"] == "ValueError: bad batch"
    study.close()


def test_an_exception_not_caught_fails_the_trial_and_is_raised(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with pytest.raises(RuntimeError, match="out of memory"):
        run(by_number({0: 0.5, 1: RuntimeError("out of memory")}), storage=db, trials=3)
    study = run(by_number({2: 0.75}), storage=db, trials=3)  # the study goes on from there
    assert states(study) == [C, F, C]
    assert study.trials()[1].attrs["error"] == "RuntimeError: out of memory"
    study.close()


def test_the_values_are_on_their_scale_and_the_seed_is_the_trials() -> None:
    space = {"lr": {"scale": "log", "low": 1e-4, "high": 1e-1}, "act": {"choice": ["a", "b"]}}
    seen = []

    def objective(trial: ObjectiveTrial) -> float:
        seen.append((trial.number, trial["lr"], trial.params["act"], trial.seed))
        return 0.0

    study = run(objective, space=space, trials=3)
    for (number, lr, act, seed), stored in zip(seen, study.trials(), strict=True):
        assert number == stored.number and seed == stored.seed
        assert 1e-4 <= lr <= 1e-1 and act in ("a", "b")
        assert (lr, act) == (stored.params["lr"], stored.params["act"])
    study.close()


def test_a_name_not_in_the_space_and_optunas_suggest_say_what_to_do() -> None:
    messages = []

    def objective(trial: ObjectiveTrial) -> float:
        for attempt in (lambda: trial["y"], lambda: trial.suggest_float("x", 0, 1)):
            try:
                attempt()
            except (KeyError, AttributeError) as e:
                messages.append(str(e))
        return 0.0

    run(objective, trials=1).close()
    assert "'y' is not in the space; its names: ['x']" in messages[0]
    assert "no suggest_float(): caviar draws every value from the space" in messages[1]


# -- the budget and the samplers -----------------------------------------------------------------


def test_no_trial_starts_after_the_timeout_and_a_running_one_finishes() -> None:
    now = [100.0]

    def objective(trial: ObjectiveTrial) -> float:
        now[0] += 10.0  # each trial takes 10 s
        return 1.0

    # trials start at 0, 10 and 20 s of a 25-s budget; the third ends at 30 s, complete
    study = run(objective, timeout=25.0, clock=lambda: now[0])
    assert states(study) == [C, C, C]
    study.close()


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_the_same_seed_gives_the_same_proposals(sampler: str) -> None:
    def objective(trial: ObjectiveTrial) -> float:
        return -((trial["x"] - 0.3) ** 2)

    def params(seed: int) -> list[float]:
        study = run(objective, trials=14, sampler=sampler, seed=seed)  # tpe: 10 random, 4 tpe
        found = [t.params["x"] for t in study.trials()]
        if sampler == "tpe":  # its last 4 proposals are the model's
            assert study.trials()[-1].attrs["proposed_by"] == "tpe"
        study.close()
        return found

    first = params(7)
    assert params(7) == first
    assert params(8) != first


def test_a_grid_runs_its_points_without_a_trial_count() -> None:
    study = run(lambda trial: trial["x"], sampler="grid")  # 5 points: 0, 0.25, ..., 1
    assert sorted(t.params["x"] for t in study.trials()) == [0.0, 0.25, 0.5, 0.75, 1.0]
    study.close()


# -- successive halving --------------------------------------------------------------------------


def curves_objective(curves: dict[int, list[float]]) -> Any:
    """Reports ``curves[trial.number]`` step by step, pruned when halving says so; returns the
    last value."""

    def objective(trial: ObjectiveTrial) -> float:
        for step, value in enumerate(curves[trial.number], start=1):
            trial.report(value, step)
            if trial.should_prune():
                trial.prune()
        return curves[trial.number][-1]

    return objective


#: eta = 2 and max_steps = 4: rungs at steps 1 and 2 (4 is the last step: complete, not judged)
CURVES = {
    0: [0.5, 0.6, 0.7, 0.8],  # r1 {.5}: kept; r2 {.6}: kept; complete
    1: [0.3, 0.9, 0.9, 0.9],  # r1 {.3 .5}, the top 1: .5; pruned at 1
    2: [0.7, 0.65, 0.7, 0.75],  # r1 {.3 .5 .7} top 1 .7: kept; r2 {.6 .65} top 1 .65: kept
    3: [0.6, 0.5, 0.9, 0.9],  # r1 {.3 .5 .6 .7} top 2 (.6): kept; r2 {.5 .6 .65} top 1: pruned
    4: [0.4, 0.9, 0.9, 0.9],  # r1 {.3 .4 .5 .6 .7} top 2 (.6): pruned at 1
}


def check_halving(study: Any, metric: str, flip: bool = False) -> None:
    trials = study.trials()
    assert [t.state for t in trials] == [C, P, C, P, P]
    assert {t.number: t.attrs["rung"] for t in trials if t.state is P} == {1: 1, 3: 2, 4: 1}
    at_rung = {1: 0.3, 3: 0.5, 4: 0.4}
    for number, value in at_rung.items():
        assert trials[number].attrs["rung_value"] == pytest.approx(1 - value if flip else value)
    assert [len(t.curve) for t in trials] == [4, 1, 4, 2, 1]
    assert trials[2].curve[1].metric(metric) == pytest.approx(0.35 if flip else 0.65)
    assert trials[0].attrs["halving"] == {"min_epochs": 1, "eta": 2}


def test_halving_prunes_the_trials_out_of_the_top_at_each_rung() -> None:
    study = run(curves_objective(CURVES), trials=5, halving=Halving(eta=2), max_steps=4)
    check_halving(study, "val_accuracy")
    study.close()


def test_halving_when_minimizing_keeps_the_lowest_and_stores_a_loss_curve() -> None:
    losses = {n: [1 - v for v in curve] for n, curve in CURVES.items()}
    study = run(
        curves_objective(losses),
        trials=5,
        halving=Halving(eta=2),
        max_steps=4,
        direction="minimize",
    )
    check_halving(study, "val_loss", flip=True)
    assert study.best_trial.number == 0  # final losses: 1 - .8 = .2 (trial 0), 1 - .75 (2)
    study.close()


def test_a_continued_study_judges_against_the_earlier_calls_trials(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    settings = {"storage": db, "halving": Halving(eta=2), "max_steps": 4}
    run(curves_objective(CURVES), trials=3, **settings).close()
    study = run(curves_objective(CURVES), trials=5, **settings)
    check_halving(study, "val_accuracy")
    study.close()


def test_brackets_judge_their_own_trials_from_their_own_first_rung() -> None:
    # eta 2, max_steps 4: bracket 0 judges at steps 1 and 2, bracket 1 at step 2 only. Shares
    # 2**2/3 : 2**1/2, so 0.571 and 0.429; n * 0.618 mod 1 = 0, .618, .236, .854, .472: the
    # brackets of trials 0..4 are 0, 1, 0, 1, 0
    curves = {
        0: [0.5, 0.6, 0.7, 0.8],  # b0: r1 {.5}, r2 {.6}: complete
        1: [0.1, 0.2, 0.3, 0.4],  # b1: r2 {.2}: complete (in one bracket: pruned at 1)
        2: [0.4, 0.9, 0.9, 0.9],  # b0: r1 {.4 .5}: pruned at 1
        3: [0.9, 0.1, 0.9, 0.9],  # b1: r2 {.1 .2}: pruned at 2
        4: [0.9, 0.9, 0.9, 0.9],  # b0: r1 {.4 .5 .9}, r2 {.6 .9}: complete
    }
    halving = Halving(eta=2, brackets=2)
    study = run(curves_objective(curves), trials=5, halving=halving, max_steps=4)
    trials = study.trials()
    assert [t.attrs["bracket"] for t in trials] == [0, 1, 0, 1, 0]
    assert [t.state for t in trials] == [C, C, P, P, C]
    assert [t.attrs.get("rung") for t in trials] == [None, None, 1, 2, None]
    study.close()


def test_a_report_past_a_rung_judges_there_with_its_value() -> None:
    # rungs 1, 3, 9 (eta 3, no max_steps); reports at steps 2, 4, 10 each pass one
    reports = {0: [(2, 0.5), (4, 0.6), (10, 0.7)], 1: [(2, 0.4), (4, 0.9)]}

    def objective(trial: ObjectiveTrial) -> float:
        for step, value in reports[trial.number]:
            trial.report(value, step)
            if trial.should_prune():
                raise TrialPruned
        return reports[trial.number][-1][1]

    study = run(objective, trials=2, halving=True)
    first, second = study.trials()
    assert first.state is C and [r.epoch for r in first.curve] == [2, 4, 10]
    assert second.state is P
    assert (second.attrs["rung"], second.attrs["rung_step"], second.attrs["rung_value"]) == (
        1,
        2,
        0.4,
    )
    study.close()


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([0], r"step: must be an integer in \[1, inf\), got 0"),
        ([2, 2], "step: must be above the last reported step 2, got 2"),
        ([5], "step: must be at most max_steps = 4, got 5"),
    ],
)
def test_a_bad_step_fails_the_trial(steps: list[int], message: str) -> None:
    def objective(trial: ObjectiveTrial) -> float:
        for step in steps:
            trial.report(0.5, step)
        return 0.5

    with pytest.raises(InvalidValue, match=message):
        run(objective, trials=1, max_steps=4)


# -- bad input -----------------------------------------------------------------------------------

BAD = {
    "space": ({"space": [1, 2]}, "optimize.space: must be a SearchSpace or a table"),
    "optuna's form": (
        {"space": {"lr": {"log_uniform": [1e-4, 1e-1]}}},
        "optimize.space.lr: a dimension needs 'scale'",
    ),
    "direction": ({"direction": "max"}, r"optimize.direction: must be one of \['maximize'"),
    "trials": ({"trials": 0}, r"optimize.trials: must be an integer in \[1, inf\), got 0"),
    "timeout": ({"timeout": 0}, r"optimize.timeout: must be a number in \(0, inf\), got 0"),
    "sampler": ({"sampler": "bayes"}, r"optimize.sampler: must be one of \['random', 'grid'"),
    "halving": ({"halving": "yes"}, "optimize.halving: must be 'auto', true, false or a table"),
    "brackets": (
        {"halving": Halving(brackets=2)},
        "optimize.max_steps: must be given for halving with 2 brackets",
    ),
    "catch": ({"catch": (ValueError, 3)}, "optimize.catch: must be an exception class"),
    "endless": ({"trials": None}, "optimize.trials: must be given for random search without"),
}


@pytest.mark.parametrize(("given", "message"), BAD.values(), ids=BAD)
def test_bad_input_is_refused_in_one_line(given: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        run(lambda trial: 0.0, **{"trials": 3, **given})


# -- a continued study ---------------------------------------------------------------------------


def test_an_interrupted_trial_goes_back_to_the_queue_and_runs_next_time(tmp_path: Path) -> None:
    db, seen = tmp_path / "s.db", []

    def objective(trial: ObjectiveTrial) -> float:
        seen.append((trial.number, trial["x"], trial.seed))
        if trial.number == 3 and len(seen) == 4:
            trial.report(0.1, 1)
            raise KeyboardInterrupt
        return trial["x"]

    with pytest.raises(KeyboardInterrupt):
        run(objective, storage=db, trials=6)
    study = run(objective, storage=db, trials=6)
    trials = study.trials()
    assert [t.state for t in trials] == [C] * 6
    assert [n for n, _, _ in seen] == [0, 1, 2, 3, 3, 4, 5]
    assert seen[3] == seen[4]  # trial 3 again, from the same values and seed
    assert trials[3].curve == ()  # the interrupted run's report was dropped
    reference = run(lambda trial: trial["x"], trials=6)  # the same seed, uninterrupted
    assert [t.params for t in reference.trials()] == [t.params for t in trials]
    study.close()
    reference.close()


CRASH = """
import os, sys
from caviar.search.objective import run_objective

def objective(trial):
    if trial.number == 2:
        os._exit(3)  # a crash: no except, no finally
    return trial["x"]

run_objective(objective, {"x": {"scale": "linear", "low": 0.0, "high": 1.0}},
              storage=sys.argv[1], trials=5, sampler="random")
"""


@pytest.mark.slow
def test_a_trial_a_crashed_process_held_runs_again(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CRASH), str(db)], env=env, check=False
    )
    assert done.returncode == 3
    seen = []
    study = run(lambda trial: seen.append(trial.number) or trial["x"], storage=db, trials=5)
    assert seen == [2, 3, 4]  # the dead process's trial first, then the new ones
    trials = study.trials()
    assert [t.state for t in trials] == [C] * 5
    assert trials[2].attempt == 1
    study.close()


# -- what the study shows ------------------------------------------------------------------------


def test_the_progress_line_shows_the_lowest_value_when_minimizing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    values = {0: 0.5, 1: 0.2, 2: 0.9}
    run(lambda trial: values[trial.number], trials=3, direction="minimize", progress=True).close()
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "trials 3/3 done" in last and "best value 0.2000" in last


def test_the_report_draws_a_plain_objective_study(tmp_path: Path) -> None:
    from caviar.report import write_report  # deferred: plotly

    study = run(
        curves_objective(CURVES),
        storage=tmp_path / "s.db",
        name="plain",
        trials=5,
        halving=Halving(eta=2),
        max_steps=4,
    )
    page = write_report(study, tmp_path / "report").read_text()
    assert "plain" in page and "pruned at epoch 2" in page
    assert study.attrs["objective"]["metric"] == "val_accuracy"
    study.close()
