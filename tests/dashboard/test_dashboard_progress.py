"""The pool's progress line, from stored trials alone (any process reads the same line), and the
command's light start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import caviar
from caviar.core.records import Direction, EpochRecord, FrozenTrial, TrialState
from caviar.dashboard.progress import pool_progress, progress_line


def trial(number: int, state: TrialState, value: float | None = None, **kw: Any) -> FrozenTrial:
    epochs = kw.pop("epochs_done", 0)
    curve = tuple(EpochRecord(e, 1.0, 0.5, 1.0, 0.5) for e in range(1, epochs + 1))
    return FrozenTrial(
        number, state, {"epochs": 16, "lr": 0.01}, (0.5,), 0, value, curve=curve, **kw
    )


def test_the_line_of_a_running_pool() -> None:
    trials = [
        trial(0, TrialState.COMPLETE, 0.91, started=100.0, finished=110.0),
        trial(1, TrialState.COMPLETE, 0.95, started=100.0, finished=112.0),
        trial(2, TrialState.PRUNED, 0.5, started=110.0, finished=113.0),
        trial(3, TrialState.RUNNING, started=112.0, epochs_done=7),
        trial(4, TrialState.QUEUED),
    ]
    attrs = {"planned_trials": 40, "kept_models": [1, 0]}
    progress = pool_progress(trials, attrs, Direction.MAXIMIZE, now=118.25)
    assert progress == {
        "done": 3,
        "total": 40,
        "running": [{"trial": 3, "epoch": 7, "epochs": 16}],
        "best": {"trial": 1, "value": 0.95},
        "elapsed": 18.25,
        "live": True,
        "kept": [0, 1],
    }
    assert progress_line(progress) == (
        "3 / 40 trials done, 1 running (trial 3 at epoch 7 of 16), best 0.9500 (trial 1), 18.2 s"
    )


def test_the_line_of_an_ended_study_without_a_plan() -> None:
    """Elapsed stops at the last finish; a study older than planned_trials, or with a time
    budget only, has no total; minimizing picks the lowest value."""
    trials = [
        trial(0, TrialState.COMPLETE, 0.3, started=5.0, finished=9.0),
        trial(1, TrialState.COMPLETE, 0.2, started=5.0, finished=8.0),
    ]
    progress = pool_progress(trials, {}, Direction.MINIMIZE, now=1e9)
    assert (progress["total"], progress["elapsed"], progress["live"]) == (None, 4.0, False)
    assert progress_line(progress) == ("2 trials done, none running, best 0.2000 (trial 1), 4.0 s")
    assert progress_line(pool_progress([], {"planned_trials": 8}, Direction.MAXIMIZE, now=0)) == (
        "0 / 8 trials done, none running, no complete trial yet, 0.0 s"
    )


@pytest.mark.slow
def test_the_commands_help_loads_nothing_heavy() -> None:
    source = str(Path(caviar.__file__).parents[1])
    script = (
        "import sys\n"
        "from caviar.cli.main import main\n"
        "try:\n    main(['dashboard', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('torch', 'numpy', 'starlette', 'uvicorn', 'plotly', 'sklearn', 'caviar.report')\n"
        "print('heavy:', sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": source, "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert "--timeout" in done.stdout and "heavy: []" in done.stdout
