"""Axis arithmetic for the report's figures: limits, ticks and the zoom on the good trials.

Pure functions over numbers, so every limit and tick a figure shows is computed (and tested)
here; the renderers only hand them to matplotlib. A scale is a transform ``t(v)`` and its
inverse: the identity, ``log10 v``, or ``-log10(1 - v)`` for betas (the search's own scales).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from caviar.core.records import Direction

Transform = tuple[Callable[[float], float], Callable[[float], float]]

#: axis name -> (forward, inverse); an axis not named here is linear
TRANSFORMS: dict[str, Transform] = {
    "linear": (lambda v: v, lambda t: t),
    "log": (math.log10, lambda t: 10.0**t),
    "one_minus_log": (lambda v: -math.log10(1.0 - v), lambda t: 1.0 - 10.0**-t),
}

#: how an axis title names its scale
SCALE_NAMES = {"log": " (log scale)", "one_minus_log": " (log scale of 1 - beta)"}

#: share of the data's span added on each side of fitted limits
MARGIN = 0.05


def short_label(value: object) -> str:
    """A value as a plot or table shows it: floats to 3 significant digits."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _widen(lo: float, hi: float, margin: float) -> tuple[float, float]:
    """``[lo, hi]`` widened by ``margin`` of its span; a single value by ``margin`` of
    ``max(|value|, 1)``, so that it still gets a visible range."""
    pad = margin * ((hi - lo) or max(abs(hi), 1.0))
    return lo - pad, hi + pad


def padded_range(axis: str, low: float, high: float, margin: float = MARGIN) -> tuple[float, float]:
    """A dimension's bounds widened by ``margin`` of its span on its own scale, so that the
    trials at the bounds are drawn whole."""
    forward, inverse = TRANSFORMS.get(axis, TRANSFORMS["linear"])
    lo, hi = _widen(forward(low), forward(high), margin)
    return inverse(lo), inverse(hi)


def fit_limits(
    values: Iterable[float], margin: float = MARGIN, *, log: bool = False
) -> tuple[float, float] | None:
    """Limits that fit the finite values (the positive ones on a log axis) with ``margin`` of
    their span on each side; None when there is nothing to draw."""
    kept = [v for v in values if math.isfinite(v) and (v > 0 or not log)]
    if not kept:
        return None
    if not log:
        return _widen(min(kept), max(kept), margin)
    lo, hi = _widen(math.log10(min(kept)), math.log10(max(kept)), margin)
    return 10.0**lo, 10.0**hi


def beta_ticks(low: float, high: float, most: int = 5) -> tuple[float, ...]:
    """Ticks of a beta axis, in betas: both ends, and the round betas ``1 - m * 10**-k``
    (m = 5, 2, 1) between them; only the powers of ten (0.9, 0.99, ...) when that makes more
    than ``most``. Round betas closer to an end than 8% of the axis are left out (their labels
    would overlap)."""
    forward = TRANSFORMS["one_minus_log"][0]
    span = forward(high) - forward(low)
    inside = sorted(
        round(1.0 - m * 10.0**-k, k + 1)
        for k in range(1, 13)
        for m in (5, 2, 1)
        if low < round(1.0 - m * 10.0**-k, k + 1) < high
    )
    if len(inside) + 2 > most:
        inside = [b for b in inside if math.isclose(math.log10(1.0 - b) % 1.0, 0.0, abs_tol=1e-9)]
    inside = [
        b
        for b in inside
        if min(forward(b) - forward(low), forward(high) - forward(b)) >= 0.08 * span
    ]
    return (low, *inside, high) if high > low else (low,)


def log_ticks(low: float, high: float) -> tuple[float, ...]:
    """Ticks of a log axis over ``[low, high]``: the powers of ten in it, or if fewer than two
    fit, the values 1, 2, 5 times a power of ten, or else every 1..9 times a power of ten."""
    if not 0 < low <= high:
        return ()
    found: list[float] = []
    for mantissas in ((1,), (1, 2, 5), tuple(range(1, 10))):
        found = [
            float(f"{m}e{k}")
            for k in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
            for m in mantissas
            if low <= float(f"{m}e{k}") <= high
        ]
        if len(found) >= 2:
            break
    return tuple(found)


def epoch_ticks(last: int, most: int = 8) -> tuple[int, ...]:
    """Whole-epoch ticks up to ``last``: every epoch, or every 2nd, 5th, 10th, 20th, ...
    epoch, whichever first gives at most ``most`` ticks."""
    step = 1
    for k in range(10):
        for m in (1, 2, 5):
            step = m * 10**k
            if last // step <= most:
                return tuple(range(step, last + 1, step))
    return tuple(range(step, last + 1, step))


def value_ticks(low: float, high: float, most: int = 6) -> tuple[float, ...]:
    """Round ticks in ``[low, high]``: multiples of the smallest step ``m * 10**k``
    (m = 1, 2, 5) that gives at most ``most`` of them."""
    if not (math.isfinite(low) and math.isfinite(high)) or high < low:
        return ()
    k = math.floor(math.log10(max(high - low, 1e-12))) - 2
    while True:
        for m in (1, 2, 5):
            step = m * 10.0**k
            first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
            if last - first + 1 <= most:
                digits = max(0, -k)
                return tuple(round(i * step, digits) for i in range(first, last + 1))
        k += 1


@dataclass(frozen=True)
class Zoom:
    """The value axis of a scatter, zoomed on the better half of the trials.

    Values worse than ``cut`` are drawn at ``edge``, a row just outside the zoomed band, so
    that they still show where in the range they were tried.
    """

    limits: tuple[float, float]
    cut: float
    edge: float
    ticks: tuple[float, ...] = ()
    tick_labels: tuple[str, ...] = ()


def zoom(values: Iterable[float], direction: Direction) -> Zoom:
    """From the median value to the best one, widened by a tenth of that span, and an edge row
    for the trials below (for a minimised value: above).

    With median ``m``, best ``b`` and ``pad = (b - m) / 10``, maximising: ``cut = m - pad``,
    ``edge = m - 2 pad``, limits ``(m - 3 pad, b + pad)``. If every value is the same, ``b - m``
    is taken as 5% of ``max(|b|, 1)``. Ticks: round values inside the band, and the edge row
    labelled ``< cut`` (``> cut`` when minimising).
    """
    sign = 1.0 if direction is Direction.MAXIMIZE else -1.0
    goodness = [sign * v for v in values if math.isfinite(v)]
    if not goodness:
        return Zoom((0.0, 1.0), -math.inf if sign > 0 else math.inf, 0.0)
    median, best = statistics.median(goodness), max(goodness)
    pad = 0.1 * ((best - median) or 0.05 * max(abs(best), 1.0))
    low, high = sorted((sign * (median - 3 * pad), sign * (best + pad)))
    cut, edge = sign * (median - pad), sign * (median - 2 * pad)
    band = value_ticks(cut, high) if sign > 0 else value_ticks(low, cut)
    ticks = sorted((*band, edge))
    labels = [f"{t:g}" for t in ticks]
    labels[ticks.index(edge)] = f"{'<' if sign > 0 else '>'} {cut:.3g}"
    return Zoom((low, high), cut, edge, tuple(ticks), tuple(labels))
