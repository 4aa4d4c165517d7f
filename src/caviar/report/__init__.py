"""The study report: figures (PNG) and one static HTML page, written beside the study file."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from caviar.report import render
from caviar.report.data import round_boxes, rung_table, scatter_panels, summary, top_curves
from caviar.report.importance import Importance, importance
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

    panels = scatter_panels(study.space, trials)
    if panels and board:
        render.save(render.scatter_figure(panels, "validation accuracy"), out / "scatter.png")
        sections.append(
            "<h2>Validation accuracy against each hyperparameter</h2>"
            "<p class='note'>Each on its own scale: learning rates on log10, betas on "
            "log(1 - beta); red crosses mark diverged trials.</p><img src='scatter.png'>"
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
        render.save(render.curves_figure(curves), out / "curves.png")
        sections.append(
            f"<h2>Learning curves of the best {len(curves)}</h2><p class='note'>Validation "
            "solid, training dashed (accuracy in eval mode after each epoch).</p>"
            "<img src='curves.png'>"
        )
    boxes = round_boxes(study.space, trials, study.direction)
    if boxes:
        render.save(render.rounds_figure(boxes), out / "rounds.png")
        sections.append(
            "<h2>Coarse to fine</h2><p class='note'>Each round's box (bar), its samples (dots) "
            "and its best trial (star).</p><img src='rounds.png'>"
            + render.table(
                ["round", "hyperparameter", "low", "high", "best"],
                [(b.round, b.name, b.low, b.high, b.best) for b in boxes],
            )
        )
    rungs = rung_table(trials)
    if rungs:
        sections.append(
            "<h2>Successive halving</h2><p class='note'>At each rung a trial goes on only if it "
            "is among the best 1/eta of the trials that reached the rung before it; the others "
            "are pruned there and their slot goes to the next trial.</p>"
            + render.table(
                ["rung (epoch)", "trials reached", "pruned there", "best validation accuracy"],
                [(r.epoch, r.reached, r.pruned, r.best) for r in rungs],
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
    path = out / "index.html"
    path.write_text(render.page(study.name, sections), encoding="utf-8")
    return path


def _overview(
    study: Study, trials: list[FrozenTrial], board: list[FrozenTrial], attrs: Mapping[str, Any]
) -> str:
    facts = summary(trials)
    data = attrs.get("data", {})
    rows = [
        ("trials", facts["trials"]),
        *((f"  {state}", n) for state, n in facts["states"].items() if n),
        ("wall time (s)", round(facts["wall_seconds"], 1)),
        ("data", data.get("source", "-")),
        (
            "train / validation / test",
            " / ".join(str(data.get(k, "?")) for k in ("n_train", "n_validation", "n_test")),
        ),
        ("validation split hash", str(data.get("split_hash", "-"))[:16]),
        ("sampler", json.dumps(study.sampler.to_config())),
        ("versions", json.dumps(attrs.get("versions", {}))),
    ]
    parts = ["<h2>Overview</h2>" + render.table(["", ""], rows)]
    if board:
        best = board[0]
        parts.append(
            f"<h2>Best configuration (trial {best.number}, validation accuracy "
            f"{best.value:.4f})</h2>"
            + render.table(["hyperparameter", "value"], sorted(best.params.items()))
        )
    test = attrs.get("test")
    if test:
        parts.append(
            "<h2>Test set (used once)</h2>"
            + render.table(["", ""], [(k, v) for k, v in test.items()])
        )
    else:
        parts.append(
            "<p class='note'>The test set has not been used. <code>caviar test "
            f"{html.escape(study.name)}</code> evaluates the best configuration on it, once."
            "</p>"
        )
    return "\n".join(parts)
