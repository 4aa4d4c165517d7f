"""Learning curves and best-so-far: plot data from hand-made trials, checked by hand."""

from __future__ import annotations

import math

import pytest

from caviar.core.records import Direction, EpochRecord, FrozenTrial, TrialState
from caviar.report.curves import best_so_far, top_curves
from caviar.space import Choice, LogUniform, SearchSpace

SPACE = SearchSpace({"lr": LogUniform(1e-4, 1.0), "act": Choice(["relu", "tanh"]), "epochs": 3})


def board_trial(number: int, value: float, curve: tuple[EpochRecord, ...] = ()) -> FrozenTrial:
    params = {"lr": 1e-2, "act": "tanh", "epochs": 3}
    unit = SPACE.to_unit(params)
    return FrozenTrial(number, TrialState.COMPLETE, params, unit, number, value, {}, curve)


def test_top_curves_follow_the_leaderboard_and_label_the_searched_values() -> None:
    board = [board_trial(4, 0.9), board_trial(2, 0.7)]
    curves = top_curves(SPACE, board, k=1)
    assert len(curves) == 1 and curves[0].number == 4
    assert curves[0].label == "lr=0.01, act=tanh"


def test_top_curves_fit_accuracy_and_loss_and_tick_whole_epochs() -> None:
    curve = (
        EpochRecord(1, train_loss=1.0, train_accuracy=0.6, val_loss=1.0, val_accuracy=0.5),
        EpochRecord(2, train_loss=0.1, train_accuracy=0.8, val_loss=0.5, val_accuracy=0.7),
        EpochRecord(3, train_loss=0.01, train_accuracy=1.0, val_loss=0.1, val_accuracy=0.9),
    )
    (c,) = top_curves(SPACE, [board_trial(0, 0.9, curve)])
    assert c.epochs == (1, 2, 3) and c.epoch_ticks == (1, 2, 3)  # no 0.5 ticks
    assert c.val_accuracy == (0.5, 0.7, 0.9) and c.train_accuracy == (0.6, 0.8, 1.0)
    assert c.train_loss == (1.0, 0.1, 0.01) and c.val_loss == (1.0, 0.5, 0.1)
    # accuracy 0.5 .. 1.0, widened by 5% of 0.5; not the fixed 0 .. 1
    assert c.accuracy_limits == pytest.approx((0.475, 1.025))
    # loss on a log axis: log10 runs -2 .. 0, widened by 0.1 decades
    assert c.loss_limits == pytest.approx((10**-2.1, 10**0.1))
    assert c.loss_ticks == (0.01, 0.1, 1.0)


def test_top_curves_without_losses_have_no_loss_limits() -> None:
    curve = (EpochRecord(1, val_accuracy=0.5), EpochRecord(2, val_accuracy=0.7))
    (c,) = top_curves(SPACE, [board_trial(0, 0.7, curve)])
    assert c.loss_limits is None and c.accuracy_limits == pytest.approx((0.49, 0.71))


def timed(
    number: int,
    state: TrialState,
    value: float | None,
    started: float | None,
    finished: float | None,
) -> FrozenTrial:
    params = {"lr": 1e-2, "act": "tanh", "epochs": 3}
    return FrozenTrial(
        number,
        state,
        params,
        SPACE.to_unit(params),
        number,
        value,
        started=started,
        finished=finished,
    )


def test_best_so_far_in_order_of_finishing() -> None:
    trials = [
        timed(0, TrialState.COMPLETE, 0.7, 100.0, 110.0),
        timed(1, TrialState.COMPLETE, 0.6, 100.0, 105.0),  # finishes first
        timed(2, TrialState.DIVERGED, None, 105.0, 112.0),
        timed(3, TrialState.COMPLETE, 0.9, 110.0, 130.0),
        timed(4, TrialState.RUNNING, None, 112.0, None),  # not finished: not drawn
        timed(5, TrialState.PRUNED, None, 130.0, 131.0),
    ]
    b = best_so_far(trials, Direction.MAXIMIZE)
    assert b.numbers == (1, 0, 2, 3, 5)
    assert b.finished == (1, 2, 3, 4, 5)
    assert b.seconds == (5.0, 10.0, 12.0, 30.0, 31.0)  # since the first start, at 100 s
    assert b.values[:2] == (0.6, 0.7) and math.isnan(b.values[2]) and b.values[3] == 0.9
    assert b.best == (0.6, 0.7, 0.7, 0.9, 0.9)
    assert b.limits == pytest.approx((0.585, 0.915))  # 0.6 .. 0.9 widened by 5% of 0.3


def test_best_so_far_is_undefined_before_the_first_complete_trial() -> None:
    trials = [
        timed(0, TrialState.DIVERGED, None, 0.0, 1.0),
        timed(1, TrialState.COMPLETE, 2.0, 0.0, 2.0),
        timed(2, TrialState.COMPLETE, 3.0, 0.0, 3.0),
        timed(3, TrialState.COMPLETE, 1.0, 0.0, 4.0),
    ]
    b = best_so_far(trials, Direction.MINIMIZE)  # a loss: lower is better
    assert math.isnan(b.best[0]) and b.best[1:] == (2.0, 2.0, 1.0)
    assert best_so_far([], Direction.MAXIMIZE).numbers == ()


def test_best_so_far_fits_every_trial_not_only_the_line() -> None:
    """A trial at 0.28 fell off a figure whose axis stopped at 0.53: the axis fitted the best
    so far alone."""
    trials = [
        timed(0, TrialState.COMPLETE, 0.9, 0.0, 1.0),
        timed(1, TrialState.COMPLETE, 0.28, 0.0, 2.0),
        timed(2, TrialState.COMPLETE, 0.95, 0.0, 3.0),
    ]
    b = best_so_far(trials, Direction.MAXIMIZE)
    assert b.limits is not None and b.limits[0] < 0.28 < 0.95 < b.limits[1]


def test_best_so_far_puts_a_pruned_trial_at_its_rung() -> None:
    pruned = timed(1, TrialState.PRUNED, None, 0.0, 2.0)
    pruned = FrozenTrial(**{**pruned.__dict__, "attrs": {"rung": 1, "rung_value": 0.1}})
    b = best_so_far([timed(0, TrialState.COMPLETE, 0.9, 0.0, 1.0), pruned], Direction.MAXIMIZE)
    assert math.isnan(b.values[1]) and b.pruned[1] == 0.1 and math.isnan(b.pruned[0])
    assert b.limits is not None and b.limits[0] < 0.1  # the axis fits it too
