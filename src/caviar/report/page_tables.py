"""The page's tables as plain data: the trial table, then the study's facts, one section each.

A table is ``{"id", "title", "note", "header", "rows"}`` with every cell as the text it shows
(floats to 4 significant digits, as caviar prints them; a missing value ``-``); the page's
script sorts a column by number where its cells read as numbers. A note may name a command in
backticks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from caviar.core.records import Direction, FrozenTrial
from caviar.report.data import RoundBox, RungRow, WarmRow
from caviar.report.facts import TestSetHistory
from caviar.report.importance import Importance
from caviar.report.page_data import best_first, state_text, value_text

Table = dict[str, Any]


def table(
    id: str, title: str, header: Sequence[str], rows: Sequence[Sequence[Any]], note: str = ""
) -> Table:
    """A section of the page: a heading, a note and a table whose cells are text (with no
    header text, a table of name, value rows drawn without a header row)."""
    return {
        "id": id,
        "title": title,
        "note": note,
        "header": list(header),
        "rows": [["-" if v is None else value_text(v) for v in row] for row in rows],
    }


def trial_table(trials: Sequence[FrozenTrial], free: Sequence[str], direction: Direction) -> Table:
    """Every trial, best first: state, score, round and bracket where the study has them, the
    searched values, epochs trained and seed; ``numbers`` says which trial each row is."""
    ordered = best_first(trials, direction)
    rounds = any("round" in t.attrs for t in trials)
    brackets = any("bracket" in t.attrs for t in trials)
    header = [
        "trial",
        "state",
        "validation accuracy",
        *(["round"] if rounds else []),
        *(["bracket"] if brackets else []),
        *free,
        "epochs",
        "seed",
    ]
    rows = [
        [
            t.number,
            state_text(t),
            t.value,
            *([t.attrs.get("round")] if rounds else []),
            *([t.attrs.get("bracket")] if brackets else []),
            *(t.params[n] for n in free),
            len(t.curve),
            t.seed,
        ]
        for t in ordered
    ]
    note = (
        "Best first. Click a header to sort by it, a row to add that trial's learning curves "
        "to the figure above; the box keeps the rows that hold every word typed."
    )
    return table("trials", "Trials", header, rows, note) | {"numbers": [t.number for t in ordered]}


def overview(rows: Sequence[tuple[str, Any]]) -> Table:
    """The overview's (name, value) rows (:func:`caviar.report.facts.overview_rows`)."""
    return table("overview", "Overview", ["", ""], rows)


def best_configuration(best: FrozenTrial) -> Table:
    return table(
        "best",
        f"Best configuration (trial {best.number}, validation accuracy {best.value:.4f})",
        ["hyperparameter", "value"],
        sorted(best.params.items()),
    )


def table_of_test_uses(history: TestSetHistory, study: str, recorded_data: bool) -> Table:
    """Every use of the test set, or a note saying it was not used and how to use it."""
    if not history.uses:
        how = (
            f"`caviar test {study}` evaluates the best configuration on it, once."
            if recorded_data
            else "This study was made with the Python API, so it records no data to test "
            "on; evaluate its best parameters with your own code, once."
        )
        return table("test", "Test set", [], [], f"The test set has not been used. {how}")
    return table(
        "test",
        history.heading,
        ["when (UTC)", "mode", "trial", "test accuracy", "test loss", "examples", "how"],
        [(u.when, u.mode, u.trial, u.accuracy, u.loss, u.n_test, u.how) for u in history.uses],
        history.note,
    )


def importance_table(ranking: Sequence[Importance]) -> Table:
    return table(
        "importance-table",
        "Importance",
        ["hyperparameter", "importance"],
        [(r.name, round(r.importance, 3)) for r in ranking],
    )


def rounds_table(boxes: Sequence[RoundBox]) -> Table:
    return table(
        "rounds",
        "Coarse to fine",
        ["round", "hyperparameter", "box (values it samples)", "best"],
        [(b.round, b.name, b.text, b.best) for b in boxes],
        "Each round samples its box; the next round's box is drawn around the best trials.",
    )


def rungs_table(rungs: Sequence[RungRow]) -> Table:
    brackets = rungs[0].bracket is not None
    return table(
        "halving",
        "Successive halving",
        [
            *(["bracket"] if brackets else []),
            "rung (epoch)",
            "trials reached",
            "pruned there",
            "best validation accuracy",
        ],
        [[*([r.bracket] if brackets else []), r.epoch, r.reached, r.pruned, r.best] for r in rungs],
        "At each rung a trial goes on only if it is among the best 1/eta of the trials that "
        "reached the rung before it; the others are pruned there and their slot goes to the "
        "next trial.",
    )


def warm_start_table(old: str, rows: Sequence[WarmRow]) -> Table:
    return table(
        "warm-start",
        f"Warm start from {old}",
        ["old trial", "old validation accuracy", "new trial", "state", "new validation accuracy"],
        [(r.old_trial, r.old_value, r.new_trial, r.state, r.new_value) for r in rows],
        "The old study's best configurations, tried first and trained again on this study's "
        "data: their old validation accuracy against the new one.",
    )
