"""The pool's progress as the store tells it: what the dashboard's live line says.

A pure function of the stored trials, so that any process (the tuning run itself, a
``caviar dashboard`` beside it) reads the same line: trials finished against those planned
(``study.attrs["planned_trials"]``, written by the search when it starts), the trials running
now with the epoch each has reached, the best so far, and the time since the first trial
started (to the last finish, once nothing runs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from caviar.core.records import Direction, FrozenTrial, TrialState


def pool_progress(
    trials: Sequence[FrozenTrial],
    attrs: Mapping[str, Any],
    direction: Direction,
    *,
    now: float,
) -> dict[str, Any]:
    """``{"done", "total", "running": [{"trial", "epoch", "epochs"}], "best": {"trial",
    "value"} | None, "elapsed", "live", "kept"}``; ``total`` None where the search has no set
    number of trials (a time budget); ``kept`` the trials whose final model is kept (only those
    can be babysat)."""
    done = [t for t in trials if t.state.is_finished]
    running = [t for t in trials if t.state is TrialState.RUNNING]
    complete = [t for t in done if t.state is TrialState.COMPLETE and t.value is not None]
    best = None
    for t in complete:
        if best is None or direction.better(t.value or 0.0, best.value or 0.0):
            best = t
    starts = [t.started for t in trials if t.started is not None]
    ends = [t.finished for t in done if t.finished is not None]
    if not starts:
        elapsed = 0.0
    elif running:
        elapsed = now - min(starts)
    else:
        elapsed = max([*ends, *starts]) - min(starts)
    planned = attrs.get("planned_trials", attrs.get("config", {}).get("search", {}).get("trials"))
    return {
        "done": len(done),
        "total": planned if isinstance(planned, int) else None,
        "running": [
            {
                "trial": t.number,
                "epoch": len(t.curve),
                "epochs": t.params.get("epochs")
                if isinstance(t.params.get("epochs"), int)
                else None,
            }
            for t in sorted(running, key=lambda t: t.number)
        ],
        "best": None if best is None else {"trial": best.number, "value": best.value},
        "elapsed": max(elapsed, 0.0),
        "live": bool(running),
        "kept": sorted(int(n) for n in attrs.get("kept_models", [])),
    }


def progress_line(progress: Mapping[str, Any]) -> str:
    """The line itself: ``12 / 40 trials done, 4 running (trial 13 at epoch 3 of 10, ...),
    best 0.9611 (trial 7), 18.2 s``."""
    total = "" if progress["total"] is None else f" / {progress['total']}"
    running = progress["running"]
    shown = ", ".join(
        f"trial {r['trial']} at epoch {r['epoch']}"
        + ("" if r["epochs"] is None else f" of {r['epochs']}")
        for r in running[:4]
    )
    more = f", {len(running) - 4} more" if len(running) > 4 else ""
    now = f"{len(running)} running ({shown}{more})" if running else "none running"
    best = progress["best"]
    best_text = (
        "no complete trial yet"
        if best is None
        else (f"best {best['value']:.4f} (trial {best['trial']})")
    )
    return f"{progress['done']}{total} trials done, {now}, {best_text}, {progress['elapsed']:.1f} s"
