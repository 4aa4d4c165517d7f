"""The study report: figures (PNG) and one static HTML page, written beside the study file."""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from caviar.core.atomic import write_atomically
from caviar.report import render
from caviar.report.curve_figures import best_so_far_figure, curves_figure
from caviar.report.curves import best_so_far, top_curves
from caviar.report.data import RungRow, round_boxes, rung_table, warm_start_rows
from caviar.report.facts import overview_rows, uses_of_the_test_set
from caviar.report.importance import Importance, importance
from caviar.report.scatter import scatter_panels
from caviar.storage import SQLiteStorage
from caviar.study import FrozenTrial, Study

__all__ = ["Importance", "default_report_dir", "importance", "write_report"]


def default_report_dir(study: Study) -> Path:
    """``caviar-reports/<study>`` beside the SQLite file (or in the working folder)."""
    base = study.storage.path.parent if isinstance(study.storage, SQLiteStorage) else Path.cwd()
    return base / "caviar-reports" / study.name


def write_report(study: Study, directory: str | os.PathLike[str] | None = None) -> Path:
    """Write ``index.html`` and its figures; returns the page's path."""
    out = Path(directory) if directory is not None else default_report_dir(study)
    out.mkdir(parents=True, exist_ok=True)
    trials = study.trials()
    board = study.leaderboard(curves=True)
    free = list(study.space.free_names)
    attrs = study.attrs
    sections = [_overview(study, trials, board, attrs)]

    progress = best_so_far(trials, study.direction)
    if progress.limits is not None:
        render.save(best_so_far_figure(progress, "validation accuracy"), out / "best.png")
        sections.append(
            "<h2>Best validation accuracy so far</h2><p class='note'>The best score of the "
            "trials finished so far (line) and each trial's own (dots), against trials "
            "finished and against wall time: where the line goes flat, more trials of this "
            "search bought little.</p><img src='best.png'>"
        )
    panels = scatter_panels(study.space, trials, study.direction)
    if panels and board:
        render.save(render.scatter_figure(panels, "validation accuracy"), out / "scatter.png")
        band = panels[0].zoom
        sections.append(
            "<h2>Validation accuracy against each hyperparameter</h2>"
            "<p class='note'>Each on its own scale over its searched range: learning rates on "
            "log10, betas on log(1 - beta). The value axis shows the better half of the "
            f"trials; those below {band.cut:.4g} sit on the bottom row (triangles), diverged "
            "ones too (red crosses). Colours are coarse-to-fine rounds; the star is the best "
            "trial.</p><img src='scatter.png'>"
        )
    ranking = importance(study.space, trials, study.direction, seed=study.seed % 2**32)
    if ranking:
        render.save(render.importance_figure(ranking), out / "importance.png")
        sections.append(
            "<h2>Which hyperparameter mattered</h2><p class='note'>Random-forest importance on "
            "unit-cube coordinates; compare with the course's priority list (learning rate "
            "first).</p><img src='importance.png'>"
            + render.table(
                ["hyperparameter", "importance"],
                [(r.name, round(r.importance, 3)) for r in ranking],
            )
        )
    curves = top_curves(study.space, board, k=20)
    if curves:
        render.save(curves_figure(curves), out / "curves.png")
        sections.append(
            f"<h2>Learning curves of the best {len(curves)}</h2><p class='note'>Accuracy "
            "(top) and loss (bottom, log scale) after each epoch, in eval mode: validation "
            "solid, training dashed. Each panel's axis fits its own curves.</p>"
            "<img src='curves.png'>"
        )
    boxes = round_boxes(study.space, trials, study.direction)
    if boxes:
        render.save(render.rounds_figure(boxes), out / "rounds.png")
        sections.append(
            "<h2>Coarse to fine</h2><p class='note'>Each round's box (bar), its samples (dots) "
            "and its best trial (star).</p><img src='rounds.png'>"
            + render.table(
                ["round", "hyperparameter", "box (values it samples)", "best"],
                [(b.round, b.name, b.text, b.best) for b in boxes],
            )
        )
    rungs = rung_table(trials)
    if rungs:
        sections.append(
            "<h2>Successive halving</h2><p class='note'>At each rung a trial goes on only if it "
            "is among the best 1/eta of the trials that reached the rung before it; the others "
            "are pruned there and their slot goes to the next trial.</p>"
            + render.table(
                [
                    *(["bracket"] if rungs[0].bracket is not None else []),
                    "rung (epoch)",
                    "trials reached",
                    "pruned there",
                    "best validation accuracy",
                ],
                [[*([r.bracket] if r.bracket is not None else []), *_rung_cells(r)] for r in rungs],
            )
        )
    warm = warm_start_rows(trials)
    if warm is not None:
        old, rows = warm
        sections.append(
            f"<h2>Warm start from {html.escape(old)}</h2><p class='note'>The old study's best "
            "configurations, tried first and trained again on this study's data: their old "
            "validation accuracy against the new one.</p>"
            + render.table(
                [
                    "old trial",
                    "old validation accuracy",
                    "new trial",
                    "state",
                    "new validation accuracy",
                ],
                [(r.old_trial, r.old_value, r.new_trial, r.state, r.new_value) for r in rows],
            )
        )
    sections.append(
        "<h2>Leaderboard</h2>"
        + render.table(
            ["rank", "trial", "validation accuracy", *free, "epochs", "seed"],
            [
                (i + 1, t.number, t.value, *(t.params[n] for n in free), len(t.curve), t.seed)
                for i, t in enumerate(board[:50])
            ],
        )
    )
    return write_atomically(out / "index.html", render.page(study.name, sections).encode())


def _overview(
    study: Study, trials: list[FrozenTrial], board: list[FrozenTrial], attrs: Mapping[str, Any]
) -> str:
    rows = overview_rows(trials, attrs, study.sampler.to_config())
    parts = ["<h2>Overview</h2>" + render.table(["", ""], rows)]
    if board:
        best = board[0]
        parts.append(
            f"<h2>Best configuration (trial {best.number}, validation accuracy "
            f"{best.value:.4f})</h2>"
            + render.table(["hyperparameter", "value"], sorted(best.params.items()))
        )
    parts.append(_test_set(study, attrs))
    return "\n".join(parts)


def _test_set(study: Study, attrs: Mapping[str, Any]) -> str:
    history = uses_of_the_test_set(attrs)
    if not history.uses and "config" not in attrs:
        return (
            "<p class='note'>The test set has not been used. This study was made with the "
            "Python API, so it records no data to test on; evaluate its best parameters with "
            "your own code, once.</p>"
        )
    if not history.uses:
        return (
            "<p class='note'>The test set has not been used. <code>caviar test "
            f"{html.escape(study.name)}</code> evaluates the best configuration on it, once."
            "</p>"
        )
    note = f"<p class='note'>{html.escape(history.note)}</p>" if history.note else ""
    return f"<h2>{html.escape(history.heading)}</h2>{note}" + render.table(
        ["when (UTC)", "mode", "trial", "test accuracy", "test loss", "examples", "how"],
        [
            (u.when, u.mode, u.trial, u.accuracy, u.loss, u.n_test or "-", u.how)
            for u in history.uses
        ],
    )


def _rung_cells(r: RungRow) -> list[Any]:
    return [r.epoch, r.reached, r.pruned, r.best]
