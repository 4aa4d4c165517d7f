"""The one way a command finds its study file and opens a study in it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from caviar.storage.resolve import DEFAULT_STORAGE, STORAGE_VARIABLE, storage_location

STORAGE_HELP = f"SQLite study file (default ${STORAGE_VARIABLE}, else {DEFAULT_STORAGE})"


def add_storage_flag(parser: argparse.ArgumentParser) -> None:
    """``--storage``, the same for every command."""
    parser.add_argument("--storage", help=STORAGE_HELP)


def storage_path(args: argparse.Namespace) -> Path:
    """The study file the command's ``--storage`` (or the environment) names."""
    return Path(storage_location(args.storage))


def open_study(args: argparse.Namespace, *, read_only: bool = False) -> Any:
    """The study ``args.study``; ``read_only`` for commands that only look (they never write,
    not even SQLite's WAL switch, so a foreign or read-only file is left as it is)."""
    from caviar.study import Study  # deferred: numpy

    return Study.open_file(args.study, storage_path(args), read_only=read_only, owner="--storage")
