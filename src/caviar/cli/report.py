"""``caviar report STUDY``: write a study's report again (``--png``: its figures as PNG files
too). Reads the study file only."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from caviar.cli.output import os_reason
from caviar.cli.study_file import add_storage_flag, open_study
from caviar.core.errors import InvalidValue


def add_parser(sub: Any) -> None:
    c = sub.add_parser("report", help="write the study's report")
    c.add_argument("study", help="study name")
    add_storage_flag(c)
    c.add_argument("--out", help="folder for the report")
    c.add_argument(
        "--png", action="store_true", help="also write the figures as PNG files (for papers)"
    )
    c.set_defaults(run=run, imports=("caviar.report",))


def run(args: argparse.Namespace) -> int:
    from caviar.report import write_report  # deferred: numpy, plotly, scikit-learn

    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise InvalidValue("--out", f"must be a folder for the report, got the file {str(out)!r}")
    study = open_study(args, read_only=True)
    try:
        path = write_report(study, out, png=args.png)
    except OSError as e:
        raise InvalidValue("--out", f"cannot write the report: {os_reason(e)}") from None
    finally:
        study.close()  # the last connection to close leaves no -wal or -shm file
    print(f"report: {path}")
    return 0
