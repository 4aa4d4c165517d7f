"""The panda tables, and the rule that keeps a run's snapshots under its disk budget.

Retention drops the oldest snapshots first (by the time they were stored) until the run's fit
its budget, and never these: the root's first (where the run started: replay needs it when the
run started from a kept trial), every epoch a branch grew from (a rollback's source), and each
branch's latest (where it goes on from). Each one dropped is recorded in ``panda_dropped``, so
the run says what it lost. Protected snapshots may keep a run over its budget.
"""

from __future__ import annotations

import sqlite3
import time

PANDA_SCHEMA = """
CREATE TABLE IF NOT EXISTS panda_runs (
    run_id   INTEGER PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    config   TEXT NOT NULL,
    spec     TEXT NOT NULL,
    source   TEXT NOT NULL,
    status   TEXT NOT NULL,
    branch   INTEGER NOT NULL,
    budget   INTEGER NOT NULL,
    version  INTEGER NOT NULL,
    created  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS panda_branches (
    run_id     INTEGER NOT NULL REFERENCES panda_runs(run_id),
    branch     INTEGER NOT NULL,
    parent     INTEGER,
    from_epoch INTEGER,
    mode       TEXT,
    spec       TEXT NOT NULL,
    created    REAL NOT NULL,
    PRIMARY KEY (run_id, branch)
);
CREATE TABLE IF NOT EXISTS panda_commands (
    command_id INTEGER PRIMARY KEY,
    run_id     INTEGER NOT NULL REFERENCES panda_runs(run_id),
    branch     INTEGER NOT NULL,
    epoch      INTEGER NOT NULL,
    key        TEXT NOT NULL,
    old        TEXT NOT NULL,
    new        TEXT NOT NULL,
    time       REAL NOT NULL,
    applied    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS panda_pending ON panda_commands (run_id, applied, command_id);
CREATE TABLE IF NOT EXISTS panda_epochs (
    run_id         INTEGER NOT NULL REFERENCES panda_runs(run_id),
    branch         INTEGER NOT NULL,
    epoch          INTEGER NOT NULL,
    train_loss     REAL,
    train_accuracy REAL,
    val_loss       REAL,
    val_accuracy   REAL,
    time           REAL NOT NULL,
    PRIMARY KEY (run_id, branch, epoch)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS panda_snapshots (
    run_id  INTEGER NOT NULL REFERENCES panda_runs(run_id),
    branch  INTEGER NOT NULL,
    epoch   INTEGER NOT NULL,
    spec    TEXT NOT NULL,
    size    INTEGER NOT NULL,
    state   BLOB NOT NULL,
    time    REAL NOT NULL,
    PRIMARY KEY (run_id, branch, epoch)
);
CREATE TABLE IF NOT EXISTS panda_dropped (
    run_id  INTEGER NOT NULL REFERENCES panda_runs(run_id),
    branch  INTEGER NOT NULL,
    epoch   INTEGER NOT NULL,
    size    INTEGER NOT NULL,
    time    REAL NOT NULL
);
"""


def drop_beyond_budget(db: sqlite3.Connection, run_id: int) -> bool:
    """Drop snapshots of run ``run_id`` beyond its budget, inside the caller's write
    transaction (see the module docstring); whether any went."""
    (budget,) = db.execute("SELECT budget FROM panda_runs WHERE run_id = ?", (run_id,)).fetchone()
    rows = db.execute(
        "SELECT branch, epoch, size FROM panda_snapshots WHERE run_id = ? "
        "ORDER BY time, branch, epoch",
        (run_id,),
    ).fetchall()
    total = sum(size for _, _, size in rows)
    if total <= budget:
        return False
    keep = {(0, min(e for b, e, _ in rows if b == 0))} if rows else set()
    keep |= set(
        db.execute(
            "SELECT parent, from_epoch FROM panda_branches WHERE run_id = ? AND parent IS NOT NULL",
            (run_id,),
        ).fetchall()
    )
    latest: dict[int, int] = {}
    for b, e, _ in rows:
        latest[b] = max(latest.get(b, e), e)
    keep |= set(latest.items())
    now = time.time()
    for branch, epoch, size in rows:
        if total <= budget:
            break
        if (branch, epoch) in keep:
            continue
        db.execute(
            "DELETE FROM panda_snapshots WHERE run_id = ? AND branch = ? AND epoch = ?",
            (run_id, branch, epoch),
        )
        db.execute(
            "INSERT INTO panda_dropped VALUES (?, ?, ?, ?, ?)",
            (run_id, branch, epoch, size, now),
        )
        total -= size
    return True
