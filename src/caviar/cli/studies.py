"""``caviar studies``: the studies and panda runs in a study file, one line each. Reads only."""

from __future__ import annotations

import argparse
from typing import Any

from caviar.cli.study_file import add_storage_flag, storage_path


def add_parser(sub: Any) -> None:
    s = sub.add_parser("studies", help="list the studies in a storage file")
    add_storage_flag(s)
    s.set_defaults(run=run, imports=())


def run(args: argparse.Namespace) -> int:
    # deferred: numpy
    from caviar.panda.listing import list_runs
    from caviar.storage import SQLiteStorage, StorageError
    from caviar.study import Study

    path = storage_path(args)
    if not path.exists():
        print(f"no study file at {path}")
        return 0
    storage = SQLiteStorage(path, read_only=True)
    try:
        names = storage.study_names()
        if not names:
            print(f"no studies in {path}")
        for name in names:
            try:
                print(f"{name}: {_study_line(Study.load(name, storage))}")
            except StorageError as e:  # one unreadable study does not hide the others
                print(f"{name}: cannot be read: {e}")
    finally:
        storage.close()  # the last connection to close leaves no -wal or -shm file
    for panda_run in list_runs(path):
        print(panda_run.describe()[0])
    return 0


def _study_line(study: Any) -> str:
    trials = study.trials(curves=False)
    best = study.best_trial
    best_text = "-" if best is None else f"{best.value:.4f}"
    data = study.attrs.get("data")
    where = (
        f"on {data.get('dataset', '?')}"
        if isinstance(data, dict)
        else "(made with the Python API: no dataset recorded)"
    )
    return f"{len(trials)} trials {where}, best val acc {best_text}, {study.sampler.name} search"
