"""The report's figures as PNG files, for papers (``caviar report STUDY --png``).

The same figures as the page's, drawn with matplotlib from the same data; each is written
whole or not at all, and listed with the text that stands for it where it cannot be seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from caviar.core.records import FrozenTrial
from caviar.report import render
from caviar.report.curve_figures import best_so_far_figure, curves_figure
from caviar.report.curves import best_so_far, top_curves
from caviar.report.data import round_boxes
from caviar.report.importance import Importance
from caviar.report.scatter import scatter_panels
from caviar.study import Study

#: learning curves drawn in curves.png: the book's 5 x 4 figure of the top 20
TOP_CURVES = 20


def write_pngs(
    study: Study,
    out: Path,
    trials: Sequence[FrozenTrial],
    board: Sequence[FrozenTrial],
    ranking: Sequence[Importance] | None,
) -> list[dict[str, str]]:
    """Write the figures there is data for into ``out``; returns ``{"file", "alt"}`` of each."""
    written = []
    progress = best_so_far(trials, study.direction)
    if progress.limits is not None:
        render.save(best_so_far_figure(progress, "validation accuracy"), out / "best.png")
        alt = "Best validation accuracy so far and each trial's, against trials and wall time"
        written.append({"file": "best.png", "alt": alt})
    panels = scatter_panels(study.space, trials, study.direction)
    if panels and board:
        render.save(render.scatter_figure(panels, "validation accuracy"), out / "scatter.png")
        alt = "Validation accuracy against each searched hyperparameter, on its own scale"
        written.append({"file": "scatter.png", "alt": alt})
    if ranking:
        render.save(render.importance_figure(ranking), out / "importance.png")
        written.append({"file": "importance.png", "alt": "Importance of each hyperparameter"})
    curves = top_curves(study.space, board, k=TOP_CURVES)
    if curves:
        render.save(curves_figure(curves), out / "curves.png")
        alt = f"Learning curves (accuracy and loss per epoch) of the best {len(curves)} trials"
        written.append({"file": "curves.png", "alt": alt})
    boxes = round_boxes(study.space, trials, study.direction)
    if boxes:
        render.save(render.rounds_figure(boxes), out / "rounds.png")
        alt = "Coarse to fine: each round's box, samples and best trial per hyperparameter"
        written.append({"file": "rounds.png", "alt": alt})
    return written
