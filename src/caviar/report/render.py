"""Drawing the report: PNG figures with matplotlib and one static HTML page that shows them.

Only drawing happens here; every number comes from :mod:`caviar.report.data` and
:mod:`caviar.report.importance`. Figures are built with ``matplotlib.figure.Figure`` directly,
so no global backend or pyplot state is touched.
"""

from __future__ import annotations

import html
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from caviar.report.data import Curve, RoundBox, ScatterPanel
from caviar.report.importance import Importance


def _one_minus_log_axis(ax: Axes, values: Sequence[float]) -> None:
    """x on a log(1 - beta) axis, labelled in beta: 0.9, 0.99, 0.999 equally spaced."""

    def forward(b: np.ndarray) -> np.ndarray:
        return -np.log10(np.clip(1.0 - np.asarray(b, dtype=float), 1e-12, None))

    def inverse(t: np.ndarray) -> np.ndarray:
        return 1.0 - 10.0 ** (-np.asarray(t, dtype=float))

    ax.set_xscale("function", functions=(forward, inverse))
    if values:
        lo, hi = min(values), max(values)
        candidates = sorted(1.0 - m * 10.0**-k for k in range(0, 7) for m in (5, 2, 1))
        ticks = [t for t in candidates if lo - 1e-12 <= t <= hi + 1e-12] or [lo, hi]
        if len(ticks) > 6:  # keep the powers of ten: 0.9, 0.99, 0.999
            ticks = [t for t in ticks if math.isclose(math.log10(1 - t) % 1, 0, abs_tol=1e-9)]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])


def _set_axis(ax: Axes, axis: str, values: Sequence[Any], categories: Sequence[Any] = ()) -> None:
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if axis == "log":
        ax.set_xscale("log")
    elif axis == "one_minus_log":
        _one_minus_log_axis(ax, [float(v) for v in values])
    elif axis == "categorical":
        ax.set_xticks(range(len(categories)), [str(c) for c in categories])
        ax.set_xlim(-0.5, len(categories) - 0.5)


def _positions(panel_axis: str, values: Sequence[Any], categories: Sequence[Any]) -> np.ndarray:
    if panel_axis != "categorical":
        return np.asarray(values, dtype=float)
    index = {repr(c): i for i, c in enumerate(categories)}
    spread = np.random.default_rng(0).uniform(-0.15, 0.15, len(values))  # jitter, fixed seed
    return np.array([index[repr(v)] for v in values], dtype=float) + spread


def scatter_figure(panels: Sequence[ScatterPanel], score: str) -> Figure:
    cols = min(3, max(1, len(panels)))
    rows = max(1, math.ceil(len(panels) / cols))
    fig = Figure(figsize=(4.2 * cols, 3.3 * rows), layout="tight")
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        x = _positions(panel.axis, panel.x, panel.categories)
        ax.scatter(x, panel.y, s=14, alpha=0.75, label="complete")
        if panel.diverged_x:
            dx = _positions(panel.axis, panel.diverged_x, panel.categories)
            ax.scatter(dx, np.zeros(len(dx)), marker="x", color="tab:red", label="diverged")
        _set_axis(ax, panel.axis, [*panel.x, *panel.diverged_x], panel.categories)
        scale = {"log": " (log10)", "one_minus_log": " (log 1-beta)"}.get(panel.axis, "")
        ax.set_xlabel(panel.name + scale)
        ax.set_ylabel(score)
        ax.grid(alpha=0.3)
        if panel.diverged_x and i == 0:
            ax.legend(fontsize=8)
    return fig


def curves_figure(curves: Sequence[Curve]) -> Figure:
    """The book's figure: one small panel per top trial, train dashed, validation solid."""
    cols = 4 if len(curves) > 4 else max(1, len(curves))
    rows = max(1, math.ceil(len(curves) / cols))
    fig = Figure(figsize=(3.2 * cols, 2.5 * rows))  # a fixed grid: layout engines are slow here
    for i, curve in enumerate(curves):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.plot(curve.epochs, curve.val_accuracy, "-", label="validation")
        ax.plot(curve.epochs, curve.train_accuracy, "--", label="train")
        ax.set_ylim(0.0, 1.0)
        ax.set_title(f"#{i + 1}  trial {curve.number}  val {curve.value:.3f}", fontsize=8)
        label = "\n".join(textwrap.wrap(curve.label, 38))
        ax.text(0.03, 0.04, label, transform=ax.transAxes, fontsize=5.5, va="bottom")
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=7, loc="lower right")
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.06, top=0.94, wspace=0.25, hspace=0.45)
    return fig


def rounds_figure(boxes: Sequence[RoundBox]) -> Figure:
    """Coarse to fine: each round's box (bar) and samples (dots) per hyperparameter."""
    names = list(dict.fromkeys(b.name for b in boxes))
    fig = Figure(figsize=(6.0, 0.6 + 1.6 * len(names)), layout="tight")
    for i, name in enumerate(names):
        ax = fig.add_subplot(len(names), 1, i + 1)
        mine = [b for b in boxes if b.name == name]
        axis = mine[0].axis
        categories: list[Any] = []
        if axis == "categorical":
            categories = list(dict.fromkeys(v for b in mine for v in b.samples))
        for b in mine:
            if axis == "categorical":
                continue
            ax.plot([b.low, b.high], [b.round, b.round], "-", lw=6, alpha=0.3, color="tab:blue")
            ax.scatter(b.samples, [b.round] * len(b.samples), s=8, color="tab:blue")
            if b.best is not None:
                ax.scatter([b.best], [b.round], marker="*", s=90, color="tab:orange")
        if axis == "categorical":
            for b in mine:
                xs = _positions(axis, b.samples, categories)
                ax.scatter(xs, [b.round] * len(xs), s=8, color="tab:blue")
        values = [v for b in mine for v in (*b.samples, b.low, b.high) if v is not None]
        _set_axis(ax, axis, values if axis != "categorical" else [], categories)
        ax.set_ylabel("round")
        ax.set_yticks(sorted({b.round for b in mine}))
        ax.invert_yaxis()
        ax.set_xlabel(name)
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
    fig.savefig(path, dpi=100)
    return path


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return html.escape(f"{value:.4g}")
    return html.escape(str(value))


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>caviar: {title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }}
td, th {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }}
th {{ background: #f3f3f3; }}
img {{ max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }}
.note {{ color: #555; font-size: 0.9em; }}
</style></head><body>
<h1>caviar study <code>{title}</code></h1>
{sections}
</body></html>
"""


def page(title: str, sections: Sequence[str]) -> str:
    return PAGE.format(title=html.escape(title), sections="\n".join(sections))
