"""``caviar show STUDY``: the leaderboard, the rungs and the best configuration (or a panda
run's branches). Reads the study file only."""

from __future__ import annotations

import argparse
from typing import Any

from caviar.cli.flags import positive
from caviar.cli.output import format_value
from caviar.cli.study_file import add_storage_flag, open_study, storage_path


def add_parser(sub: Any) -> None:
    c = sub.add_parser("show", help="leaderboard and best configuration")
    c.add_argument("study", help="study name")
    add_storage_flag(c)
    c.add_argument("--top", type=positive, default=10, help="rows of the leaderboard")
    c.set_defaults(run=run, imports=("caviar.report",))


def run(args: argparse.Namespace) -> int:
    # deferred: panda's tree loads torch
    from caviar.panda.listing import list_runs

    runs = [r for r in list_runs(storage_path(args)) if r.name == args.study]
    if runs:  # a panda run: its branches
        print("\n".join(runs[0].describe()))
        return 0
    study = open_study(args, read_only=True)
    try:
        _show(study, args.top)
    finally:
        study.close()  # the last connection to close leaves no -wal or -shm file
    return 0


def _show(study: Any, top: int) -> None:
    """The study's trials by state, its rungs, the first errors and the leaderboard."""
    # deferred: the report's tables load numpy
    from caviar.report.data import rung_table, summary, warm_start_rows

    trials = study.trials(curves=False)
    facts = summary(trials)
    states = ", ".join(f"{n} {s}" for s, n in facts["states"].items() if n)
    print(f"study {study.name!r} in {study.storage.path}: {facts['trials']} trials ({states})")
    for rung in rung_table(study.trials()):
        shown = "-" if rung.best is None else f"{rung.best:.4f}"
        where = "" if rung.bracket is None else f"bracket {rung.bracket}, "
        print(
            f"  {where}rung at epoch {rung.epoch}: {rung.reached} trials reached it, "
            f"{rung.pruned} pruned there, best val acc {shown}"
        )
    warm = warm_start_rows(trials)
    if warm is not None:
        old, warm_rows = warm
        print(f"  warm start from study {old!r}: its best configurations, trained again here")
        for r in warm_rows:
            now = "-" if r.new_value is None else f"{r.new_value:.4f}"
            print(
                f"    its trial {r.old_trial} (val acc {r.old_value:.4f}) is trial {r.new_trial} "
                f"here: {r.state}, val acc {now}"
            )
    errors = sorted({str(t.attrs["error"]) for t in trials if "error" in t.attrs})
    for error in errors[:5]:
        print(f"  a trial failed: {error}")
    free = list(study.space.free_names)
    board = study.leaderboard(top)
    if not board:
        print("no complete trial yet")
        return
    header = ["rank", "trial", "val acc", *free]
    rows = [
        [str(i + 1), str(t.number), f"{t.value:.4f}", *(format_value(t.params[n]) for n in free)]
        for i, t in enumerate(board)
    ]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    best = board[0]
    print(f"\nbest configuration (trial {best.number}, seed {best.seed}):")
    for name, value in sorted(best.params.items()):
        print(f"  {name} = {format_value(value)}")
    test = study.attrs.get("test")
    if test:
        print(f"\ntest set used ({test['mode']}, {test['when']}): accuracy {test['accuracy']:.4f}")
