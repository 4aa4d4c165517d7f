"""The report's page: one HTML file that works offline, drawn in the browser from the study's JSON.

The study's data is in the page once, as ``<script type="application/json" id="study-data">``;
the page's script (:mod:`caviar.report.page_script`) draws every figure with plotly.js, which is
inlined from the installed plotly package (no CDN, nothing fetched), and builds every table. A
live dashboard can serve the same page and hand its script fresh data (``caviarReport.show``).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from caviar.core.records import FrozenTrial, TrialState
from caviar.report import page_tables as tables
from caviar.report.curves import best_so_far
from caviar.report.data import round_boxes, rung_table, summary, warm_start_rows
from caviar.report.facts import overview_rows, uses_of_the_test_set
from caviar.report.importance import Importance
from caviar.report.page_data import (
    best_so_far_data,
    parallel_data,
    scatter_data,
    strict,
    top_numbers,
    train_metrics,
    trial_record,
)
from caviar.report.page_script import SCRIPT
from caviar.report.scales import epoch_ticks
from caviar.report.scatter import scatter_panels
from caviar.study import Study

SCORE = "validation accuracy"
#: trials whose learning curves the page shows before any is clicked
FIRST_CURVES = 5


def study_data(
    study: Study,
    trials: Sequence[FrozenTrial],
    board: Sequence[FrozenTrial],
    ranking: Sequence[Importance] | None,
    pngs: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """Everything the page shows of a study, as strict JSON data: the trials, each figure's
    data with its title and note (None: nothing to draw), the tables, and the PNGs written
    beside the page (``{"file", "alt"}``)."""
    free = list(study.space.free_names)
    data = {
        "format": 1,  # of this data: a page reads the format it was written for
        "study": study.name,
        "direction": study.direction.value,
        "score": SCORE,
        "headline": headline(trials, board),
        "trials": [trial_record(t, free, SCORE) for t in sorted(trials, key=lambda t: t.number)],
        "figures": _figures(study, trials, board, ranking),
        "trial_table": tables.trial_table(trials, free, study.direction),
        "sections": _sections(study, trials, board, ranking),
        "pngs": [dict(p) for p in pngs],
    }
    return dict(strict(data))


def _figures(
    study: Study,
    trials: Sequence[FrozenTrial],
    board: Sequence[FrozenTrial],
    ranking: Sequence[Importance] | None,
) -> dict[str, dict[str, Any] | None]:
    """Each figure's data with its title and note, in the order the page shows them."""
    longest = max((len(t.curve) for t in trials), default=0)
    curves = {"selected": top_numbers(board, FIRST_CURVES), "epoch_ticks": epoch_ticks(longest)}
    shares = {
        "names": [r.name for r in ranking or ()],
        "shares": [r.importance for r in ranking or ()],
    }
    return {
        "best_so_far": _best_so_far(trials, study),
        "scatter": _scatter(study, trials),
        "parallel": _figure(
            parallel_data(study.space, trials, SCORE),
            "Parallel coordinates",
            "One line per complete trial, across each searched hyperparameter on its own scale "
            "to its validation accuracy (the line's colour). Drag along an axis to keep only "
            "the lines that cross it there; click the axis outside that range to clear it.",
        ),
        "importance": _figure(
            shares if ranking else None,
            "Which hyperparameter mattered",
            "Random-forest importance on unit-cube coordinates; compare with the course's "
            "priority list (learning rate first).",
        ),
        "curves": _figure(
            curves if board else None, "Learning curves", _curves_note(train_metrics(study.attrs))
        ),
    }


def _sections(
    study: Study,
    trials: Sequence[FrozenTrial],
    board: Sequence[FrozenTrial],
    ranking: Sequence[Importance] | None,
) -> list[tables.Table]:
    """The tables after the trial table: those there is something to show in."""
    attrs = study.attrs
    found = [tables.overview(overview_rows(trials, attrs, study.sampler.to_config()))]
    if board:
        found.append(tables.best_configuration(board[0]))
    history = uses_of_the_test_set(attrs)
    found.append(tables.table_of_test_uses(history, study.name, "config" in attrs))
    if ranking:
        found.append(tables.importance_table(ranking))
    boxes = round_boxes(study.space, trials, study.direction)
    if boxes:
        found.append(tables.rounds_table(boxes))
    rungs = rung_table(trials)
    if rungs:
        found.append(tables.rungs_table(rungs))
    warm = warm_start_rows(trials)
    if warm is not None:
        found.append(tables.warm_start_table(*warm))
    return found


def _figure(data: dict[str, Any] | None, title: str, note: str) -> dict[str, Any] | None:
    return None if data is None else data | {"title": title, "note": note}


def headline(trials: Sequence[FrozenTrial], board: Sequence[FrozenTrial]) -> str:
    """One line above the figures: the best trial, the trials per state and the wall time."""
    facts = summary(trials)
    states = ", ".join(f"{n} {state}" for state, n in facts["states"].items() if n)
    wall = facts["wall_seconds"]
    time = "" if math.isnan(wall) else f"; {wall:.1f} s from the first start to the last finish"
    best = f"Best {SCORE} {board[0].value:.4f} (trial {board[0].number}) of " if board else ""
    return f"{best}{facts['trials']} trials ({states or 'none yet'}){time}."


def _best_so_far(trials: Sequence[FrozenTrial], study: Study) -> dict[str, Any] | None:
    progress = best_so_far(trials, study.direction)
    if progress.limits is None:
        return None
    lost = sum(1 for t in trials if t.state in (TrialState.DIVERGED, TrialState.FAILED))
    note = (
        "The best score of the trials finished so far (line) and each trial's own (dots; "
        "hollow: a pruned trial's score at the rung that stopped it), against trials finished "
        "and against wall time: where the line goes flat, more trials of this search bought "
        "little. The axis fits every dot."
    )
    if lost:
        note += f" {lost} trial{'s' if lost > 1 else ''} diverged or failed: no score to draw."
    return _figure(best_so_far_data(progress), f"Best {SCORE} so far", note)


def _scatter(study: Study, trials: Sequence[FrozenTrial]) -> dict[str, Any] | None:
    panels = scatter_panels(study.space, trials, study.direction)
    found = scatter_data(panels)
    if found is None:
        return None
    kinds = {g.kind for g in panels[0].groups}
    cut = panels[0].zoom.cut
    parts = [
        "Each on its own scale over its searched range: learning rates on log10, betas on "
        "log(1 - beta), choices as categories.",
        f" The value axis shows the better half of the complete trials; those worse than "
        f"{cut:.3g} sit on its edge row (triangles)."
        if "best" in kinds
        else "",
        " Diverged trials sit on the edge row (red crosses)." if "diverged" in kinds else "",
        " Pruned trials (hollow) sit at their score at the rung that stopped them."
        if "pruned" in kinds
        else "",
        " Colours are coarse-to-fine rounds."
        if any(g.round is not None for g in panels[0].groups)
        else "",
        " The star is the best trial." if "best" in kinds else "",
        " Hover a point for its trial and values, click it to add its learning curves; drag to "
        "zoom, double-click to zoom out.",
    ]
    return _figure(found, f"{SCORE.capitalize()} against each hyperparameter", "".join(parts))


def _curves_note(how: str) -> str:
    """What the learning curves show, and how their training half was measured."""
    training = (
        "training (dashed) from a pass over the training set in eval mode after the epoch "
        '(search.train_metrics = "full")'
        if how == "full"
        else "training (dashed) from the epoch's own training pass, in train mode: the mean "
        "over the epoch's mini-batches while the weights still moved (dropout on; "
        'search.train_metrics = "full" measures it in eval mode instead)'
    )
    return (
        "Accuracy (top) and loss (bottom, log scale) after each epoch of the selected trials, "
        f"the best {FIRST_CURVES} to begin with: click a point in another figure or a row of "
        "the trial table to add a trial, its button to take it away. Validation (solid) is "
        f"measured in eval mode after the epoch; {training}."
    )


def page_html(data: Mapping[str, Any], plotly_js: str) -> str:
    """The page: the study's data once as JSON, plotly.js and the page's script inline."""
    plotly = plotly_js.replace("</script", "<\\/script")
    return _page(str(data["study"]), data, f"<script>{plotly}</script>\n<script>{SCRIPT}</script>")


def served_page_html(study: str, data: Mapping[str, Any] | None, sources: Sequence[str]) -> str:
    """The same page as a server sends it (the live dashboard, :mod:`caviar.dashboard`): the
    study's data inline (None: the study has not begun, the script waits for data), the
    scripts from ``sources`` (plotly.js, :data:`~caviar.report.page_script.SCRIPT`, the
    server's own), so that a policy of scripts from the server alone lets them run."""
    scripts = "".join(f'<script src="{html.escape(src)}"></script>' for src in sources)
    return _page(study, data, scripts)


def _page(study: str, data: Mapping[str, Any] | None, scripts: str) -> str:
    payload = json.dumps(data, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    payload = payload.replace("<", "\\u003c")  # nothing in it can end the script element
    return PAGE.format(title=html.escape(study), style=STYLE, data=payload, scripts=scripts)


STYLE = """
*, *::before, *::after { box-sizing: border-box; }
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 0 12px 2em; color: #222; line-height: 1.4; }
h1 { font-size: 1.4em; margin: 0.8em 0 0.3em; overflow-wrap: anywhere; }
h2 { font-size: 1.15em; margin: 1.6em 0 0.3em; }
#headline { margin: 0.2em 0; }
nav { display: flex; flex-wrap: wrap; gap: 0.1em 0.9em; }
.note { color: #555; font-size: 0.9em; margin: 0.2em 0 0.6em; max-width: 60em; }
.note code, h2 code { background: #f3f3f3; padding: 0 0.2em; }
.plot { width: 100%; min-width: 0; }
.grid { display: grid; gap: 4px 14px;
        grid-template-columns: repeat(auto-fill, minmax(min(100%, 340px), 1fr)); }
.legend { font-size: 0.85em; margin: 0.2em 0; }
.legend span { display: inline-block; margin-right: 1.1em; white-space: nowrap; }
.chips button { font: inherit; font-size: 0.85em; margin: 0 0.4em 0.4em 0; padding: 0.1em 0.5em;
                border: 1px solid #bbb; border-radius: 1em; background: #fafafa; cursor: pointer; }
.chips button.trial { border-width: 2px; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.88em; margin: 0.3em 0 1em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
td { max-width: 36em; overflow-wrap: break-word; }
#trials td, #trials th { white-space: nowrap; overflow-wrap: normal; }
th { background: #f3f3f3; cursor: pointer; user-select: none; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
#trials tbody tr { cursor: pointer; }
#trials tbody tr:hover td { background: #f5f9ff; }
tr.chosen td { background: #fff4cc; }
input[type="search"] { font: inherit; width: 100%; max-width: 28em; padding: 0.3em 0.5em; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>caviar: {title}</title>
<link rel="icon" href="data:,">
<style>{style}</style></head><body>
<header><h1>caviar study <code>{title}</code></h1><p id="headline"></p><nav id="contents"></nav>
</header>
<noscript><p>This report draws its figures and tables with JavaScript: open it in a browser
with scripts on.</p></noscript>
<main><div id="figures"></div><div id="tables"></div></main>
<script type="application/json" id="study-data">{data}</script>
{scripts}
</body></html>
"""
