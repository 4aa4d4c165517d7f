"""Curves over time as plain data: each top trial's learning curves, and the best score so far.

Pure functions over trials; :mod:`caviar.report.curve_figures` draws them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from caviar.core.records import Direction, FrozenTrial, TrialState
from caviar.report.data import rung_value
from caviar.report.scales import epoch_ticks, fit_limits, log_ticks, short_label
from caviar.space import SearchSpace


@dataclass(frozen=True)
class Curve:
    """One trial's learning curves per epoch, with the limits and ticks its panels use.

    Accuracy limits fit both accuracy curves; loss limits fit both loss curves on a log axis
    (a loss falls by decades, and a late rise of the validation loss shows on a log axis), or
    are None when no loss was recorded.
    """

    number: int
    label: str
    value: float
    epochs: tuple[int, ...]
    train_accuracy: tuple[float, ...]
    val_accuracy: tuple[float, ...]
    train_loss: tuple[float, ...] = ()
    val_loss: tuple[float, ...] = ()
    accuracy_limits: tuple[float, float] | None = None
    loss_limits: tuple[float, float] | None = None
    loss_ticks: tuple[float, ...] = ()
    epoch_ticks: tuple[int, ...] = ()


def top_curves(space: SearchSpace, leaderboard: Sequence[FrozenTrial], k: int = 20) -> list[Curve]:
    """Learning curves of the best ``k`` trials, labelled with their searched values (the
    book's 5 x 4 figure of the top 20)."""
    curves = []
    for t in leaderboard[:k]:
        label = ", ".join(f"{n}={short_label(t.params[n])}" for n in space.free_names)
        train_accuracy = tuple(r.train_accuracy for r in t.curve)
        val_accuracy = tuple(r.val_accuracy for r in t.curve)
        train_loss = tuple(r.train_loss for r in t.curve)
        val_loss = tuple(r.val_loss for r in t.curve)
        epochs = tuple(r.epoch for r in t.curve)
        loss_limits = fit_limits(train_loss + val_loss, log=True)
        curves.append(
            Curve(
                number=t.number,
                label=label,
                value=float(t.value or 0.0),
                epochs=epochs,
                train_accuracy=train_accuracy,
                val_accuracy=val_accuracy,
                train_loss=train_loss,
                val_loss=val_loss,
                accuracy_limits=fit_limits(train_accuracy + val_accuracy),
                loss_limits=loss_limits,
                loss_ticks=log_ticks(*loss_limits) if loss_limits else (),
                epoch_ticks=epoch_ticks(max(epochs, default=0)),
            )
        )
    return curves


@dataclass(frozen=True)
class BestSoFar:
    """The study's best value as its trials finished, one entry per finished trial.

    ``finished`` counts trials in order of finishing; ``seconds`` is each finish time since
    the study's first trial started; ``values`` is each trial's own value (NaN for one that
    did not complete), ``pruned`` a pruned trial's score at the rung that stopped it (NaN for
    the others), ``best`` the best value of the trials finished so far (NaN before the first
    complete one). ``limits`` fit all three, so that no trial's dot falls off the axis.
    """

    numbers: tuple[int, ...]
    finished: tuple[int, ...]
    seconds: tuple[float, ...]
    values: tuple[float, ...]
    best: tuple[float, ...]
    limits: tuple[float, float] | None
    pruned: tuple[float, ...] = ()


def best_so_far(trials: Sequence[FrozenTrial], direction: Direction) -> BestSoFar:
    """How fast the search found its best: the best value against trials finished and against
    wall time. Trials not finished (or with no finish time) are left out."""
    done = sorted(
        (t for t in trials if t.state.is_finished and t.finished is not None),
        key=lambda t: (t.finished, t.number),
    )
    starts = [t.started for t in trials if t.started is not None]
    origin = min(starts) if starts else min((t.finished or 0.0 for t in done), default=0.0)
    values, pruned, best = [], [], []
    current = math.nan
    for t in done:
        value = float(t.value) if t.state is TrialState.COMPLETE and t.value is not None else None
        if value is not None and (math.isnan(current) or direction.better(value, current)):
            current = value
        values.append(math.nan if value is None else value)
        at_rung = rung_value(t) if t.state is TrialState.PRUNED else None
        pruned.append(math.nan if at_rung is None else at_rung)
        best.append(current)
    return BestSoFar(
        numbers=tuple(t.number for t in done),
        finished=tuple(range(1, len(done) + 1)),
        seconds=tuple(float(t.finished or 0.0) - origin for t in done),
        values=tuple(values),
        best=tuple(best),
        limits=fit_limits([*values, *pruned, *best]),
        pruned=tuple(pruned),
    )
