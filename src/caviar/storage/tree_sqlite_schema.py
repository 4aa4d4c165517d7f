"""The panda tables in a caviar study file, beside the study store's (:mod:`.sqlite_file`).

Their layout is what caviar has always written: a file made by an earlier caviar reads back
unchanged. ``panda_dropped`` records each snapshot retention dropped
(:mod:`caviar.storage.tree_retention`), so a run says what it lost.
"""

from __future__ import annotations

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
