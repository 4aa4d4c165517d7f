"""Score against each hyperparameter, as plain data: the points, groups and axes of a scatter.

Each panel's x axis spans the searched range on the hyperparameter's own scale; the y axis is
zoomed on the better half of the trials (the band where the good ones are), and the rest sit on
an edge row so that they still show where they were tried.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from caviar.core.records import Direction, FrozenTrial, TrialState
from caviar.report.data import rung_value
from caviar.report.scales import Zoom, beta_ticks, padded_range, zoom
from caviar.space import Dimension, SearchSpace

#: the value axis of a panel with no complete trial
NO_ZOOM = Zoom((0.0, 1.0), 0.0, 0.0)


@dataclass(frozen=True)
class PointGroup:
    """Trials one panel draws alike.

    ``kind`` is ``round`` (a round's trials inside the zoomed band; round None when the
    sampler has no rounds), ``off_range`` (a round's trials worse than the band, drawn on its
    edge row), ``pruned`` (stopped by successive halving: drawn at the value of their last
    rung, or on the edge row when that is worse than the band), ``diverged`` (on the edge row
    too) or ``best`` (the best trial, drawn on top).
    ``x`` is the position on the panel's axis (a choice's option index on a categorical one),
    ``y`` where the point is drawn.
    """

    kind: str
    round: int | None
    label: str
    x: tuple[Any, ...]
    y: tuple[float, ...]
    numbers: tuple[int, ...]


@dataclass(frozen=True)
class ScatterPanel:
    """Validation score against one hyperparameter, on that hyperparameter's own scale.

    ``x``, ``y`` and ``diverged_x`` are the raw values; ``groups`` are the points as drawn.
    The x axis spans the searched range (``x_limits``); ``x_ticks`` are given where the
    scale needs its own (a beta axis labelled in betas, a choice's options) and empty where
    matplotlib's own ticks serve.
    """

    name: str
    axis: str  # linear | log | one_minus_log | categorical
    x: tuple[Any, ...]
    y: tuple[float, ...]
    numbers: tuple[int, ...]
    diverged_x: tuple[Any, ...]
    categories: tuple[Any, ...] = ()
    groups: tuple[PointGroup, ...] = ()
    zoom: Zoom = NO_ZOOM
    x_limits: tuple[float, float] | None = None
    x_ticks: tuple[float, ...] = ()
    x_tick_labels: tuple[str, ...] = ()
    integer: bool = False


def _round(t: FrozenTrial) -> int | None:
    return int(t.attrs["round"]) if "round" in t.attrs else None


def _position(value: Any, index: dict[str, int]) -> Any:
    """Where a value sits on its axis: itself, or its option's index on a categorical axis."""
    return index[repr(value)] if index else value


def _x_axis(dim: Dimension, categories: tuple[Any, ...]) -> dict[str, Any]:
    """The limits and ticks of a panel's x axis: the searched range on its scale."""
    if dim.axis == "categorical":
        return {
            "x_limits": (-0.5, len(categories) - 0.5),
            "x_ticks": tuple(range(len(categories))),
            "x_tick_labels": tuple(str(c) for c in categories),
        }
    low, high = dim.from_unit(0.0), dim.from_unit(1.0)
    axis: dict[str, Any] = {"x_limits": padded_range(dim.axis, low, high)}
    if dim.axis == "one_minus_log":
        ticks = beta_ticks(low, high)
        axis |= {"x_ticks": ticks, "x_tick_labels": tuple(f"{b:g}" for b in ticks)}
    return axis


def _trial_groups(
    complete: list[FrozenTrial],
    pruned: list[FrozenTrial],
    diverged: list[FrozenTrial],
    inside: set[int],
    best: list[FrozenTrial],
) -> list[tuple[str, int | None, str, list[FrozenTrial]]]:
    """(kind, round, label, trials) of each non-empty group, in drawing order."""
    rounds = sorted({_round(t) for t in complete}, key=lambda r: -1 if r is None else r)
    groups: list[tuple[str, int | None, str, list[FrozenTrial]]] = [
        ("pruned", None, "pruned (score at its last rung)", pruned)
    ]
    for r in rounds:
        mine = [t for t in complete if _round(t) == r]
        label = "complete" if r is None else f"round {r}"
        groups.append(("round", r, label, [t for t in mine if t.number in inside]))
        groups.append(("off_range", r, label, [t for t in mine if t.number not in inside]))
    groups.append(("diverged", None, "diverged", diverged))
    if best:
        groups.append(("best", None, f"best (trial {best[0].number})", best))
    return [g for g in groups if g[3]]


def _drawn_at(
    kind: str, number: int, scores: dict[int, float], inside: set[int], edge: float
) -> float:
    """Where a point sits on the value axis: its score, or the edge row below the band."""
    if kind in ("off_range", "diverged") or (kind == "pruned" and number not in inside):
        return edge
    return scores[number]


def scatter_panels(
    space: SearchSpace,
    trials: Sequence[FrozenTrial],
    direction: Direction = Direction.MAXIMIZE,
) -> list[ScatterPanel]:
    """One panel per searched hyperparameter: complete trials' values and scores, coloured by
    coarse-to-fine round, zoomed on the better half (:func:`~caviar.report.scales.zoom`),
    with worse and diverged trials on the edge row, pruned trials at the score of their last
    rung (the zoom is the complete trials' alone) and the best trial marked."""
    complete = [t for t in trials if t.state is TrialState.COMPLETE and t.value is not None]
    pruned = [t for t in trials if t.state is TrialState.PRUNED and rung_value(t) is not None]
    diverged = [t for t in trials if t.state is TrialState.DIVERGED]
    scores = {t.number: float(t.value or 0.0) for t in complete}
    band = zoom(scores.values(), direction)
    at_rung = {t.number: rung_value(t) or 0.0 for t in pruned}
    drawn = scores | at_rung
    inside = {n for n, v in drawn.items() if not direction.better(band.cut, v)}
    ranked = sorted(complete, key=lambda t: (direction.sort_key(scores[t.number]), t.number))
    sets = _trial_groups(complete, pruned, diverged, inside, ranked[:1])
    panels = []
    for name in space.free_names:
        dim = space[name]
        categories: tuple[Any, ...] = ()
        if dim.axis == "categorical" and dim.cardinality is not None:
            categories = tuple(dim.from_unit(u) for u in dim.grid_units(dim.cardinality))
        index = {repr(c): i for i, c in enumerate(categories)}
        groups = tuple(
            PointGroup(
                kind=kind,
                round=r,
                label=label,
                x=tuple(_position(t.params[name], index) for t in members),
                y=tuple(_drawn_at(kind, t.number, drawn, inside, band.edge) for t in members),
                numbers=tuple(t.number for t in members),
            )
            for kind, r, label, members in sets
        )
        panels.append(
            ScatterPanel(
                name=name,
                axis=dim.axis,
                x=tuple(t.params[name] for t in complete),
                y=tuple(scores[t.number] for t in complete),
                numbers=tuple(t.number for t in complete),
                diverged_x=tuple(t.params[name] for t in diverged),
                categories=categories,
                groups=groups,
                zoom=band,
                integer=bool(getattr(dim, "integer", False)),
                **_x_axis(dim, categories),
            )
        )
    return panels
