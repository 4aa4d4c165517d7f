"""What the report shows, as plain data computed from trials: pure functions, tested directly.

The renderer only draws these; nothing here knows about matplotlib or HTML.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from caviar.core.records import Direction, FrozenTrial, TrialState
from caviar.report.scales import short_label
from caviar.space import Dimension, SearchSpace


@dataclass(frozen=True)
class RoundBox:
    """One coarse-to-fine round on one hyperparameter: the box in values, and the samples.

    On a choice, ``categories`` are its options and ``kept`` the ones the box can sample;
    ``text`` is the box as the report's table shows it.
    """

    round: int
    name: str
    axis: str
    low: Any
    high: Any
    samples: tuple[Any, ...]
    best: Any
    categories: tuple[Any, ...] = ()
    kept: tuple[Any, ...] = ()
    text: str = ""


def _kept_options(dim: Dimension, lo: float, hi: float) -> tuple[Any, ...]:
    """The options of a choice that unit coordinates in ``[lo, hi]`` map to: option ``i``
    owns the bin ``[i/k, (i+1)/k)``, so it is kept if its bin overlaps the box."""
    k = dim.cardinality or 0
    if hi <= lo:
        return (dim.from_unit(lo),)
    return tuple(dim.from_unit((i + 0.5) / k) for i in range(k) if i / k < hi and (i + 1) / k > lo)


def _box_text(low: Any, high: Any, categories: tuple[Any, ...], kept: tuple[Any, ...]) -> str:
    if not categories:
        return f"{short_label(low)} .. {short_label(high)}"
    names = ", ".join(str(c) for c in kept)
    return f"all ({names})" if kept == categories else names


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
            low, high = dim.from_unit(lo), dim.from_unit(hi)
            categories: tuple[Any, ...] = ()
            kept: tuple[Any, ...] = ()
            if dim.axis == "categorical" and dim.cardinality is not None:
                categories = _kept_options(dim, 0.0, 1.0)
                kept = _kept_options(dim, lo, hi)
            boxes.append(
                RoundBox(
                    round=r,
                    name=name,
                    axis=dim.axis,
                    low=low,
                    high=high,
                    samples=tuple(t.params[name] for t in members),
                    best=complete[0].params[name] if complete else None,
                    categories=categories,
                    kept=kept,
                    text=_box_text(low, high, categories, kept),
                )
            )
    return boxes


def rung_value(t: FrozenTrial) -> float | None:
    """A pruned trial's validation score at the rung that stopped it (its last epoch's, for a
    trial that recorded no ``rung_value``); None when it has none."""
    value = t.attrs.get("rung_value")
    if value is None and t.curve:
        value = t.curve[-1].val_accuracy
    return float(value) if value is not None and math.isfinite(value) else None


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
    the best validation accuracy recorded there (``bracket``: which one, where there are
    several)."""

    epoch: int
    reached: int
    pruned: int
    best: float | None
    bracket: int | None = None


def rung_table(trials: Sequence[FrozenTrial]) -> list[RungRow]:
    """One row per rung (per bracket, where there are several) of a study that ran successive
    halving (empty otherwise).

    A trial reached a rung if it trained at least that many epochs; the rungs are the epochs
    recorded on pruned trials (``attrs["rung"]``) and the halving schedule stored with them.
    """
    schedule: Any = next((t.attrs["halving"] for t in trials if t.attrs.get("halving")), None)
    if schedule is None:
        return []
    brackets = int(schedule.get("brackets", 1))
    rows = []
    for bracket in range(brackets):
        mine = [t for t in trials if int(t.attrs.get("bracket", 0)) == bracket]
        first = int(schedule["min_epochs"]) * int(schedule["eta"]) ** bracket
        for row in _rungs(mine, first, int(schedule["eta"])):
            rows.append(replace(row, bracket=bracket if brackets > 1 else None))
    return rows


def _rungs(trials: Sequence[FrozenTrial], first: int, eta: int) -> list[RungRow]:
    """The rows of one bracket, whose rungs start at epoch ``first``."""
    epochs = {int(t.attrs["rung"]) for t in trials if "rung" in t.attrs}
    longest = max((len(t.curve) for t in trials), default=0)
    rung = first
    while rung < longest:
        epochs.add(rung)
        rung *= eta
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


@dataclass(frozen=True)
class WarmRow:
    """One of a warm start's queued configurations: its old trial and value, its new trial and
    how it did on the new data (``None`` until it finished complete)."""

    old_trial: int
    old_value: float
    new_trial: int
    state: str
    new_value: float | None


def warm_start_rows(trials: Sequence[FrozenTrial]) -> tuple[str, list[WarmRow]] | None:
    """The old study's name and its best configurations against their new results, for a study
    that began with a warm start (None otherwise)."""
    warm = [t for t in trials if isinstance(t.attrs.get("warm_start"), Mapping)]
    if not warm:
        return None
    rows = [
        WarmRow(
            int(t.attrs["warm_start"]["trial"]),
            float(t.attrs["warm_start"]["value"]),
            t.number,
            t.state.value,
            t.value,
        )
        for t in sorted(warm, key=lambda t: t.number)
    ]
    return str(warm[0].attrs["warm_start"]["study"]), rows
