"""Drawing curves over time: the top trials' learning curves and the best score so far.

Only drawing happens here; limits and ticks come from :mod:`caviar.report.curves`.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, NullFormatter

from caviar.report.curves import BestSoFar, Curve

ACCURACY, LOSS = "tab:blue", "tab:red"


def curves_figure(curves: Sequence[Curve]) -> Figure:
    """The book's figure: one cell per top trial, accuracy above and loss (log axis) below,
    validation solid and training dashed; one legend under the title, outside the panels."""
    cols = 4 if len(curves) > 4 else max(1, len(curves))
    rows = max(1, math.ceil(len(curves) / cols))
    height = 3.5 * rows + 0.9  # inches: the panels, the legend and the first titles above them
    fig = Figure(figsize=(3.3 * cols, height))  # a fixed grid: layout engines are slow here
    grid = fig.add_gridspec(
        rows, cols, left=0.07, right=0.99, bottom=0.45 / height, top=1.0 - 0.9 / height,
        wspace=0.38, hspace=0.5,
    )  # fmt: skip
    for i, curve in enumerate(curves):
        cell = grid[i // cols, i % cols].subgridspec(2, 1, height_ratios=(3, 2), hspace=0.08)
        acc = fig.add_subplot(cell[0])
        loss = fig.add_subplot(cell[1], sharex=acc)
        acc.plot(curve.epochs, curve.val_accuracy, "-", color=ACCURACY)
        acc.plot(curve.epochs, curve.train_accuracy, "--", color=ACCURACY)
        if curve.accuracy_limits is not None:
            acc.set_ylim(*curve.accuracy_limits)
        params = "\n".join(textwrap.wrap(curve.label, 48))
        acc.set_title(
            f"#{i + 1}  trial {curve.number}  val {curve.value:.3f}\n{params}", fontsize=6.5
        )
        acc.set_ylabel("accuracy", fontsize=7)
        acc.tick_params(labelbottom=False, labelsize=6.5)
        if curve.loss_limits is not None:
            loss.plot(curve.epochs, curve.val_loss, "-", color=LOSS)
            loss.plot(curve.epochs, curve.train_loss, "--", color=LOSS)
            loss.set_yscale("log")
            loss.set_ylim(*curve.loss_limits)
            loss.set_yticks(curve.loss_ticks, [f"{t:g}" for t in curve.loss_ticks])
            loss.yaxis.set_minor_formatter(NullFormatter())
        else:
            loss.text(0.5, 0.5, "no loss recorded", ha="center", va="center", fontsize=7,
                      transform=loss.transAxes)  # fmt: skip
        loss.set_ylabel("loss", fontsize=7)
        loss.set_xlabel("epoch", fontsize=7)
        loss.tick_params(labelsize=6.5)
        if curve.epoch_ticks:
            loss.set_xticks(curve.epoch_ticks)
            first, last = min(curve.epochs), max(curve.epochs)
            loss.set_xlim(*((first, last) if last > first else (first - 0.5, last + 0.5)))
        for ax in (acc, loss):
            ax.grid(alpha=0.3)
    handles = [
        Line2D([], [], color="black", ls="-", label="validation"),
        Line2D([], [], color="black", ls="--", label="training"),
        Line2D([], [], color=ACCURACY, lw=3, label="accuracy"),
        Line2D([], [], color=LOSS, lw=3, label="loss (log scale)"),
    ]
    fig.legend(handles=handles, loc="upper center", ncol=4, frameon=False, fontsize=9)
    return fig


def best_so_far_figure(data: BestSoFar, score: str) -> Figure:
    """The best score so far (a step line) and each trial's own score (dots; a pruned trial's
    hollow, at its last rung), against trials finished and against seconds since the study's
    first trial started. The value axis fits every dot."""
    fig = Figure(figsize=(10.0, 3.6))
    x_axes = (
        (data.finished, "trials finished (in order of finishing)"),
        (data.seconds, "seconds since the first trial started"),
    )
    for i, (x, label) in enumerate(x_axes):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.plot(x, data.values, "o", ms=3, color="grey", alpha=0.5)
        if data.pruned:
            ax.plot(x, data.pruned, "o", ms=3, mfc="none", color="grey", alpha=0.6)
        ax.step(x, data.best, where="post", color="tab:blue", lw=1.8)
        if data.limits is not None:
            ax.set_ylim(*data.limits)
        if i == 0:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(label)
        ax.set_ylabel(f"best {score}")
        ax.grid(alpha=0.3)
    handles = [
        Line2D([], [], color="tab:blue", lw=1.8, label="best so far"),
        Line2D([], [], ls="", marker="o", ms=4, color="grey", label="each trial"),
        Line2D([], [], ls="", marker="o", ms=4, mfc="none", color="grey", label="pruned"),
    ]
    fig.legend(handles=handles, loc="upper center", ncol=3, frameon=False, fontsize=8)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.15, top=0.88, wspace=0.25)
    return fig
