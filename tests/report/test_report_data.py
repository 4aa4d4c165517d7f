"""Report data: computed from trials by pure functions, checked against hand-made studies."""

from __future__ import annotations

import numpy as np

from caviar.records import Direction, EpochRecord, FrozenTrial, TrialState
from caviar.report.data import round_boxes, rung_table, scatter_panels, summary, top_curves
from caviar.report.importance import importance
from caviar.space import Choice, IntUniform, LogUniform, OneMinusLog, SearchSpace

SPACE = SearchSpace(
    {
        "lr": LogUniform(1e-4, 1.0),
        "beta1": OneMinusLog(0.9, 0.999),
        "act": Choice(["relu", "tanh"]),
        "epochs": 3,
    }
)


def trial(
    number: int,
    lr: float,
    beta1: float,
    act: str,
    value: float | None,
    state: TrialState = TrialState.COMPLETE,
    **attrs: object,
) -> FrozenTrial:
    params = {"lr": lr, "beta1": beta1, "act": act, "epochs": 3}
    curve = tuple(EpochRecord(e, train_accuracy=0.1 * e, val_accuracy=0.1 * e) for e in (1, 2, 3))
    return FrozenTrial(number, state, params, SPACE.to_unit(params), number, value, attrs, curve)


def test_scatter_panels_use_each_dimensions_scale() -> None:
    trials = [
        trial(0, 1e-3, 0.99, "relu", 0.8),
        trial(1, 0.5, 0.9, "tanh", None, TrialState.DIVERGED),
    ]
    panels = {p.name: p for p in scatter_panels(SPACE, trials)}
    assert list(panels) == ["lr", "beta1", "act"]  # searched ones only
    assert (panels["lr"].axis, panels["beta1"].axis, panels["act"].axis) == (
        "log",
        "one_minus_log",
        "categorical",
    )
    assert panels["lr"].x == (1e-3,) and panels["lr"].y == (0.8,)
    assert panels["lr"].diverged_x == (0.5,)
    assert panels["act"].categories == ("relu", "tanh")


def test_top_curves_follow_the_leaderboard_and_label_the_searched_values() -> None:
    board = [trial(4, 1e-2, 0.99, "tanh", 0.9), trial(2, 1e-3, 0.95, "relu", 0.7)]
    curves = top_curves(SPACE, board, k=1)
    assert len(curves) == 1 and curves[0].number == 4
    assert curves[0].label == "lr=0.01, beta1=0.99, act=tanh"
    assert curves[0].epochs == (1, 2, 3) and curves[0].val_accuracy == (
        0.1,
        0.2,
        0.30000000000000004,
    )


def test_round_boxes_map_unit_boxes_through_the_scales() -> None:
    box0 = [[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]
    box1 = [[0.5, 0.75], [0.5, 1.0], [0.0, 0.5]]
    trials = [
        trial(0, 1e-3, 0.99, "relu", 0.8, round=0, box=box0),
        trial(1, 1e-2, 0.95, "tanh", 0.9, round=0, box=box0),
        trial(2, 2e-2, 0.99, "relu", 0.95, round=1, box=box1),
    ]
    boxes = round_boxes(SPACE, trials, Direction.MAXIMIZE)
    lr1 = next(b for b in boxes if b.round == 1 and b.name == "lr")
    # unit 0.5 and 0.75 of [1e-4, 1] in log10: 10**-2 and 10**-1
    assert np.isclose(lr1.low, 1e-2) and np.isclose(lr1.high, 1e-1)
    beta1 = next(b for b in boxes if b.round == 1 and b.name == "beta1")
    # unit 0.5 of [0.9, 0.999] in log10(1 - beta): 1 - 10**-2
    assert np.isclose(beta1.low, 0.99) and beta1.high == 0.999
    lr0 = next(b for b in boxes if b.round == 0 and b.name == "lr")
    assert lr0.best == 1e-2 and lr0.samples == (1e-3, 1e-2)


def test_summary_counts_states() -> None:
    trials = [
        trial(0, 1e-3, 0.99, "relu", 0.8),
        trial(1, 0.5, 0.9, "tanh", None, TrialState.DIVERGED),
    ]
    facts = summary(trials)
    assert facts["trials"] == 2 and facts["states"]["complete"] == 1
    assert facts["states"]["diverged"] == 1


def test_importance_finds_the_hyperparameter_that_matters() -> None:
    space = SearchSpace(
        {
            "lr": LogUniform(1e-4, 1.0),
            "units": IntUniform(10, 100),
            "beta1": OneMinusLog(0.9, 0.999),
        }
    )
    rng = np.random.default_rng(0)
    trials = []
    for n in range(60):
        unit = tuple(rng.random(3))
        params = space.from_unit(unit)
        value = 1.0 - (unit[0] - 0.6) ** 2  # only the learning rate matters
        trials.append(FrozenTrial(n, TrialState.COMPLETE, params, unit, n, value))
    ranking = importance(space, trials, Direction.MAXIMIZE)
    assert ranking is not None and ranking[0].name == "lr" and ranking[0].importance > 0.8
    assert np.isclose(sum(r.importance for r in ranking), 1.0)
    assert importance(space, trials[:5], Direction.MAXIMIZE) is None  # too few to say


def halving_trial(number: int, vals: list[float], **attrs: object) -> FrozenTrial:
    """A trial of a study with halving {min_epochs 1, eta 3} whose curve has these values."""
    curve = tuple(EpochRecord(e + 1, val_accuracy=v) for e, v in enumerate(vals))
    state = TrialState.PRUNED if "rung" in attrs else TrialState.COMPLETE
    params = {"lr": 1e-3, "beta1": 0.9, "act": "relu", "epochs": 5}
    halving = {"min_epochs": 1, "eta": 3}
    return FrozenTrial(
        number,
        state,
        params,
        (0.5, 0.5, 0.5),
        number,
        None,
        {"halving": halving, **attrs},
        curve,
    )


def test_rung_table_counts_by_hand() -> None:
    trials = [
        halving_trial(0, [0.5, 0.6, 0.7, 0.8, 0.85]),  # complete: reached rungs 1 and 3
        halving_trial(1, [0.3], rung=1),  # pruned at 1
        halving_trial(2, [0.55, 0.6, 0.65], rung=3),  # pruned at 3
        halving_trial(3, [0.2], rung=1),
    ]
    rows = rung_table(trials)
    # rung 1: all four reached it, two pruned there, best 0.55; rung 3: trials 0 and 2
    assert [(r.epoch, r.reached, r.pruned, r.best) for r in rows] == [
        (1, 4, 2, 0.55),
        (3, 2, 1, 0.7),
    ]
    assert rung_table([trial(0, 1e-3, 0.99, "relu", 0.8)]) == []  # no halving: no table
