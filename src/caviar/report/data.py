"""What the report shows, as plain data computed from trials: pure functions, tested directly.

The renderer only draws these; nothing here knows about matplotlib or HTML.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from caviar.records import Direction, FrozenTrial, TrialState
from caviar.space import SearchSpace


@dataclass(frozen=True)
class ScatterPanel:
    """Validation score against one hyperparameter, on that hyperparameter's own scale."""

    name: str
    axis: str  # linear | log | one_minus_log | categorical
    x: tuple[Any, ...]
    y: tuple[float, ...]
    numbers: tuple[int, ...]
    diverged_x: tuple[Any, ...]
    categories: tuple[Any, ...] = ()


def scatter_panels(space: SearchSpace, trials: Sequence[FrozenTrial]) -> list[ScatterPanel]:
    """One panel per searched hyperparameter: complete trials' values and scores, and where the
    diverged trials were."""
    complete = [t for t in trials if t.state is TrialState.COMPLETE and t.value is not None]
    diverged = [t for t in trials if t.state is TrialState.DIVERGED]
    panels = []
    for name in space.free_names:
        dim = space[name]
        categories: tuple[Any, ...] = ()
        if dim.axis == "categorical" and dim.cardinality is not None:
            categories = tuple(dim.from_unit(u) for u in dim.grid_units(dim.cardinality))
        panels.append(
            ScatterPanel(
                name=name,
                axis=dim.axis,
                x=tuple(t.params[name] for t in complete),
                y=tuple(float(t.value or 0.0) for t in complete),
                numbers=tuple(t.number for t in complete),
                diverged_x=tuple(t.params[name] for t in diverged),
                categories=categories,
            )
        )
    return panels


@dataclass(frozen=True)
class Curve:
    """One trial's learning curves: accuracy per epoch on training and validation data."""

    number: int
    label: str
    value: float
    epochs: tuple[int, ...]
    train_accuracy: tuple[float, ...]
    val_accuracy: tuple[float, ...]


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def top_curves(space: SearchSpace, leaderboard: Sequence[FrozenTrial], k: int = 20) -> list[Curve]:
    """Learning curves of the best ``k`` trials, labelled with their searched values (the
    book's 5 x 4 figure of the top 20)."""
    curves = []
    for t in leaderboard[:k]:
        label = ", ".join(f"{n}={_short(t.params[n])}" for n in space.free_names)
        curves.append(
            Curve(
                number=t.number,
                label=label,
                value=float(t.value or 0.0),
                epochs=tuple(r.epoch for r in t.curve),
                train_accuracy=tuple(r.train_accuracy for r in t.curve),
                val_accuracy=tuple(r.val_accuracy for r in t.curve),
            )
        )
    return curves


@dataclass(frozen=True)
class RoundBox:
    """One coarse-to-fine round on one hyperparameter: the box in values, and the samples."""

    round: int
    name: str
    axis: str
    low: Any
    high: Any
    samples: tuple[Any, ...]
    best: Any


def round_boxes(
    space: SearchSpace, trials: Sequence[FrozenTrial], direction: Direction
) -> list[RoundBox]:
    """Each round's box per searched hyperparameter, in that hyperparameter's values (the box
    lives in unit coordinates; its corners map through the dimension's scale)."""
    by_round: dict[int, list[FrozenTrial]] = {}
    for t in trials:
        if "round" in t.attrs and "box" in t.attrs:
            by_round.setdefault(int(t.attrs["round"]), []).append(t)
    boxes = []
    for r in sorted(by_round):
        members = by_round[r]
        complete = [t for t in members if t.state is TrialState.COMPLETE and t.value is not None]
        complete.sort(key=lambda t: (direction.sort_key(t.value or 0.0), t.number))
        for axis_index, name in enumerate(space.free_names):
            dim = space[name]
            lo, hi = members[0].attrs["box"][axis_index]
            boxes.append(
                RoundBox(
                    round=r,
                    name=name,
                    axis=dim.axis,
                    low=dim.from_unit(lo),
                    high=dim.from_unit(hi),
                    samples=tuple(t.params[name] for t in members),
                    best=complete[0].params[name] if complete else None,
                )
            )
    return boxes


def summary(trials: Sequence[FrozenTrial]) -> dict[str, Any]:
    """Counts per state and the total wall time of the trials."""
    counts = {s.value: 0 for s in TrialState}
    for t in trials:
        counts[t.state.value] += 1
    starts = [t.started for t in trials if t.started is not None]
    ends = [t.finished for t in trials if t.finished is not None]
    wall = (max(ends) - min(starts)) if starts and ends else math.nan
    return {"trials": len(trials), "states": counts, "wall_seconds": wall}


@dataclass(frozen=True)
class RungRow:
    """Successive halving at one rung: how many trials reached it, how many it stopped, and
    the best validation accuracy recorded there."""

    epoch: int
    reached: int
    pruned: int
    best: float | None


def rung_table(trials: Sequence[FrozenTrial]) -> list[RungRow]:
    """One row per rung of a study that ran successive halving (empty otherwise).

    A trial reached a rung if it trained at least that many epochs; the rungs are the epochs
    recorded on pruned trials (``attrs["rung"]``) and the halving schedule stored with them.
    """
    schedule: Any = next((t.attrs["halving"] for t in trials if t.attrs.get("halving")), None)
    if schedule is None:
        return []
    epochs = {int(t.attrs["rung"]) for t in trials if "rung" in t.attrs}
    longest = max((len(t.curve) for t in trials), default=0)
    rung = int(schedule["min_epochs"])
    while rung < longest:
        epochs.add(rung)
        rung *= int(schedule["eta"])
    rows = []
    for epoch in sorted(epochs):
        reached = [t for t in trials if len(t.curve) >= epoch]
        values = [
            t.curve[epoch - 1].val_accuracy
            for t in reached
            if math.isfinite(t.curve[epoch - 1].val_accuracy)
        ]
        pruned = sum(1 for t in trials if t.attrs.get("rung") == epoch)
        rows.append(RungRow(epoch, len(reached), pruned, max(values) if values else None))
    return rows
