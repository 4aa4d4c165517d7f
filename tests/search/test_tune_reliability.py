"""`caviar.tune` when the store fails under it: a full disk or a corrupt row stops the run with a
clear error and loses no finished trial; a takeover costs only the trials taken; and a wait for
trials held elsewhere is said, not silent."""

from __future__ import annotations

import io
import os
import re
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from caviar.core.records import Trial
from caviar.search.job import tune
from caviar.storage import CorruptRowError, DiskFullError, SQLiteStorage
from caviar.storage.sqlite_connections import Connections
from caviar.study import Study, TrialState
from caviar.study import study as study_module


def tiny(tmp_path: Path, trials: int = 6) -> dict[str, Any]:
    return {
        "study": {"name": "t", "storage": str(tmp_path / "s.db"), "seed": 0},
        "data": {"dataset": "digits", "train_size": 300, "test_size": 100},
        "space": {
            "lr": {"scale": "log", "low": 1e-3, "high": 1e-1},
            "hidden_units": {"scale": "int", "low": 8, "high": 24},
            "epochs": 3,
            "batch_size": 32,
        },
        # random search, every trial to its end (caviar's default halves: these tests count ends)
        "search": {"sampler": "random", "trials": trials, "population": 2},
    }


def stored(path: Path) -> dict[int, tuple[str, float | None, int]]:
    """number -> (state, value, epochs stored), read with sqlite3 itself."""
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT number, state, value, (SELECT count(*) FROM epochs e "
            "WHERE e.trial_id = t.trial_id) FROM trials t ORDER BY number"
        ).fetchall()
    return {n: (s, v, e) for n, s, v, e in rows}


def process_exited(path: Path) -> None:
    """The failed run's process is gone (a test runs in one process: forget its owners)."""
    with sqlite3.connect(path) as db:
        owners = {o for (o,) in db.execute("SELECT owner FROM trials WHERE owner IS NOT NULL")}
    study_module._LIVE_OWNERS.difference_update(owners)


def after_finishes(monkeypatch: pytest.MonkeyPatch, n: int, then) -> None:
    """Run ``then(storage)`` once ``n`` trials have been finished by the run."""
    real = SQLiteStorage.finish_trial
    count = [0]

    def finish(self, *args, **kwargs):
        result = real(self, *args, **kwargs)
        count[0] += 1
        if count[0] == n:
            then(self)
        return result

    monkeypatch.setattr(SQLiteStorage, "finish_trial", finish)


def straight_values(tmp_path: Path) -> dict[int, float | None]:
    study = tune(tiny(tmp_path / "straight"), progress=False, report=False)
    return {t.number: t.value for t in study.trials(curves=False)}


def test_a_full_disk_mid_run_keeps_every_finished_trial(tmp_path, monkeypatch):
    path = tmp_path / "s.db"
    full = [False]
    real_db = Connections.db

    class Connection:
        """Once the disk is full, every COMMIT fails as SQLite's does."""

        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            if sql == "COMMIT" and full[0]:
                raise sqlite3.OperationalError("database or disk is full")
            return self.db.execute(sql, *args)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.db, name)

    with monkeypatch.context() as m:
        m.setattr(Connections, "db", lambda connections: Connection(real_db(connections)))
        after_finishes(m, 2, lambda storage: full.__setitem__(0, True))
        with pytest.raises(DiskFullError, match="free some space and run the same command again"):
            tune(tiny(tmp_path), progress=False, report=False)
    rows = stored(path)
    finished = {n: v for n, (s, v, e) in rows.items() if s != "queued" and s != "running"}
    assert len(finished) == 2
    assert all(rows[n][2] == 3 for n in finished)  # with their whole curves
    process_exited(path)
    study = tune(tiny(tmp_path), progress=False, report=False)  # room again: run it again
    after = {t.number: t.value for t in study.trials(curves=False)}
    assert {n: after[n] for n in finished} == finished
    assert after == straight_values(tmp_path)  # as if the disk had never filled


def test_a_row_corrupted_mid_run_stops_it_clearly_and_keeps_finished_trials(tmp_path, monkeypatch):
    path = tmp_path / "s.db"

    def corrupt_trial_0(storage: SQLiteStorage) -> None:
        with sqlite3.connect(path) as db:
            db.execute("UPDATE trials SET state = 'runing' WHERE number = 0")

    with monkeypatch.context() as m:
        after_finishes(m, 2, corrupt_trial_0)
        with pytest.raises(
            CorruptRowError,
            match="study 't', trial 0: column 'state' holds 'runing', which is not a trial state",
        ):
            tune(tiny(tmp_path), progress=False, report=False)
    rows = stored(path)
    assert rows[0][0] == "runing"  # left for the user to see and fix
    assert rows[1][0] in ("complete", "diverged") and rows[1][2] == 3  # kept, with its curve
    assert all(s != "running" for s, _, _ in rows.values())  # the rest went back to the queue


def test_a_takeover_mid_run_costs_only_the_trials_taken(tmp_path, monkeypatch):
    """Another process takes over every trial this run holds (as if it had been stopped): the
    run says so, runs them again when the queue hands them back, and the study ends as a
    straight run."""
    err = io.StringIO()
    real = Study.report_epochs
    calls = [0]

    def report_epochs(self, rows):
        calls[0] += 1
        if calls[0] == 2:
            other = Study.load(self.name, tmp_path / "s.db")
            assert other.recover(stale_after=-1.0)
        return real(self, rows)

    monkeypatch.setattr(Study, "report_epochs", report_epochs)
    study = tune(tiny(tmp_path), progress=False, report=False, stream=err)
    assert "were taken over by another process" in err.getvalue()
    assert "this run goes on with other trials" in err.getvalue()
    values = {t.number: t.value for t in study.trials(curves=False)}
    assert all(t.state is TrialState.COMPLETE for t in study.trials(curves=False))
    monkeypatch.setattr(Study, "report_epochs", real)
    assert values == straight_values(tmp_path)


@pytest.mark.slow
def test_waiting_for_a_trial_held_by_a_live_process_is_said(tmp_path, monkeypatch):
    path = tmp_path / "s.db"
    tune(tiny(tmp_path, trials=2), progress=False, report=False)
    storage = SQLiteStorage(path)
    study = Study.load("t", storage)
    params = study.space.from_unit((0.5, 0.5))
    ghost = f"{socket.gethostname()}:{os.getppid()}:9h0st000"  # a live pid, not a caviar run
    then = time.time() - 296.0
    with monkeypatch.context() as m:
        m.setattr(time, "time", lambda: then)
        storage.create_trials("t", [Trial(2, params, study.space.to_unit(params), 7)], owner=ghost)
    storage.close()
    err = io.StringIO()
    done = tune(tiny(tmp_path, trials=3), progress=False, report=False, stream=err)
    assert [t.state for t in done.trials(curves=False)] == [TrialState.COMPLETE] * 3
    lines = [line for line in err.getvalue().splitlines() if "held by" in line]
    assert len(lines) == 1, err.getvalue()
    assert re.fullmatch(
        re.escape(
            f"caviar: waiting for other processes: trial 2 of 't' is held by "
            f"{socket.gethostname()}:{os.getppid()} (a live process has that pid; its last "
            "heartbeat was "
        )
        + r"29\d s ago\): it is requeued if no heartbeat comes within \d s",
        lines[0],
    ), lines[0]
