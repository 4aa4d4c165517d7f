"""The study report: one self-contained HTML page (and, for papers, PNG figures) beside the study.

The page works offline: the study's data is in it once as JSON, and its script draws the figures
with plotly.js, inlined from the installed plotly package (:mod:`caviar.report.page`).
"""

from __future__ import annotations

import os
from pathlib import Path

from caviar.core.atomic import write_atomically
from caviar.report.importance import Importance, importance
from caviar.report.page import page_html, study_data
from caviar.storage import SQLiteStorage
from caviar.study import Study

__all__ = ["Importance", "default_report_dir", "importance", "write_report"]


def default_report_dir(study: Study) -> Path:
    """``caviar-reports/<study>`` beside the SQLite file (or in the working folder)."""
    base = study.storage.path.parent if isinstance(study.storage, SQLiteStorage) else Path.cwd()
    return base / "caviar-reports" / study.name


def write_report(
    study: Study, directory: str | os.PathLike[str] | None = None, *, png: bool = False
) -> Path:
    """Write the study's page, ``index.html`` (with ``png``, the figures as PNG files beside
    it too); returns the page's path."""
    from plotly.offline import get_plotlyjs  # deferred: plotly, for its JavaScript file only

    out = Path(directory) if directory is not None else default_report_dir(study)
    out.mkdir(parents=True, exist_ok=True)
    trials = study.trials()
    board = study.leaderboard(curves=True)
    ranking = importance(study.space, trials, study.direction, seed=study.seed % 2**32)
    pngs: list[dict[str, str]] = []
    if png:
        from caviar.report.pngs import write_pngs  # deferred: matplotlib, only for PNGs

        pngs = write_pngs(study, out, trials, board, ranking)
    page = page_html(study_data(study, trials, board, ranking, pngs), get_plotlyjs())
    return write_atomically(out / "index.html", page.encode())
