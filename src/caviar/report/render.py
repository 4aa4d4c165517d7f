"""Drawing the report's PNG figures with matplotlib (``caviar report --png``; the page itself is
drawn by its own script, :mod:`caviar.report.page`).

Only drawing happens here; every number, limit and tick comes from :mod:`caviar.report.scatter`,
:mod:`caviar.report.data`, :mod:`caviar.report.scales` and :mod:`caviar.report.importance`
(curves are drawn in :mod:`caviar.report.curve_figures`). Figures are built with
``matplotlib.figure.Figure`` directly, so no global backend or pyplot state is touched.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, NullLocator

from caviar.core.atomic import write_atomically
from caviar.report.data import RoundBox
from caviar.report.importance import Importance
from caviar.report.scales import SCALE_NAMES, beta_ticks, padded_range
from caviar.report.scatter import ScatterPanel


def round_colour(r: int | None) -> str:
    """One colour per coarse-to-fine round (tab10); trials of no round are blue."""
    return f"C{0 if r is None else r % 10}"


def _scale_x(ax: Axes, axis: str) -> None:
    """Put the x axis on a dimension's scale: log10, or -log10(1 - beta) for betas."""
    if axis == "log":
        ax.set_xscale("log")
    elif axis == "one_minus_log":
        ax.set_xscale("function", functions=(_beta_forward, _beta_inverse))


def _beta_forward(b: np.ndarray) -> np.ndarray:
    """-log10(1 - beta) on arrays; matplotlib also asks beyond 1, clipped here."""
    return -np.log10(np.clip(1.0 - np.asarray(b, dtype=float), 1e-12, None))


def _beta_inverse(t: np.ndarray) -> np.ndarray:
    return 1.0 - 10.0 ** (-np.asarray(t, dtype=float))


def _jitter(values: Sequence[Any], categorical: bool, numbers: Sequence[int]) -> np.ndarray:
    """Positions as floats; on a choice, each trial moved a little (by its number, so the same
    trial lands on the same spot in every group) so that its points do not stack."""
    x = np.asarray(values, dtype=float)
    if categorical:
        x = x + np.array([np.random.default_rng(n).uniform(-0.15, 0.15) for n in numbers])
    return x


STYLE = {  # marker, size, colour (None: the round's), alpha, z-order
    "pruned": ("o", 12, "silver", 0.8, 1),
    "round": ("o", 16, None, 0.8, 2),
    "off_range": ("v", 18, None, 0.6, 2),
    "diverged": ("x", 22, "tab:red", 0.9, 3),
    "best": ("*", 170, "gold", 1.0, 4),
}


def _scatter_legend(fig: Figure, panel: ScatterPanel) -> None:
    """One legend under the panels: the rounds' colours, then the edge row, diverged, best."""
    handles, seen = [], set()
    order = ("round", "off_range", "pruned", "diverged", "best")
    for g in sorted(panel.groups, key=lambda g: order.index(g.kind)):
        marker, _, colour, _, _ = STYLE[g.kind]
        if g.kind == "off_range":
            label, colour = f"worse than the band ({panel.zoom.tick_labels[0]})", "grey"
        else:
            label, colour = g.label, colour or round_colour(g.round)
        if label in seen:
            continue
        seen.add(label)
        edge = "black" if g.kind == "best" else colour
        handles.append(
            Line2D([], [], ls="", marker=marker, color=colour, mec=edge, ms=9, label=label)
        )
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)


def scatter_figure(panels: Sequence[ScatterPanel], score: str) -> Figure:
    """One panel per hyperparameter: zoomed on the good band, coloured by round, the best
    starred; worse and diverged trials on the edge row at the bottom (top when minimising)."""
    cols = min(3, max(1, len(panels)))
    rows = max(1, math.ceil(len(panels) / cols))
    height = 3.3 * rows + 0.5  # inches: the panels and the legend under them
    fig = Figure(figsize=(4.2 * cols, height))
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        _scale_x(ax, panel.axis)
        for g in panel.groups:
            marker, size, colour, alpha, z = STYLE[g.kind]
            edges: dict[str, Any] = {}
            if g.kind == "best":
                edges = {"edgecolors": "black", "linewidths": 0.6}
            ax.scatter(
                _jitter(g.x, panel.axis == "categorical", g.numbers),
                g.y,
                marker=marker,
                s=size,
                color=colour or round_colour(g.round),
                alpha=alpha,
                zorder=z,
                **edges,
            )
        zoom = panel.zoom
        ax.set_ylim(*zoom.limits)
        if zoom.ticks:
            ax.set_yticks(zoom.ticks, zoom.tick_labels)
            ax.axhline((zoom.cut + zoom.edge) / 2, color="grey", lw=0.6, ls=":")
        if panel.x_limits is not None:
            ax.set_xlim(*panel.x_limits)
        if panel.x_ticks:
            ax.set_xticks(panel.x_ticks, panel.x_tick_labels)
            ax.xaxis.set_minor_locator(NullLocator())
        elif panel.integer:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(panel.name + SCALE_NAMES.get(panel.axis, ""))
        ax.set_ylabel(score)
        ax.grid(alpha=0.3)
    if panels and panels[0].groups:
        _scatter_legend(fig, panels[0])
    fig.subplots_adjust(
        left=0.07, right=0.98, top=1 - 0.15 / height, bottom=1.05 / height, wspace=0.28, hspace=0.4
    )
    return fig


def rounds_figure(boxes: Sequence[RoundBox]) -> Figure:
    """Coarse to fine: each round's box (bar), samples (dots) and best (star) per
    hyperparameter; on a choice the bar covers the options the box keeps."""
    names = list(dict.fromkeys(b.name for b in boxes))
    fig = Figure(figsize=(6.0, 0.6 + 1.6 * len(names)), layout="tight")
    for i, name in enumerate(names):
        ax = fig.add_subplot(len(names), 1, i + 1)
        mine = [b for b in boxes if b.name == name]
        axis = mine[0].axis
        categorical = axis == "categorical"
        _scale_x(ax, axis)
        for b in mine:
            colour = round_colour(b.round)
            if categorical:
                where = {repr(c): k for k, c in enumerate(b.categories)}
                kept = [where[repr(c)] for c in b.kept]
                low, high = min(kept) - 0.35, max(kept) + 0.35
                samples = _jitter([where[repr(v)] for v in b.samples], True, range(len(b.samples)))
                best = None if b.best is None else where[repr(b.best)]
            else:
                low, high, samples, best = b.low, b.high, np.asarray(b.samples, float), b.best
            ax.plot([low, high], [b.round, b.round], "-", lw=6, alpha=0.3, color=colour)
            ax.scatter(samples, [b.round] * len(samples), s=8, color=colour)
            if best is not None:
                ax.scatter([best], [b.round], marker="*", s=90, color="gold", ec="black", lw=0.5)
        first = mine[0]
        if categorical:
            ax.set_xticks(range(len(first.categories)), [str(c) for c in first.categories])
            ax.set_xlim(-0.5, len(first.categories) - 0.5)
        else:
            ax.set_xlim(*padded_range(axis, min(b.low for b in mine), max(b.high for b in mine)))
            if axis == "one_minus_log":
                ticks = beta_ticks(first.low, first.high)
                ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
                ax.xaxis.set_minor_locator(NullLocator())
            elif all(isinstance(v, int) and not isinstance(v, bool) for v in first.samples):
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("round")
        ax.set_yticks(sorted({b.round for b in mine}))
        ax.set_ylim(max(b.round for b in mine) + 0.5, -0.5)  # round 0 on top
        ax.set_xlabel(name + SCALE_NAMES.get(axis, ""))
        ax.grid(alpha=0.3)
    return fig


def importance_figure(ranking: Sequence[Importance]) -> Figure:
    fig = Figure(figsize=(5.0, 0.8 + 0.4 * len(ranking)), layout="tight")
    ax = fig.add_subplot(1, 1, 1)
    names = [r.name for r in ranking][::-1]
    ax.barh(names, [r.importance for r in ranking][::-1], color="tab:green")
    ax.set_xlabel("importance (random forest, share)")
    ax.set_xlim(0.0, 1.0)
    return fig


def save(fig: Figure, path: Path) -> Path:
    """The figure as a PNG at ``path``, written whole or not at all."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=100, format="png")
    return write_atomically(path, buffer.getvalue())
