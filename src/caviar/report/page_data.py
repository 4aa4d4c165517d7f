"""What the page's figures draw, as plain data: every trial, and each figure's points and axes.

The page (:mod:`caviar.report.page`) holds this once as JSON and its script only draws it: every
position, range, tick and hover text is computed here, from :mod:`~caviar.report.scatter`,
:mod:`~caviar.report.curves`, :mod:`~caviar.report.scales` and :mod:`~caviar.report.importance`.
Values are made strict JSON by :func:`strict`: a number that is not finite is ``null``.

An axis is given as plotly takes it: ``type`` (``log`` takes the values themselves and its
``range`` in log10), ``range``, and ``tickvals``/``ticktext`` where the scale needs its own ticks.
A beta is drawn at ``-log10(1 - beta)`` on a linear axis whose ticks are labelled in betas; a
choice at its option's index, each trial moved a little so that equal choices do not stack.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from caviar.core.records import Direction, FrozenTrial, TrialState
from caviar.report.curves import BestSoFar
from caviar.report.data import rung_value
from caviar.report.scales import SCALE_NAMES, TRANSFORMS, beta_ticks, log_ticks, value_ticks
from caviar.report.scatter import PointGroup, ScatterPanel
from caviar.space import Dimension, SearchSpace

#: significant digits kept of a learning curve's points (the page draws them, nothing more)
CURVE_DIGITS = 6


def value_text(value: Any) -> str:
    """A value as caviar's tables print it: floats to 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def strict(value: Any) -> Any:
    """``value`` with every float that is not finite (NaN, infinities) replaced by None, and
    tuples made lists: what ``json.dumps(..., allow_nan=False)`` accepts."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict(v) for v in value]
    return value


def jitter(number: int) -> float:
    """A trial's offset on a choice's axis, in [-0.15, 0.15): the same for the trial in every
    panel (the golden-ratio sequence spreads consecutive trials apart)."""
    return 0.3 * ((number * 0.6180339887498949) % 1.0) - 0.15


def state_text(t: FrozenTrial) -> str:
    """A trial's state; a pruned one's with the rung that stopped it and its score there."""
    if t.state is TrialState.PRUNED and "rung" in t.attrs:
        at = rung_value(t)
        score = "" if at is None else f": {value_text(at)}"
        return f"pruned at epoch {t.attrs['rung']}{score}"
    return t.state.value


def trial_record(t: FrozenTrial, free: Sequence[str], score: str) -> dict[str, Any]:
    """One trial as the page keeps it: its values (and their text), state, round, learning
    curve and the text its points show on hover."""
    text = {n: value_text(t.params[n]) for n in free}
    lines = [
        f"<b>trial {t.number}</b> ({html.escape(state_text(t))})",
        *([f"{score} {value_text(t.value)}"] if t.value is not None else []),
        *(f"{html.escape(n)} = {html.escape(text[n])}" for n in free),
    ]
    curve = {
        name: [float(f"{getattr(r, name):.{CURVE_DIGITS}g}") for r in t.curve]
        for name in ("train_accuracy", "val_accuracy", "train_loss", "val_loss")
    }
    return {
        "number": t.number,
        "state": t.state.value,
        "value": t.value,
        "params": dict(t.params),
        "text": text,
        "round": t.attrs.get("round"),
        "bracket": t.attrs.get("bracket"),
        "rung": t.attrs.get("rung"),
        "rung_value": rung_value(t) if t.state is TrialState.PRUNED else None,
        "epochs": len(t.curve),
        "seed": t.seed,
        "hover": "<br>".join(lines),
        "curve": {"epoch": [r.epoch for r in t.curve], **curve},
    }


def best_so_far_data(progress: BestSoFar) -> dict[str, Any]:
    """The best value so far and each trial's own, against trials finished and wall time;
    the value axis (``range``) fits every dot and the line."""
    return {
        "numbers": progress.numbers,
        "finished": progress.finished,
        "seconds": progress.seconds,
        "values": progress.values,
        "pruned": progress.pruned,
        "best": progress.best,
        "range": progress.limits,
    }


def _forward(axis: str) -> Callable[[float], float]:
    """Where a value sits on a linear axis: -log10(1 - beta) for a beta, else the value."""
    return TRANSFORMS["one_minus_log"][0] if axis == "one_minus_log" else TRANSFORMS["linear"][0]


def integer_ticks(low: float, high: float) -> tuple[float, ...]:
    """Round ticks in ``[low, high]`` that are whole numbers (an integer's axis)."""
    return tuple(v for v in value_ticks(low, high) if float(v).is_integer())


def scatter_axis(panel: ScatterPanel) -> dict[str, Any]:
    """A panel's x axis as plotly takes it: the searched range on the hyperparameter's scale."""
    title = panel.name + SCALE_NAMES.get(panel.axis, "")
    low, high = panel.x_limits or (0.0, 1.0)
    if panel.axis == "log":
        return {"type": "log", "range": (math.log10(low), math.log10(high)), "title": title}
    forward = _forward(panel.axis)
    axis: dict[str, Any] = {"type": "linear", "range": (forward(low), forward(high))}
    ticks: tuple[float, ...] = panel.x_ticks
    labels = panel.x_tick_labels
    if not ticks and panel.integer:
        ticks = integer_ticks(low, high)
        labels = tuple(f"{t:g}" for t in ticks)
    if ticks:
        axis |= {"tickvals": [forward(t) for t in ticks], "ticktext": list(labels)}
    return axis | {"title": title}


def _group(panel: ScatterPanel, g: PointGroup) -> dict[str, Any]:
    """One group of points as drawn: x on the panel's axis, y on the zoomed value axis."""
    if panel.axis == "categorical":
        x = [i + jitter(n) for i, n in zip(g.x, g.numbers, strict=True)]
    else:
        x = [_forward(panel.axis)(v) for v in g.x]
    label = g.label
    zoom = panel.zoom
    if g.kind == "off_range" and zoom.edge in zoom.ticks:  # the edge row's tick: "< cut"
        label = f"{g.label}: worse than the band ({zoom.tick_labels[zoom.ticks.index(zoom.edge)]})"
    return {
        "kind": g.kind,
        "round": g.round,
        "label": label,
        "numbers": g.numbers,
        "x": x,
        "y": g.y,
    }


def scatter_data(panels: Sequence[ScatterPanel]) -> dict[str, Any] | None:
    """Validation score against each hyperparameter: one panel each, on one zoomed value axis
    whose lowest tick is the edge row of the trials worse than the band (None: nothing to
    draw)."""
    if not panels or not panels[0].groups:
        return None
    band = panels[0].zoom
    return {
        "y": {
            "range": band.limits,
            "tickvals": band.ticks,
            "ticktext": band.tick_labels,
            "edge_line": (band.cut + band.edge) / 2 if band.ticks else None,
        },
        "panels": [
            {
                "name": p.name,
                "x_axis": scatter_axis(p),
                "groups": [_group(p, g) for g in p.groups],
            }
            for p in panels
        ],
    }


def _parallel_axis(name: str, dim: Dimension, values: list[Any]) -> dict[str, Any]:
    """One axis of the parallel coordinates, over the searched range: log10 of a log
    dimension, -log10(1 - beta), a choice's option index, ticks labelled in values (so the
    label is the name alone: the axes stand close together on a phone)."""
    axis = dim.axis
    low, high = dim.from_unit(0.0), dim.from_unit(1.0)
    if axis == "categorical" and dim.cardinality is not None:
        options = [dim.from_unit(u) for u in dim.grid_units(dim.cardinality)]
        index = {repr(o): i for i, o in enumerate(options)}
        return {
            "label": name,
            "values": [index[repr(v)] for v in values],
            "range": (-0.25, len(options) - 0.75),
            "tickvals": list(range(len(options))),
            "ticktext": [str(o) for o in options],
        }
    if axis == "log":
        ticks = log_ticks(low, high)
        return {
            "label": name,
            "values": [math.log10(v) for v in values],
            "range": (math.log10(low), math.log10(high)),
            "tickvals": [math.log10(t) for t in ticks],
            "ticktext": [f"{t:g}" for t in ticks],
        }
    forward = _forward(axis)
    ticks = beta_ticks(low, high) if axis == "one_minus_log" else ()
    if getattr(dim, "integer", False):
        ticks = integer_ticks(low, high)
    found: dict[str, Any] = {
        "label": name,
        "values": [forward(v) for v in values],
        "range": (forward(low), forward(high)),
    }
    if ticks:
        found |= {"tickvals": [forward(t) for t in ticks], "ticktext": [f"{t:g}" for t in ticks]}
    return found


def parallel_data(
    space: SearchSpace, trials: Sequence[FrozenTrial], score: str
) -> dict[str, Any] | None:
    """Parallel coordinates of the complete trials: one axis per searched hyperparameter on
    its own scale, then the score (the lines' colour)."""
    complete = [t for t in trials if t.state is TrialState.COMPLETE and t.value is not None]
    if not complete or space.n_free == 0:
        return None
    dims = [_parallel_axis(n, space[n], [t.params[n] for t in complete]) for n in space.free_names]
    scores = [float(t.value or 0.0) for t in complete]
    dims.append({"label": score, "values": scores, "range": (min(scores), max(scores))})
    return {"dims": dims, "numbers": [t.number for t in complete], "score": scores}


def train_metrics(attrs: Mapping[str, Any]) -> str:
    """How the study measured its training curves: ``pass`` (the epoch's own mini-batches,
    the default) or ``full`` (a pass over the training set in eval mode)."""
    config = attrs.get("config")
    search = config.get("search") if isinstance(config, Mapping) else None
    found = search.get("train_metrics") if isinstance(search, Mapping) else None
    return str(found or "pass")


def top_numbers(board: Sequence[FrozenTrial], k: int) -> list[int]:
    """The numbers of the best ``k`` complete trials, best first (ties: lower number first)."""
    return [t.number for t in board[:k]]


def best_first(trials: Sequence[FrozenTrial], direction: Direction) -> list[FrozenTrial]:
    """Complete trials best first, then pruned ones by their score at the rung that stopped
    them, then the rest by number."""

    def key(t: FrozenTrial) -> tuple[int, float, int]:
        if t.state is TrialState.COMPLETE and t.value is not None:
            return (0, direction.sort_key(t.value), t.number)
        at_rung = rung_value(t) if t.state is TrialState.PRUNED else None
        if at_rung is not None:
            return (1, direction.sort_key(at_rung), t.number)
        return (2, 0.0, t.number)

    return sorted(trials, key=key)
