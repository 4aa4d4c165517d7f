"""What the commands print the same way: values, operating-system errors, the report."""

from __future__ import annotations

import sys
from typing import Any

from caviar.core.atomic import WriteError


def format_value(value: Any) -> str:
    """A hyperparameter's value in a table: floats to 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def os_reason(e: OSError) -> str:
    """Why the operating system refused, and on which file (a file caviar could not write says
    so itself, and that nothing was left there)."""
    if isinstance(e, WriteError):
        return str(e)
    where = f": {e.filename}" if e.filename else ""
    return f"{e.strerror or e}{where}"


def write_report_or_warn(study: Any, out: str | None = None) -> None:
    """Write the study's report, or say on stderr why it could not be (the study is safe)."""
    from caviar.report import write_report  # deferred: plotly and scikit-learn, at the end

    try:
        print(f"report: {write_report(study, out)}")
    except OSError as e:
        print(
            f"caviar: warning: the report could not be written ({os_reason(e)}); the study is "
            f"stored: `caviar report {study.name} --out FOLDER` writes it elsewhere",
            file=sys.stderr,
        )
